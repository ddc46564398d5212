package profiler

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// Names of the synthetic frames that mark what a stack lost.
const (
	truncatedFrame = "[truncated]"        // root end cut at the stack depth
	overflowFrame  = "[stack table full]" // stack not stored: too many distinct stacks
)

// The profile written is shaped like runtime/pprof's heap profile: the same
// four sample types, period and labels, so every pprof habit (-sample_index,
// -tagfocus, -diff_base) works on it. The sampler's weights are applied
// here, at write time.

var sampleTypes = [...][2]string{
	{"alloc_objects", "count"},
	{"alloc_space", "bytes"},
	{"inuse_objects", "count"},
	{"inuse_space", "bytes"},
}

// profile returns the profile of the current state, gzipped. The Go heap,
// when on, is read first, outside the encoder's lock, and close in time to
// the hook's snapshot. The result is the caller's own: writing it, however
// slowly, holds up no other profile.
func (p *Profiler) profile(now time.Time) ([]byte, error) {
	var goHeap *goHeapSnapshot
	if p.cfg.goHeap {
		var err error
		if goHeap, err = readGoHeap(p.cfg.gcFirst); err != nil {
			return nil, err
		}
	}
	return p.enc.encode(p, now, goHeap)
}

// encoder writes profiles straight in the protocol buffer format, keeping
// its string, function and location tables, and each stack's list of
// location ids, from one profile to the next: Go code does not move, so a
// steady-state profile symbolizes nothing and builds no location again;
// it costs the samples and a copy of the tables. The tables only grow, with
// distinct stacks and label values, both bounded. It is safe for
// concurrent use; profiles are encoded one at a time.
type encoder struct {
	mu      sync.Mutex
	symbols *symbolCache
	depth   int                // the profiler's stack depth: a stack this long may be cut
	maps    []*profile.Mapping // sorted by Start

	strings  map[string]int64
	strtab   []string
	funcs    map[frameKey]uint64
	locs     map[locKey]uint64
	synth    map[string]uint64
	nextLoc  uint64
	tables   []byte // every Mapping, Location and Function message so far
	stacks   map[*stack][]byte
	goStacks map[string][]byte // the Go heap's stacks by their PCs' bytes
	ownFunc  []bool            // by function id: the profiler's own code
	ownLoc   []bool            // by location id: a line of the profiler's own code
	sets     [][]int64         // string indices of label sets, key and value pairs, by id-1
	heaps    map[uint32]int64

	// Indices of the strings every sample uses.
	heapKey, bytesKey, ageKey, secondsUnit int64

	// Scratch reused by every profile.
	groups  []*group
	ages    []uint32 // group<<ageBits | bucket of each live record
	starts  []int32  // by group id: where its records start in buckets
	buckets []uint8  // age buckets of the live records, grouped by group id
	syms    []symbol
	ids     []uint64
	packed  []byte
	buf     []byte
	gz      bytes.Buffer
	zw      *gzip.Writer
}

type frameKey struct{ function, file string }

// locKey identifies a Location: its address and the number of inlined
// frames it spans, since a stack cut inside an inlined chain holds a
// shorter Location at the same address.
type locKey struct {
	addr  uint64
	lines int
}

func newEncoder(symbols *symbolCache, depth int) *encoder {
	e := &encoder{
		symbols:  symbols,
		depth:    depth,
		maps:     processMappings(),
		strings:  map[string]int64{"": 0},
		strtab:   []string{""},
		funcs:    make(map[frameKey]uint64),
		locs:     make(map[locKey]uint64),
		synth:    make(map[string]uint64),
		stacks:   make(map[*stack][]byte),
		goStacks: make(map[string][]byte),
		heaps:    make(map[uint32]int64),
		ownFunc:  []bool{false},
		ownLoc:   []bool{false},
	}
	e.heapKey, e.bytesKey, e.ageKey, e.secondsUnit = e.str("heap"), e.str("bytes"), e.str("age"), e.str("seconds")
	for _, m := range e.maps {
		e.tables = appendMessage(e.tables, fieldMapping, func(b []byte) []byte {
			b = appendUint(b, fieldMappingID, m.ID)
			b = appendUint(b, fieldMappingStart, m.Start)
			b = appendUint(b, fieldMappingLimit, m.Limit)
			b = appendUint(b, fieldMappingOffset, m.Offset)
			b = appendInt(b, fieldMappingFilename, e.str(m.File))
			b = appendInt(b, fieldMappingBuildID, e.str(m.BuildID))
			b = appendBool(b, fieldMappingHasFunctions, m.HasFunctions)
			b = appendBool(b, fieldMappingHasFilenames, m.HasFilenames)
			b = appendBool(b, fieldMappingHasLineNumbers, m.HasLineNumbers)
			return appendBool(b, fieldMappingHasInlineFrames, m.HasInlineFrames)
		})
	}
	return e
}

