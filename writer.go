package profiler

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank"
)

// The encoder writes a table snapshot, and the Go heap's profile when on,
// as one pprof profile, shaped like runtime/pprof's heap profile: the same
// four sample types, period and labels, so every pprof habit
// (-sample_index, -tagfocus, -diff_base) works on it. The sampler's weights
// are applied here, at write time.

// Names of the synthetic frames that mark what a stack lost or stands for.
const (
	truncatedFrame = "[truncated]"        // root end cut at the stack depth
	overflowFrame  = "[stack table full]" // stack not stored: too many distinct stacks
	foldedFrame    = "[recycled groups]"  // allocations of recycled groups past their bound

	// goHeapName is the heap label of the Go runtime's samples.
	goHeapName = leakrank.GoHeap

	// ownFrame stands for the profiler's own Go memory (its tables, stacks,
	// the profiles it builds) in place of the stack that allocated it,
	// which would lead through the hook into the caller's code and look
	// like the caller's allocation. It stays in the profile, since it is
	// real; cmd/leakhunt knows it by this name.
	ownFrame = leakrank.OwnFrame
)

var sampleTypes = [...][2]string{
	{"alloc_objects", "count"},
	{"alloc_space", "bytes"},
	{"inuse_objects", "count"},
	{"inuse_space", "bytes"},
}

// encoder writes profiles straight in the protocol buffer format, keeping
// its string, function and location tables, and each stack's list of
// location ids, from one profile to the next: Go code does not move, so a
// steady-state profile symbolizes nothing and builds no location again;
// it costs the samples and a copy of the tables. The tables only grow, with
// distinct stacks and label values, both bounded. It is not safe for
// concurrent use.
type encoder struct {
	symbolize func(pc uintptr) symbol
	maps      []*profile.Mapping // sorted by Start

	strings map[string]int64
	strtab  []string
	funcs   map[frameKey]uint64
	locs    map[locKey]uint64
	synth   map[string]uint64
	nextLoc uint64
	tables  []byte // every Mapping, Location and Function message so far
	stacks  map[*stack][]byte
	ownFunc []bool    // by function id: the profiler's own code
	ownLoc  []bool    // by location id: a line of the profiler's own code
	sets    [][]int64 // string indices of label sets, key and value pairs, by id-1
	heaps   []int64   // string index of each heap's name, by heap id

	// Indices of the strings every sample uses.
	heapKey, bytesKey, ageKey, secondsUnit, goHeap int64

	// Scratch reused by every profile.
	totals  [len(sampleTypes)]int64 // of the profile so far, by sample type
	syms    []symbol
	ids     []uint64
	packed  []byte
	buf     []byte
	gz      bytes.Buffer
	zw      *gzip.Writer
	foreign foreignProfile
}

type frameKey struct{ function, file string }

// locKey identifies a Location: its address and the number of inlined
// frames it spans, since a stack cut inside an inlined chain holds a
// shorter Location at the same address.
type locKey struct {
	addr  uint64
	lines int
}

// goHeapCounts are the runtime's sampled objects behind the Go heap's part
// of a profile, which its comments report.
type goHeapCounts struct{ samples, live int64 }

