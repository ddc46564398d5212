package profiler

import (
	"cmp"
	"fmt"
	"io"
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

// writeProfile builds the profile of the current state and writes it to w,
// gzipped.
func (p *Profiler) writeProfile(w io.Writer, now time.Time) error {
	prof, err := p.buildProfile(now)
	if err != nil {
		return err
	}
	if err := prof.Write(w); err != nil {
		return fmt.Errorf("encoding profile: %w", err)
	}
	return nil
}

// buildProfile turns the group table into a heap profile shaped like the one
// runtime/pprof writes: the same four sample types, period and labels, so
// every pprof habit (-sample_index, -tagfocus, -diff_base) works on it.
// The weights of the sampler are applied here, at write time. The Go heap
// source, when on, is read first so that its in-use figures and the hook's
// are as close in time as they can be.
func (p *Profiler) buildProfile(now time.Time) (*profile.Profile, error) {
	var goHeap *profile.Profile
	if p.cfg.goHeap {
		var err error
		if goHeap, err = readGoHeap(p.cfg.gcFirst); err != nil {
			return nil, err
		}
	}
	groups := p.table.groups.snapshot(nil)
	// Sorted so that the same state always encodes to the same bytes.
	slices.SortFunc(groups, compareGroups)

	b := newProfileBuilder(processSymbols)
	prof := b.prof
	prof.TimeNanos = now.UnixNano()
	prof.DurationNanos = now.Sub(p.start).Nanoseconds()
	prof.Period = int64(p.sampler.rate)

	// Live records by group and age, counted after the groups were listed:
	// a group created since has an id beyond the buffer and waits for the
	// next profile.
	live := make([]int32, (len(groups)+1)*len(ageBuckets))
	p.table.countLive(p.age(), uint32(len(groups)), live)
	labelSets := p.table.labels.snapshot()

	for _, g := range groups {
		p.addGroup(b, g, live[int(g.id)*len(ageBuckets):][:len(ageBuckets)], labelSets)
	}

	if goHeap != nil {
		if err := b.addGoHeap(goHeap); err != nil {
			return nil, err
		}
	}

	t := p.table
	prof.Comments = []string{
		fmt.Sprintf("leakhunt heap profile: sampling rate %d bytes, stack depth %d", p.sampler.rate, p.depth),
		fmt.Sprintf("samples=%d live=%d stacks=%d label_sets=%d dropped_live_table_full=%d dropped_group_table_full=%d label_sets_dropped=%d",
			t.samples.Load(), t.count.Load(), t.stacks.count.Load(), len(labelSets),
			t.droppedLive.Load(), t.droppedGroup.Load(), t.labels.dropped.Load()),
	}
	if p.cfg.goHeap {
		prof.Comments = append(prof.Comments, fmt.Sprintf(
			"go heap: runtime.MemProfileRate %d while profiling, %d before Start; in-use as of the last completed GC%s",
			p.cfg.rate, p.prevMemProfileRate, map[bool]string{true: " (GC forced before this snapshot)"}[p.cfg.gcFirst]))
	}
	return prof, nil
}

// addGroup adds the samples of one group: one per age bucket of its live
// allocations, labelled with the bucket's age. Each carries the cumulative
// allocations of its live objects too, and the youngest also those already
// freed, so every sample has in-use ≤ allocated, as in runtime/pprof's
// profiles, and -tagfocus=age=... with -sample_index=alloc_space shows what
// the old objects cost. A group with nothing live has one sample with no
// age.
func (p *Profiler) addGroup(b *profileBuilder, g *group, live []int32, labelSets [][]labelPair) {
	allocs := g.allocs.Load() // read after live was counted, so allocs ≥ live
	var total int64
	for _, n := range live {
		total += int64(n)
	}
	freed := max(allocs-total, 0)
	if allocs == 0 && total == 0 {
		return
	}
	stk := b.stack(g.stk)
	labels := sampleLabels(heapName(g.heap), g.labels, labelSets)
	add := func(allocated, inuse int64, age []int64) {
		allocObjects, allocBytes := p.sampler.scale(allocated, g.size)
		inuseObjects, inuseBytes := p.sampler.scale(inuse, g.size)
		s := &profile.Sample{
			Location: stk,
			Value:    []int64{allocObjects, allocBytes, inuseObjects, inuseBytes},
			Label:    labels,
			NumLabel: map[string][]int64{"bytes": {g.size}},
			NumUnit:  map[string][]string{"bytes": {"bytes"}},
		}
		if age != nil {
			s.NumLabel["age"], s.NumUnit["age"] = age, []string{"seconds"}
		}
		b.prof.Sample = append(b.prof.Sample, s)
	}
	if total == 0 {
		add(freed, 0, nil)
		return
	}
	for bucket, n := range live {
		if n == 0 {
			continue
		}
		add(int64(n)+freed, int64(n), []int64{int64(ageBuckets[bucket])})
		freed = 0
	}
}

// sampleLabels returns the string labels of a hook sample: its heap and
// the pprof labels of its label set. A pprof label named like one of the
// profile's own (heap, and the numeric bytes and age) is left out rather
// than mixed with it.
func sampleLabels(heap string, set uint32, sets [][]labelPair) map[string][]string {
	labels := map[string][]string{"heap": {heap}}
	if set == 0 {
		return labels
	}
	for _, l := range sets[set-1] {
		switch l.key {
		case "heap", "bytes", "age":
			continue
		}
		labels[l.key] = []string{l.value}
	}
	return labels
}

// compareGroups orders groups by heap, stack, size and label set.
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

func compareStacks(a, b *stack) int {
	switch {
	case a == b:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if c := slices.Compare(a.pcs, b.pcs); c != 0 {
		return c
	}
	switch {
	case a.truncated == b.truncated:
		return 0
	case a.truncated:
		return 1
	}
	return -1
}

// profileBuilder holds a profile under construction with its Locations and
// Functions deduplicated.
type profileBuilder struct {
	prof     *profile.Profile
	symbols  *symbolCache
	locs     map[locKey]*profile.Location
	syms     []symbol // scratch for stack
	synth    map[string]*profile.Location
	funcs    map[frameKey]*profile.Function
	mappings []*profile.Mapping // sorted by Start
}

type frameKey struct{ function, file string }

func newProfileBuilder(symbols *symbolCache) *profileBuilder {
	maps := processMappings()
	prof := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "alloc_objects", Unit: "count"},
			{Type: "alloc_space", Unit: "bytes"},
			{Type: "inuse_objects", Unit: "count"},
			{Type: "inuse_space", Unit: "bytes"},
		},
		DefaultSampleType: "inuse_space",
		PeriodType:        &profile.ValueType{Type: "space", Unit: "bytes"},
		Mapping:           maps,
	}
	return &profileBuilder{
		prof:     prof,
		symbols:  symbols,
		locs:     make(map[locKey]*profile.Location),
		synth:    make(map[string]*profile.Location),
		funcs:    make(map[frameKey]*profile.Function),
		mappings: maps,
	}
}