// encode returns the profile of p's state at now, with the samples of
// goHeap (nil when off), gzipped.
func (e *encoder) encode(p *Profiler, now time.Time, goHeap *goHeapSnapshot) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()

	b := e.buf[:0]
	for _, st := range sampleTypes {
		b = e.appendValueType(b, fieldSampleType, st[0], st[1])
	}
	b = appendInt(b, fieldDefaultSampleType, e.str("inuse_space"))
	b = e.appendValueType(b, fieldPeriodType, "space", "bytes")
	b = appendInt(b, fieldPeriod, int64(p.sampler.rate))
	b = appendInt(b, fieldTimeNanos, now.UnixNano())
	b = appendInt(b, fieldDurationNanos, now.Sub(p.start).Nanoseconds())

	// Sorted so that samples come out in a stable order. Live records are
	// counted after the groups were listed: a group created since has an
	// id beyond the counts and waits for the next profile.
	groups := p.table.groups.snapshot(e.groups[:0])
	slices.SortFunc(groups, compareGroups)
	e.groups = groups
	e.sortLive(p.table.liveAges(p.age(), uint32(len(groups)), e.ages[:0]), len(groups))
	labelSets := p.table.labels.snapshot()
	for _, g := range groups {
		var live [len(ageBuckets)]int32
		for _, bucket := range e.buckets[e.starts[g.id]:e.starts[g.id+1]] {
			live[bucket]++
		}
		b = e.appendGroup(b, p, g, live[:], labelSets)
	}
	if goHeap != nil {
		var err error
		if b, err = e.appendGoHeap(b, goHeap); err != nil {
			e.buf = b
			return nil, err
		}
	}

	// Comments change with every profile: their strings go at the end of
	// the table and are dropped from it afterwards.
	base := len(e.strtab)
	for _, c := range p.comments(len(labelSets), goHeap) {
		e.strtab = append(e.strtab, c)
		b = appendInt(b, fieldComment, int64(len(e.strtab)-1))
	}
	b = append(b, e.tables...)
	for _, s := range e.strtab {
		b = appendTag(b, fieldStringTable, wireBytes)
		b = appendVarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	e.strtab = e.strtab[:base]
	e.buf = b

	// BestSpeed, as runtime/pprof uses: the profiles are small and a
	// flush should cost little CPU.
	e.gz.Reset()
	if e.zw == nil {
		e.zw, _ = gzip.NewWriterLevel(&e.gz, gzip.BestSpeed)
	} else {
		e.zw.Reset(&e.gz)
	}
	if _, err := e.zw.Write(b); err != nil {
		return nil, fmt.Errorf("compressing profile: %w", err)
	}
	if err := e.zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing profile: %w", err)
	}
	return bytes.Clone(e.gz.Bytes()), nil
}

// sortLive groups the age buckets of the live records by group id (a
// counting sort), so that a profile costs memory in proportion to the live
// records and the groups, not to their product.
func (e *encoder) sortLive(ages []uint32, groups int) {
	e.ages = ages
	// Group ids run 1..groups; starts[g] and starts[g+1] bound group g.
	starts := slices.Grow(e.starts[:0], groups+3)[:groups+3]
	clear(starts)
	for _, a := range ages {
		starts[a>>ageBits+2]++
	}
	for i := 2; i < len(starts); i++ {
		starts[i] += starts[i-1]
	}
	// starts[g+1] is now where group g begins; filling moves it to g's end,
	// which is where group g+1 begins: starts[g] then marks g's start.
	buckets := slices.Grow(e.buckets[:0], len(ages))[:len(ages)]
	for _, a := range ages {
		g := a >> ageBits
		buckets[starts[g+1]] = uint8(a & (1<<ageBits - 1))
		starts[g+1]++
	}
	e.starts, e.buckets = starts, buckets
}