func newEncoder(symbolize func(uintptr) symbol, maps []*profile.Mapping) *encoder {
	e := &encoder{
		symbolize: symbolize,
		maps:      maps,
		strings:   map[string]int64{"": 0},
		strtab:    []string{""},
		funcs:     make(map[frameKey]uint64),
		locs:      make(map[locKey]uint64),
		synth:     make(map[string]uint64),
		stacks:    make(map[*stack][]byte),
		ownFunc:   []bool{false},
		ownLoc:    []bool{false},
	}
	e.heapKey, e.bytesKey, e.ageKey, e.secondsUnit = e.str("heap"), e.str("bytes"), e.str("age"), e.str("seconds")
	e.goHeap = e.str(goHeapName)
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

// encode returns the profile of t, with the samples of goHeap (nil when
// off), gzipped.
func (e *encoder) encode(t *tableSnapshot, goHeap *goHeapProfile) ([]byte, error) {
	b := e.buf[:0]
	e.totals = [len(sampleTypes)]int64{}
	for _, st := range sampleTypes {
		b = e.appendValueType(b, fieldSampleType, st[0], st[1])
	}
	b = appendInt(b, fieldDefaultSampleType, e.str("inuse_space"))
	b = e.appendValueType(b, fieldPeriodType, "space", "bytes")
	b = appendInt(b, fieldPeriod, t.rate)
	b = appendInt(b, fieldTimeNanos, t.time.UnixNano())
	b = appendInt(b, fieldDurationNanos, t.time.Sub(t.start).Nanoseconds())

	for _, g := range t.groups {
		var live [len(ageBuckets)]int32
		for _, bucket := range t.liveBuckets(g.id) {
			live[bucket]++
		}
		b = e.appendGroup(b, t, g, live[:])
	}
	for _, r := range t.retired {
		b = e.appendRetired(b, t, r)
	}
	var counts goHeapCounts
	if goHeap != nil {
		var err error
		if b, counts, err = e.appendGoHeap(b, goHeap.data); err != nil {
			e.buf = b
			return nil, fmt.Errorf("reading the Go heap profile: %w", err)
		}
	}

	// Comments change with every profile: their strings go at the end of
	// the table and are dropped from it afterwards.
	base := len(e.strtab)
	for _, c := range comments(t, goHeap, counts) {
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
	// profile should cost little CPU.
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

// comments describes the profile: rates, counts and anything dropped.
func comments(t *tableSnapshot, goHeap *goHeapProfile, counts goHeapCounts) []string {
	c := []string{
		fmt.Sprintf("leakhunt heap profile: sampling rate %d bytes, stack depth %d", t.rate, t.depth),
		fmt.Sprintf("samples=%d live=%d hook_samples=%d hook_live=%d go_samples=%d go_live=%d stacks=%d label_sets=%d dropped_live_table_full=%d dropped_group_table_full=%d label_sets_dropped=%d track_rejected=%d",
			t.samples+counts.samples, t.live+counts.live, t.samples, t.live, counts.samples, counts.live,
			t.stacks, len(t.labelSets), t.droppedLive, t.droppedGroup, t.labelSetsDropped, t.trackRejected),
	}
	if t.trigger != "" {
		c = append(c, "leakhunt trigger: "+t.trigger)
	}
	if goHeap != nil {
		gc := ""
		if goHeap.gcForced {
			gc = " (here the last: a GC was forced before this profile)"
		}
		c = append(c, fmt.Sprintf(
			"go heap: runtime.MemProfileRate %d while profiling, %d before Start; in-use as of the GC before the last%s",
			t.rate, goHeap.rateBefore, gc))
		c = append(c, leakrank.GoHeapTimeComment(goHeap.figuresAt))
	}
	return c
}

// appendGroup appends the samples of one group: one with all its
// allocations, live or freed, and no age; and one per age bucket of its
// live allocations, labelled with the bucket's age, with nothing
// allocated. Allocations stay off the age samples because objects move
// from one bucket to the next as they age: there a sample's alloc_* values
// would fall from one profile to the next, while a tool that takes the
// difference of successive profiles sample by sample (Grafana Alloy
// scraping Handler, whose negative differences Pyroscope drops) needs
// them to only grow.
func (e *encoder) appendGroup(b []byte, t *tableSnapshot, g groupState, live []int32) []byte {
	if g.allocs == 0 {
		return b
	}
	stk := e.stack(g.stk, t.depth)
	labels := e.labelSet(g.labels, t.labelSets)
	heap := e.heapName(g.heap, t.heapNames)
	scaled := func(n int64) (objects, bytes int64) { return scale(n, float64(n)*float64(g.size), t.rate) }
	// sample appends a sample of allocated allocations, and of the live
	// ones from the before-th to the before+inuse-th.
	sample := func(b []byte, allocated, before, inuse int64, age int64) []byte {
		allocObjects, allocBytes := scaled(allocated)
		o0, b0 := scaled(before)
		o1, b1 := scaled(before + inuse)
		inuseObjects, inuseBytes := o1-o0, b1-b0
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
	b = sample(b, g.allocs, 0, 0, -1)
	// Each bucket's in-use figures are the difference of the scaled
	// totals up to it and up to the one before, so that they add up to the
	// scaled total exactly, as the allocations' sample is scaled: a group
	// with nothing freed has in-use equal to allocated.
	var upTo int64
	for bucket, n := range live {
		if n > 0 {
			b = sample(b, 0, upTo, int64(n), int64(ageBuckets[bucket]))
			upTo += int64(n)
		}
	}
	return b
}

// appendRetired appends the sample of retired allocations: what recycled
// groups of one heap, stack and label set allocated, already scaled, with
// nothing in use and, their sizes being mixed, no bytes label.
func (e *encoder) appendRetired(b []byte, t *tableSnapshot, r retiredState) []byte {
	var stk []byte
	if r.folded {
		stk = appendVarint(nil, e.synthetic(foldedFrame))
	} else {
		stk = e.stack(r.stk, t.depth)
	}
	labels := e.labelSet(r.labels, t.labelSets)
	heap := e.heapName(r.heap, t.heapNames)
	return appendMessage(b, fieldSample, func(b []byte) []byte {
		b = appendBytes(b, fieldSampleLocationID, stk)
		b = e.appendValues(b, r.objects, r.bytes, 0, 0)
		b = appendStrLabel(b, e.heapKey, heap)
		for i := 0; i < len(labels); i += 2 {
			b = appendStrLabel(b, labels[i], labels[i+1])
		}
		return b
	})
}

// appendValues appends a sample's values, one per sample type. Each is
// held to what the profile's total of its type can still take before
// MaxInt64: pprof adds samples up in int64, and absurd sizes reported to
// the hook must not wrap a total into a negative one.
func (e *encoder) appendValues(b []byte, v ...int64) []byte {
	e.packed = e.packed[:0]
	for i, x := range v {
		x = min(x, math.MaxInt64-e.totals[i])
		e.totals[i] += x
		e.packed = appendVarint(e.packed, uint64(x))
	}
	return appendBytes(b, fieldSampleValue, e.packed)
}

// heapName returns the string index of heap id's name.
func (e *encoder) heapName(id uint32, names []string) int64 {
	for int(id) >= len(e.heaps) {
		e.heaps = append(e.heaps, e.str(names[len(e.heaps)]))
	}
	return e.heaps[id]
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
func (e *encoder) stack(st *stack, depth int) []byte {
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
	if len(st.pcs) == depth && !root {
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
		if sym := e.symbolize(pc); !sym.goexit {
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
		b = appendUint(b, fieldLocationMappingID, mappingID(e.maps, k.addr))
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

// ownPrefixes are the function name prefixes of this module's library code.
var ownPrefixes = func() []string {
	pkg := reflect.TypeFor[encoder]().PkgPath()
	return []string{pkg + ".", pkg + "/internal/"}
}()

// isOwnFunction reports whether a function belongs to this module's
// library code.
func isOwnFunction(name string) bool {
	for _, prefix := range ownPrefixes {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// appendGoHeap appends the samples of the Go heap's profile, data, as
// runtime/pprof writes it, labelled heap=go. Its values are already scaled
// by the runtime; they are reordered to this profile's sample types by
// name, so a change in the runtime's order cannot mix them up. Its
// Locations are matched to this encoder's by address and inlining depth,
// and only new ones are read further, so a steady-state profile builds
// none. Samples are sorted, so that the same heap encodes to the same
// bytes.
func (e *encoder) appendGoHeap(b []byte, data []byte) ([]byte, goHeapCounts, error) {
	var counts goHeapCounts
	f := &e.foreign
	if err := f.parse(data); err != nil {
		return b, counts, err
	}
	index, err := f.valueIndex()
	if err != nil {
		return b, counts, err
	}
	if err := e.mapForeignLocations(f); err != nil {
		return b, counts, err
	}
	bytesKey, _ := f.stringIndex("bytes")

	f.out = f.out[:0]
	f.stacks = f.stacks[:0]
	for _, msg := range f.samples {
		s, err := f.sample(msg, index, bytesKey)
		if err != nil {
			return b, counts, err
		}
		if s.values == ([len(sampleTypes)]int64{}) {
			continue
		}
		start := len(f.stacks)
		own := false
		for _, id := range f.locIDs {
			if id >= uint64(len(f.locMap)) || f.locMap[id] == 0 {
				return b, counts, fmt.Errorf("sample refers to location %d, which the profile lacks", id)
			}
			ours := f.locMap[id]
			own = own || e.ownLoc[ours]
			f.stacks = appendVarint(f.stacks, ours)
		}
		if own {
			f.stacks = appendVarint(f.stacks[:start], e.synthetic(ownFrame))
		}
		s.stk = [2]int{start, len(f.stacks)}
		f.out = append(f.out, s)
		counts.samples += unscale(s.values[0], s.values[1], f.period)
		counts.live += unscale(s.values[2], s.values[3], f.period)
	}
	// Sorted by stack, which also puts alike stacks side by side for
	// the compressor; an index is sorted rather than the samples.
	f.order = f.order[:0]
	for i := range f.out {
		f.order = append(f.order, int32(i))
	}
	slices.SortFunc(f.order, func(i, j int32) int {
		x, y := &f.out[i], &f.out[j]
		if c := bytes.Compare(f.stack(*x), f.stack(*y)); c != 0 {
			return c
		}
		if c := cmp.Compare(x.size, y.size); c != 0 {
			return c
		}
		return slices.Compare(x.values[:], y.values[:])
	})
	for _, i := range f.order {
		s := &f.out[i]
		b = appendMessage(b, fieldSample, func(b []byte) []byte {
			b = appendBytes(b, fieldSampleLocationID, f.stack(*s))
			b = e.appendValues(b, s.values[0], s.values[1], s.values[2], s.values[3])
			b = appendStrLabel(b, e.heapKey, e.goHeap)
			if s.size >= 0 {
				b = appendNumLabel(b, e.bytesKey, s.size, e.bytesKey)
			}
			return b
		})
	}
	return b, counts, nil
}

// mapForeignLocations sets f.locMap, from f's location ids to this
// encoder's, adding the Locations it lacks in order of address, so that
// ids do not depend on the order the runtime listed them in.
func (e *encoder) mapForeignLocations(f *foreignProfile) error {
	f.locMap = f.locMap[:0]
	f.fresh = f.fresh[:0]
	for i, msg := range f.locations {
		id, k, err := f.locationKey(msg)
		if err != nil {
			return err
		}
		if id == 0 || id > uint64(4*len(f.locations)+16) {
			return fmt.Errorf("location id %d out of range", id)
		}
		for uint64(len(f.locMap)) <= id {
			f.locMap = append(f.locMap, 0)
		}
		if ours, ok := e.locs[k]; ok {
			f.locMap[id] = ours
		} else {
			f.fresh = append(f.fresh, freshLocation{key: k, id: id, msg: i})
		}
	}
	slices.SortFunc(f.fresh, func(x, y freshLocation) int {
		if c := cmp.Compare(x.key.addr, y.key.addr); c != 0 {
			return c
		}
		return cmp.Compare(x.key.lines, y.key.lines)
	})
	for _, l := range f.fresh {
		if ours, ok := e.locs[l.key]; ok { // a duplicate of one just added
			f.locMap[l.id] = ours
			continue
		}
		e.ids = e.ids[:0]
		var lines []int64
		err := f.lines(f.locations[l.msg], func(name, file string, line int64) {
			e.ids = append(e.ids, e.function(name, file))
			lines = append(lines, line)
		})
		if err != nil {
			return err
		}
		f.locMap[l.id] = e.addLocation(l.key, e.ids, lines)
	}
	return nil
}
