package profiler

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/heapdump"
	"github.com/leakhunt/profiler/internal/leakrank"
)

// The retainers profile answers what a heap profile cannot: not where a
// live object was allocated, but what keeps it alive. It is built from a
// heap dump (runtime/debug.WriteHeapDump), which lists every object with
// its pointers, every root, and the runtime's sampled objects with their
// allocation stacks; internal/heapdump turns that into the shortest chain
// of references from a root to each sampled object. Each chain is written
// as the continuation of the object's allocation stack, so `go tool pprof`
// shows and merges chains the way it shows and merges calls.
//
// A dump stops the world for all of its writing, in proportion to the
// heap, so it is refused when the estimated pause is over a limit, and
// only one is taken at a time in a process. Where the dump goes and who
// parses it is per system: see retainers_linux.go.

// retainersBusy is set while a retainers profile is taken: WriteHeapDump
// is process-wide, and two at once would double a pause already long.
var retainersBusy atomic.Bool

// errRetainersBusy is returned by WriteRetainers while another one runs.
var errRetainersBusy = errors.New("profiler: a retainers profile is already being taken")

// takeRetainers wraps these around the errors of a profile not taken by
// design, so that Handler can tell them from failures: a refusal by the
// pause limit or the memory guard, which a smaller heap may lift, and a
// system or executable that cannot take one at all.
var (
	errRetainersRefused     = errors.New("refused")
	errRetainersUnsupported = errors.New("not supported")
)

// mapFrame names a map's internals in a chain; leakrank.HeldByPrefix
// starts the name of its root.
const mapFrame = "[map]"

// retainersDump is what one dump and its analysis found, with what they
// cost; it holds no byte of any object's contents.
type retainersDump struct {
	summary   *retainersSummary
	rate      int           // runtime.MemProfileRate when dumped
	pause     time.Duration // measured around WriteHeapDump
	estimate  time.Duration // of the pause, before it
	heapBytes uint64        // in live and unswept objects, before the dump
	dumpBytes int64
	helperCPU time.Duration // user and system time of the parsing process
	helperRSS int64         // its peak resident set, in bytes

	// The tracked objects given to the dump as targets, in the order of
	// summary.Targets, and what the profile needs to weight and label them.
	tracked     []trackedObject
	trackedRate int64
	heapNames   []string
}

// retainersSummary is what a profile needs of an analysis: the sampled
// objects that a root reaches, grouped by allocation stack, chain and
// size, each stack and chain stored once. Objects of a kind share their
// stack and the shape of their chain, so it is far smaller than the
// analysis; it crosses from the parsing process as JSON. It holds no
// address.
type retainersSummary struct {
	Stacks      [][]heapdump.Frame
	Chains      [][]heapdump.Hop
	Fields      [][]string // by chain, by hop: the field path of its pointer to the next; nil if none known
	Groups      []retainersGroup
	Targets     []retainersTarget // in the order the addresses were given
	Unreachable int               // sampled objects no root reaches
	Objects     int               // in the dump
	Edges       int               // pointers between them
}

// chain returns the frames of chain c, from the object outwards.
func (s *retainersSummary) chain(c int) []string {
	var fields []string
	if c < len(s.Fields) {
		fields = s.Fields[c]
	}
	return chainFrames(s.Chains[c], fields)
}

// retainersGroup is the sampled objects of one stack, chain and size.
type retainersGroup struct {
	Stack, Chain int    // indices in Stacks and Chains
	Size         uint64 // as the runtime recorded it, else the slot's
	Count        int
}

// retainersTarget is what the dump says of an address the helper was
// given: the chain that reaches its object, -1 for none, and the object's
// slot size, 0 if no object of the dump holds the address.
type retainersTarget struct {
	Chain int
	Size  uint64
}