// comments describes the profile: rates, counts and anything dropped.
func (p *Profiler) comments(labelSets int, goHeap *goHeapSnapshot) []string {
	t := p.table
	c := []string{
		fmt.Sprintf("leakhunt heap profile: sampling rate %d bytes, stack depth %d", p.sampler.rate, p.depth),
		fmt.Sprintf("samples=%d live=%d stacks=%d label_sets=%d dropped_live_table_full=%d dropped_group_table_full=%d label_sets_dropped=%d",
			t.samples.Load(), t.count.Load(), t.stacks.count.Load(), labelSets,
			t.droppedLive.Load(), t.droppedGroup.Load(), t.labels.dropped.Load()),
	}
	if goHeap != nil {
		gc := ""
		if p.cfg.gcFirst {
			gc = " (GC forced before this snapshot)"
		}
		source := "runtime.MemProfile records"
		if goHeap.parsed != nil {
			source = "runtime/pprof's heap profile (a stack filled MemProfile's 32 frames)"
		}
		c = append(c, fmt.Sprintf(
			"go heap: runtime.MemProfileRate %d while profiling, %d before Start; in-use as of the last completed GC%s; read from %s",
			p.cfg.rate, p.prevMemProfileRate, gc, source))
	}
	return c
}

// appendGroup appends the samples of one group: one per age bucket of its
// live allocations, labelled with the bucket's age. Each carries the
// cumulative allocations of its live objects too, and the youngest also
// those already freed, so every sample has in-use ≤ allocated, as in
// runtime/pprof's profiles, and -tagfocus=age=... with
// -sample_index=alloc_space shows what the old objects cost. A group with
// nothing live has one sample with no age.
func (e *encoder) appendGroup(b []byte, p *Profiler, g *group, live []int32, labelSets [][]labelPair) []byte {
	allocs := g.allocs.Load() // read after live was counted, so allocs ≥ live
	var total int64
	for _, n := range live {
		total += int64(n)
	}
	if allocs == 0 && total == 0 {
		return b
	}
	freed := max(allocs-total, 0)
	stk := e.stack(g.stk)
	labels := e.labelSet(g.labels, labelSets)
	heap, ok := e.heaps[g.heap]
	if !ok {
		heap = e.str(heapName(g.heap))
		e.heaps[g.heap] = heap
	}
	sample := func(b []byte, allocated, inuse int64, age int64) []byte {
		allocObjects, allocBytes := p.sampler.scale(allocated, g.size)
		inuseObjects, inuseBytes := p.sampler.scale(inuse, g.size)
		return appendMessage(b, fieldSample, func(b []byte) []byte {
			b = appendBytes(b, fieldSampleLocationID, stk)
			b = e.appendValues(b, allocObjects, allocBytes, inuseObjects, inuseBytes)
			b = appendStrLabel(b, e.heapKey, heap)
			for i := 0; i < len(labels); i += 2 {
				b = appendStrLabel(b, labels[i], labels[i+1])
			}
			b = appendNumLabel(b, e.bytesKey, g.size, e.bytesKey)
			if age >= 0 {
				b = appendNumLabel(b, e.ageKey, age, e.secondsUnit)
			}
			return b
		})
	}
	if total == 0 {
		return sample(b, freed, 0, -1)
	}
	for bucket, n := range live {
		if n == 0 {
			continue
		}
		b = sample(b, int64(n)+freed, int64(n), int64(ageBuckets[bucket]))
		freed = 0
	}
	return b
}

func (e *encoder) appendValues(b []byte, v ...int64) []byte {
	e.packed = e.packed[:0]
	for _, x := range v {
		e.packed = appendVarint(e.packed, uint64(x))
	}
	return appendBytes(b, fieldSampleValue, e.packed)
}

// labelSet returns the string indices of label set id's keys and values,
// in pairs, leaving out pprof labels named like the profile's own (heap,
// and the numeric bytes and age), which would be confused with them.
func (e *encoder) labelSet(id uint32, sets [][]labelPair) []int64 {
	if id == 0 {
		return nil
	}
	for int(id) > len(e.sets) {
		var idx []int64
		for _, l := range sets[len(e.sets)] {
			switch l.key {
			case "heap", "bytes", "age":
				continue
			}
			idx = append(idx, e.str(l.key), e.str(l.value))
		}
		e.sets = append(e.sets, idx)
	}
	return e.sets[id-1]
}