// stack returns the locations of st, leaf first, ending with a synthetic
// frame if the stack was cut or could not be stored. The PCs of an inlined
// chain share one Location, with a Line per function, innermost first, as
// runtime/pprof writes them (its pcDeck), so -lines and the Go heap's
// stacks agree with ours. runtime.goexit is left out, as runtime/pprof does.
func (b *profileBuilder) stack(st *stack) []*profile.Location {
	if st == nil {
		return []*profile.Location{b.synthetic(overflowFrame)}
	}
	syms := b.syms[:0]
	for _, pc := range st.pcs {
		if sym := b.symbols.lookup(pc); !sym.goexit {
			syms = append(syms, sym)
		}
	}
	b.syms = syms
	locs := make([]*profile.Location, 0, len(syms)+1)
	for i := 0; i < len(syms); {
		j := i + 1
		for j < len(syms) && syms[j-1].inlined && syms[j].entry == syms[j-1].entry {
			j++
		}
		locs = append(locs, b.location(syms[i:j]))
		i = j
	}
	if st.truncated {
		locs = append(locs, b.synthetic(truncatedFrame))
	}
	return locs
}

// location returns the Location for one physical frame: the symbols of an
// inlined chain, innermost first.
func (b *profileBuilder) location(chain []symbol) *profile.Location {
	k := locKey{chain[0].addr, len(chain)}
	if l, ok := b.locs[k]; ok {
		return l
	}
	l := b.newLocation(k)
	for _, sym := range chain {
		for _, f := range sym.frames {
			l.Line = append(l.Line, profile.Line{Function: b.function(f.function, f.file), Line: f.line})
		}
	}
	return l
}

// locKey identifies a Location: its address and the number of inlined
// frames it spans, since a stack cut inside an inlined chain holds a
// shorter Location at the same address.
type locKey struct {
	addr  uint64
	lines int
}

// newLocation adds an empty Location.
func (b *profileBuilder) newLocation(k locKey) *profile.Location {
	l := &profile.Location{
		ID:      uint64(len(b.prof.Location) + 1),
		Address: k.addr,
		Mapping: b.mapping(k.addr),
	}
	b.prof.Location = append(b.prof.Location, l)
	b.locs[k] = l
	return l
}

// synthetic returns a Location with no address standing for name.
func (b *profileBuilder) synthetic(name string) *profile.Location {
	if l, ok := b.synth[name]; ok {
		return l
	}
	l := &profile.Location{
		ID:   uint64(len(b.prof.Location) + 1),
		Line: []profile.Line{{Function: b.function(name, "")}},
	}
	b.prof.Location = append(b.prof.Location, l)
	b.synth[name] = l
	return l
}

func (b *profileBuilder) function(name, file string) *profile.Function {
	k := frameKey{name, file}
	if f, ok := b.funcs[k]; ok {
		return f
	}
	f := &profile.Function{
		ID:         uint64(len(b.prof.Function) + 1),
		Name:       name,
		SystemName: name,
		Filename:   file,
	}
	b.prof.Function = append(b.prof.Function, f)
	b.funcs[k] = f
	return f
}

// mapping returns the mapping that holds addr, or nil.
func (b *profileBuilder) mapping(addr uint64) *profile.Mapping {
	i := sort.Search(len(b.mappings), func(i int) bool { return b.mappings[i].Limit > addr })
	if i < len(b.mappings) && b.mappings[i].Start <= addr {
		return b.mappings[i]
	}
	if len(b.mappings) == 1 && b.mappings[0].Limit == 0 {
		return b.mappings[0] // the fallback mapping stands for everything
	}
	return nil
}

// processMappings returns fresh copies of this process's executable
// mappings, read once: a profile's encoder assigns to its mappings, so two
// profiles must not share them.
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