// WriteRetainers writes to w a gzipped pprof profile of what keeps the
// sampled live Go objects alive: the Go runtime's sampled heap objects,
// and the sampled objects reported with Track (Linux only; elsewhere it
// returns an error saying so). Each sample is one sampled live object,
// weighted as in the heap profile (inuse_objects, inuse_space) and
// labeled with its heap as there ("go" for the runtime's). Its stack is the
// object's allocation stack, leaf first, continued by the references that
// hold it, one frame per object on the way, and ends with the root. An
// object on the way is named by its type and the field that points on
// where the executable's DWARF tells them ("[main.Session] .conns[i]",
// every element of an array as one frame), else by its size, or its type
// when the runtime keeps it, and the offset of the pointer ("[48 B object]
// +16", "[704 B main.Session] +8"); a map's internals are one frame ("[map]
// map[string]*main.Node"). The root is a global with the field that
// points on ("[held by] main.server.cache"), or a stack frame ("[held by]
// main.worker (goroutine 7, chan receive)"). Types and fields are known
// from a global's declared type onwards, and from an object whose type
// the runtime keeps (with a malloc header: 512 bytes to 32 KiB, holding
// pointers); not from a stack frame's variables. Chains of the same shape merge as stacks do, so
// `go tool pprof -traces` or -top on it shows which roots hold the most.
//
// It is the program's whole heap that is dumped, with the world stopped
// for as long as that takes, in proportion to the heap, and longer when
// other processes compete for the CPU (bench/RESULTS.md has measured
// pauses). WriteRetainers estimates that pause from the heap's size first
// and refuses above a limit, one second unless raised with
// WithMaxRetainersPause. It also refuses when the dump, which stays in
// memory until parsed, would bring the process's cgroup within 10 % of its
// memory limit. No byte of the heap's contents leaves the
// process's memory: the dump is written to an anonymous in-memory file
// (memfd), read by a copy of the program's own executable started for the
// purpose (so package init functions that run before this package's also
// run in it) which returns only sizes, offsets and names of code and types,
// and closed as soon as that copy exits. The copy needs the executable's
// symbol table, so a binary built with -ldflags=-s is refused.
//
// The profile describes the heap at the moment of the dump, not as of an
// earlier GC as the heap profile does. Objects that no root reaches,
// garbage not yet collected, are left out
// and counted in the profile's comments, as are objects held only by roots
// the dump lacks (runtime.AddCleanup, weak pointers, cgo). A tracked
// package-level variable, which is no heap object, is left out and
// counted too.
//
// WriteRetainers is safe for concurrent use, but only one runs at a time
// in a process: a call while another runs returns an error at once. It
// returns ErrStopped after Stop.
func (p *Profiler) WriteRetainers(w io.Writer) error {
	return p.writeRetainers(context.Background(), w, p.maxRetainersPause())
}