func appendStrLabel(b []byte, key, value int64) []byte {
	return appendMessage(b, fieldSampleLabel, func(b []byte) []byte {
		b = appendInt(b, fieldLabelKey, key)
		return appendInt(b, fieldLabelStr, value)
	})
}

func appendNumLabel(b []byte, key, num, unit int64) []byte {
	return appendMessage(b, fieldSampleLabel, func(b []byte) []byte {
		b = appendInt(b, fieldLabelKey, key)
		b = appendInt(b, fieldLabelNum, num)
		return appendInt(b, fieldLabelNumUnit, unit)
	})
}

func (e *encoder) appendValueType(b []byte, field int, typ, unit string) []byte {
	return appendMessage(b, field, func(b []byte) []byte {
		b = appendInt(b, fieldValueTypeType, e.str(typ))
		return appendInt(b, fieldValueTypeUnit, e.str(unit))
	})
}

// str returns the index of s in the string table, adding it if new.
func (e *encoder) str(s string) int64 {
	if i, ok := e.strings[s]; ok {
		return i
	}
	i := int64(len(e.strtab))
	e.strtab = append(e.strtab, s)
	e.strings[s] = i
	return i
}

// stack returns the packed location ids of st, leaf first, ending with a
// synthetic frame if the stack was cut or could not be stored. A stack is
// cut when it fills the whole depth without reaching the root every
// goroutine has, runtime.goexit: capturing exactly the depth, and judging
// here, spares the sampled path an extra frame of unwinding.
func (e *encoder) stack(st *stack) []byte {
	if ids, ok := e.stacks[st]; ok {
		return ids
	}
	var ids []byte
	if st == nil {
		ids = appendVarint(ids, e.synthetic(overflowFrame))
		e.stacks[st] = ids
		return ids
	}
	ids, root := e.appendLocations(nil, st.pcs)
	if len(st.pcs) == e.depth && !root {
		ids = appendVarint(ids, e.synthetic(truncatedFrame))
	}
	e.stacks[st] = ids
	return ids
}

// appendLocations appends the location ids of pcs, return addresses leaf
// first, and reports whether they reach runtime.goexit, the root of every
// goroutine, which is left out as runtime/pprof does. The PCs of an
// inlined chain share one Location, with a Line per function, innermost
// first, as runtime/pprof writes them (its pcDeck), so -lines works and a
// stack of the hook and one of the Go heap share their Locations.
func (e *encoder) appendLocations(ids []byte, pcs []uintptr) ([]byte, bool) {
	syms := e.syms[:0]
	root := false
	for _, pc := range pcs {
		if sym := e.symbols.lookup(pc); !sym.goexit {
			syms = append(syms, sym)
		} else {
			root = true
		}
	}
	e.syms = syms
	for i := 0; i < len(syms); {
		j := i + 1
		for j < len(syms) && syms[j-1].inlined && syms[j].entry == syms[j-1].entry {
			j++
		}
		ids = appendVarint(ids, e.location(syms[i:j]))
		i = j
	}
	return ids, root
}

// location returns the id of the Location for one physical frame: the
// symbols of an inlined chain, innermost first.
func (e *encoder) location(chain []symbol) uint64 {
	k := locKey{chain[0].addr, len(chain)}
	if id, ok := e.locs[k]; ok {
		return id
	}
	e.ids = e.ids[:0]
	var lines []int64
	for _, sym := range chain {
		for _, f := range sym.frames {
			e.ids = append(e.ids, e.function(f.function, f.file))
			lines = append(lines, f.line)
		}
	}
	return e.addLocation(k, e.ids, lines)
}

// addLocation appends a Location message with the given lines, as function
// ids and line numbers, and returns its id.
func (e *encoder) addLocation(k locKey, funcs []uint64, lines []int64) uint64 {
	e.nextLoc++
	id := e.nextLoc
	e.locs[k] = id
	own := false
	for _, f := range funcs {
		own = own || e.ownFunc[f]
	}
	e.ownLoc = append(e.ownLoc, own)
	e.tables = appendMessage(e.tables, fieldLocation, func(b []byte) []byte {
		b = appendUint(b, fieldLocationID, id)
		b = appendUint(b, fieldLocationMappingID, e.mappingID(k.addr))
		b = appendUint(b, fieldLocationAddress, k.addr)
		for i, f := range funcs {
			b = appendMessage(b, fieldLocationLine, func(b []byte) []byte {
				b = appendUint(b, fieldLineFunctionID, f)
				return appendInt(b, fieldLineLine, lines[i])
			})
		}
		return b
	})
	return id
}

// synthetic returns the id of a Location with no address standing for name.
func (e *encoder) synthetic(name string) uint64 {
	if id, ok := e.synth[name]; ok {
		return id
	}
	e.nextLoc++
	id := e.nextLoc
	e.synth[name] = id
	e.ownLoc = append(e.ownLoc, false)
	fn := e.function(name, "")
	e.tables = appendMessage(e.tables, fieldLocation, func(b []byte) []byte {
		b = appendUint(b, fieldLocationID, id)
		return appendMessage(b, fieldLocationLine, func(b []byte) []byte {
			return appendUint(b, fieldLineFunctionID, fn)
		})
	})
	return id
}

// function returns the id of the Function with this name and file.
func (e *encoder) function(name, file string) uint64 {
	k := frameKey{name, file}
	if id, ok := e.funcs[k]; ok {
		return id
	}
	id := uint64(len(e.funcs) + 1)
	e.funcs[k] = id
	e.ownFunc = append(e.ownFunc, isOwnFunction(name))
	nameIdx, fileIdx := e.str(name), e.str(file)
	e.tables = appendMessage(e.tables, fieldFunction, func(b []byte) []byte {
		b = appendUint(b, fieldFunctionID, id)
		b = appendInt(b, fieldFunctionName, nameIdx)
		b = appendInt(b, fieldFunctionSystemName, nameIdx)
		return appendInt(b, fieldFunctionFilename, fileIdx)
	})
	return id
}

// mappingID returns the id of the mapping that holds addr, 0 for none.
func (e *encoder) mappingID(addr uint64) uint64 {
	i := sort.Search(len(e.maps), func(i int) bool { return e.maps[i].Limit > addr })
	if i < len(e.maps) && e.maps[i].Start <= addr {
		return e.maps[i].ID
	}
	if len(e.maps) == 1 && e.maps[0].Limit == 0 {
		return e.maps[0].ID // the fallback mapping stands for everything
	}
	return 0
}

// compareGroups orders groups by heap, label set, stack and size.
func compareGroups(a, b *group) int {
	if c := cmp.Compare(a.heap, b.heap); c != 0 {
		return c
	}
	if c := cmp.Compare(a.labels, b.labels); c != 0 {
		return c
	}
	if c := compareStacks(a.stk, b.stk); c != 0 {
		return c
	}
	return cmp.Compare(a.size, b.size)
}

// compareStacks orders stacks by their order key, a hash of the PCs that
// is the same in every run of a binary, and by the PCs on a tie: a full
// comparison of every pair of stacks was a fifth of a flush.
func compareStacks(a, b *stack) int {
	switch {
	case a == b:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if c := cmp.Compare(a.order, b.order); c != 0 {
		return c
	}
	return slices.Compare(a.pcs, b.pcs)
}

// processMappings returns fresh copies of this process's executable
// mappings, read once, sorted by address and numbered.
func processMappings() []*profile.Mapping {
	base := mappingsOnce()
	out := make([]*profile.Mapping, len(base))
	for i, m := range base {
		c := *m
		out[i] = &c
	}
	slices.SortFunc(out, func(a, b *profile.Mapping) int { return cmp.Compare(a.Start, b.Start) })
	for i, m := range out {
		m.ID = uint64(i + 1)
	}
	return out
}

var mappingsOnce = sync.OnceValue(readMappings)

// fallbackMappings returns a single mapping for the executable where the
// address ranges are unknown. Its functions are already symbolized, so
// pprof needs no more than the file name.
func fallbackMappings() []*profile.Mapping {
	exe, _ := os.Executable()
	return []*profile.Mapping{{
		ID:              1,
		File:            exe,
		HasFunctions:    true,
		HasFilenames:    true,
		HasLineNumbers:  true,
		HasInlineFrames: true,
	}}
}