// writeRetainers is WriteRetainers with the pause limit given; the end of
// ctx stops the helper's parse (not the dump, which is over by then).
func (p *Profiler) writeRetainers(ctx context.Context, w io.Writer, limit time.Duration) error {
	// Stop need not wait for a dump, which owes nothing to the
	// profiler's state: the lifecycle lock is held only to check it.
	p.lifecycle.RLock()
	stopped := p.stopped
	p.lifecycle.RUnlock()
	if stopped {
		return ErrStopped
	}
	if !retainersBusy.CompareAndSwap(false, true) {
		return errRetainersBusy
	}
	defer retainersBusy.Store(false)
	tracked := p.table.trackedObjects()
	targets := make([]uint64, len(tracked))
	for i, o := range tracked {
		targets[i] = uint64(o.addr)
	}
	d, err := takeRetainers(ctx, limit, targets)
	if err != nil {
		return fmt.Errorf("profiler: retainers profile: %w", err)
	}
	if len(d.summary.Targets) != len(tracked) {
		return fmt.Errorf("profiler: retainers profile: the helper answered for %d tracked objects of %d", len(d.summary.Targets), len(tracked))
	}
	d.tracked, d.trackedRate, d.heapNames = tracked, p.table.rate, appendHeapNames(nil)
	var buf bytes.Buffer
	if err := d.profile(time.Now()).Write(&buf); err != nil {
		return fmt.Errorf("profiler: retainers profile: encoding: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// profile builds the pprof profile of d, taken at now.
func (d *retainersDump) profile(now time.Time) *profile.Profile {
	b := newRetainersBuilder()
	rate := int64(max(d.rate, 1))
	var c retainersCounts
	for _, g := range d.summary.Groups {
		c.chained += g.Count
		// Each sampled object stands for 1/p objects of its size, p the
		// chance that the runtime sampled one (sampler.go, probability).
		// The weights are summed as floats and rounded once per sample,
		// so that many small objects do not round away.
		p := probability(float64(g.Size), rate)
		n := float64(g.Count)
		b.add(allocationFrames(d.summary.Stacks[g.Stack]), d.summary.chain(g.Chain), goHeapName, int64(g.Size), n/p, n*float64(g.Size)/p)
	}
	c.unreachable = d.summary.Unreachable
	var frames []heapdump.Frame
	for i, o := range d.tracked {
		t := d.summary.Targets[i]
		switch {
		case !o.stillAt():
			// Unreachable since it was listed: its address may hold
			// another object by the time of the dump.
			c.trackedDied++
			continue
		case t.Size == 0:
			c.trackedOutside++
			continue
		case t.Chain < 0:
			c.trackedUnreachable++
			continue
		}
		c.tracked++
		// As the heap profile weights a tracked sample (scale).
		p := probability(float64(o.size), d.trackedRate)
		frames = trackedFrames(frames[:0], o.stk)
		b.add(frames, d.summary.chain(t.Chain), d.heapNames[o.heap], o.size, 1/p, float64(o.size)/p)
	}
	prof := b.build()
	prof.Period = rate
	prof.TimeNanos = now.UnixNano()
	prof.Comments = d.comments(c)
	return prof
}

// retainersCounts are the sampled objects of a retainers profile, by what
// became of them.
type retainersCounts struct {
	chained, unreachable int // of the Go runtime's samples

	tracked            int // chained to a root
	trackedUnreachable int // reached by no root the dump lists
	trackedOutside     int // in no object of the dump: a package-level variable
	trackedDied        int // found unreachable by the collector during the dump
}

// trackedFrames appends to frames the allocation stack of a tracked
// object, one frame per function (inlined ones included), without
// runtime.goexit, as the heap profile shows it; or, for a stack the table
// had no room for, the frame the heap profile has in its place.
func trackedFrames(frames []heapdump.Frame, stk *stack) []heapdump.Frame {
	if stk == nil {
		return append(frames, heapdump.Frame{Func: overflowFrame})
	}
	for _, pc := range stk.pcs {
		sym := processSymbols.lookup(pc)
		if sym.goexit {
			continue
		}
		for _, f := range sym.frames {
			frames = append(frames, heapdump.Frame{Func: f.function, File: f.file, Line: int(f.line)})
		}
	}
	return frames
}

// comments describes the dump, its costs and what was left out.
func (d *retainersDump) comments(c retainersCounts) []string {
	return []string{
		leakrank.RetainersPrefix + " each stack is a sampled Go object's allocation stack, then the references that keep it alive, the root outermost",
		fmt.Sprintf("pause: the world was stopped %v for the heap dump (estimated %v from %d MiB of heap); runtime.MemProfileRate %d",
			d.pause.Round(time.Millisecond), d.estimate.Round(time.Millisecond), d.heapBytes>>20, d.rate),
		fmt.Sprintf("dump: %d bytes, in memory only, parsed by a copy of this executable that used %v of CPU and %d MiB of memory at most",
			d.dumpBytes, d.helperCPU.Round(time.Millisecond), d.helperRSS>>20),
		fmt.Sprintf("graph: %d objects, %d pointers between them", d.summary.Objects, d.summary.Edges),
		fmt.Sprintf("sampled objects: %d chained to a root; %d unreachable (garbage not yet collected, or held only by roots the dump lacks), left out",
			c.chained, c.unreachable),
		fmt.Sprintf("tracked objects: %d chained to a root; left out: %d unreachable, %d outside the heap (package-level variables), %d collected during the dump",
			c.tracked, c.trackedUnreachable, c.trackedOutside, c.trackedDied),
	}
}

// retainersBuilder gathers samples whose stacks share Locations: one per
// distinct frame, real or synthetic, so that chains of the same shape
// merge as stacks do.
type retainersBuilder struct {
	prof    *profile.Profile
	funcs   map[heapdump.Frame]*profile.Function // Line 0: by name and file only
	locs    map[heapdump.Frame]*profile.Location // File "": a synthetic frame
	samples map[string]*retainersSample
	ids     []byte // scratch: the key of a stack
	stack   []*profile.Location
}

// retainersSample accumulates the weights of the sampled objects of one
// stack and size.
type retainersSample struct {
	locs           []*profile.Location
	heap           string
	size           int64
	objects, bytes float64
}

func newRetainersBuilder() *retainersBuilder {
	return &retainersBuilder{
		prof: &profile.Profile{
			SampleType: []*profile.ValueType{
				{Type: "inuse_objects", Unit: "count"},
				{Type: "inuse_space", Unit: "bytes"},
			},
			DefaultSampleType: "inuse_space",
			PeriodType:        &profile.ValueType{Type: "space", Unit: "bytes"},
		},
		funcs:   make(map[heapdump.Frame]*profile.Function),
		locs:    make(map[heapdump.Frame]*profile.Location),
		samples: make(map[string]*retainersSample),
	}
}

// add adds the weights of sampled objects of one allocation stack, chain,
// heap and size.
func (b *retainersBuilder) add(stack []heapdump.Frame, chain []string, heap string, size int64, objects, bytes float64) {
	b.stack = b.stack[:0]
	for _, f := range stack {
		b.stack = append(b.stack, b.location(f))
	}
	for _, name := range chain {
		b.stack = append(b.stack, b.location(heapdump.Frame{Func: name}))
	}
	b.ids = b.ids[:0]
	for _, l := range b.stack {
		b.ids = strconv.AppendUint(b.ids, l.ID, 10)
		b.ids = append(b.ids, ' ')
	}
	b.ids = strconv.AppendInt(b.ids, size, 10)
	b.ids = append(b.ids, ' ')
	b.ids = append(b.ids, heap...)
	rs := b.samples[string(b.ids)]
	if rs == nil {
		rs = &retainersSample{locs: slices.Clone(b.stack), heap: heap, size: size}
		b.samples[string(b.ids)] = rs
	}
	rs.objects += objects
	rs.bytes += bytes
}

// location returns the Location of one frame, a synthetic one (no file,
// no line) for a frame of a chain.
func (b *retainersBuilder) location(f heapdump.Frame) *profile.Location {
	if l, ok := b.locs[f]; ok {
		return l
	}
	fk := heapdump.Frame{Func: f.Func, File: f.File}
	fn, ok := b.funcs[fk]
	if !ok {
		fn = &profile.Function{ID: uint64(len(b.prof.Function) + 1), Name: f.Func, SystemName: f.Func, Filename: f.File}
		if f.File == "" {
			// pprof reads a name with brackets as C++ and drops what
			// is in parentheses ("(goroutine 7, chan receive)"),
			// unless the name is marked as already demangled, by a
			// system name that differs.
			fn.SystemName = ""
		}
		b.funcs[fk] = fn
		b.prof.Function = append(b.prof.Function, fn)
	}
	l := &profile.Location{ID: uint64(len(b.prof.Location) + 1), Line: []profile.Line{{Function: fn, Line: int64(f.Line)}}}
	b.locs[f] = l
	b.prof.Location = append(b.prof.Location, l)
	return l
}

// build returns the profile of the samples added, sorted by stack and size
// so that the same heap gives the same profile.
func (b *retainersBuilder) build() *profile.Profile {
	keys := make([]string, 0, len(b.samples))
	for k := range b.samples {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y string) int {
		sx, sy := b.samples[x], b.samples[y]
		return cmp.Or(compareLocations(sx.locs, sy.locs), cmp.Compare(sx.size, sy.size), strings.Compare(sx.heap, sy.heap))
	})
	for _, k := range keys {
		rs := b.samples[k]
		b.prof.Sample = append(b.prof.Sample, &profile.Sample{
			Location: rs.locs,
			Value:    []int64{saturate(rs.objects), saturate(rs.bytes)},
			Label:    map[string][]string{"heap": {rs.heap}},
			NumLabel: map[string][]int64{"bytes": {rs.size}},
			NumUnit:  map[string][]string{"bytes": {"bytes"}},
		})
	}
	return b.prof
}

func compareLocations(a, b []*profile.Location) int {
	return slices.CompareFunc(a, b, func(x, y *profile.Location) int { return cmp.Compare(x.ID, y.ID) })
}

// allocationFrames returns an allocation stack as the heap profile shows
// it: without the runtime's frames at the leaf (runtime.mallocgc and the
// make or new that called it) and without runtime.goexit at the root, as
// runtime/pprof leaves them out (writeHeapProto, hideRuntime).
func allocationFrames(stk []heapdump.Frame) []heapdump.Frame {
	for i, f := range stk {
		if !leakrank.IsRuntimeFunction(f.Func) {
			stk = stk[i:]
			break
		}
	}
	if n := len(stk); n > 0 && stk[n-1].Func == "runtime.goexit" {
		stk = stk[:n-1]
	}
	return stk
}

// chainFrames returns the frames of a chain from the object outwards: one
// for each object that holds the next, named by its type and the field
// that points on where the executable's DWARF tells them
// ("[main.entry] .buf"), else by its type or size and the offset of the
// pointer in it ("[48 B object] +16"); one for a map's internals; and the
// root last. fields, if not nil, has the field path of each hop's pointer
// to the next. The object itself is not among the frames: its allocation
// stack stands for it.
func chainFrames(chain []heapdump.Hop, fields []string) []string {
	field := func(i int) string {
		if i < len(fields) {
			return fields[i]
		}
		return ""
	}
	var names []string
	for i := len(chain) - 2; i >= 1; i-- {
		h := chain[i]
		switch {
		case h.Map && h.Name != "":
			names = append(names, mapFrame+" "+h.Name)
		case h.Map:
			names = append(names, mapFrame)
		case h.Name != "" && field(i) != "":
			names = append(names, "["+h.Name+"] "+field(i))
		case h.Name != "":
			names = append(names, fmt.Sprintf("[%d B %s] +%d", h.Size, h.Name, chain[i+1].Offset))
		default:
			names = append(names, fmt.Sprintf("[%d B object] +%d", h.Size, chain[i+1].Offset))
		}
	}
	return append(names, rootFrame(chain, field(0)))
}

// rootFrame names the root of a chain. A global's frame carries the field
// path of the pointer in it (main.server.cache), or its offset (main.server
// +16), which tells the fields of a struct apart; a stack frame's offset
// counts from its stack pointer, which means nothing to a reader, and is
// left out.
func rootFrame(chain []heapdump.Hop, field string) string {
	r := chain[0]
	name := r.Name
	switch {
	case name == "":
		name = r.Root.String() + " root"
	case r.Root == heapdump.RootGlobal && field != "":
		name += field
	case r.Root == heapdump.RootGlobal && len(chain) > 1 && chain[1].Offset != 0:
		name += fmt.Sprintf(" +%d", chain[1].Offset)
	}
	return leakrank.HeldByPrefix + name
}
