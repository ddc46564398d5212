package leakrank

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// line is one line of a location: a function, its file and a line.
type line struct {
	fn, file string
	n        int64
}

// heapSample is a sample of a heap profile built by encodeHeap; each
// location is its lines, innermost first, so a location of two lines is
// an inlined call.
type heapSample struct {
	heap  string
	locs  [][]line
	inuse int64
}

// retainedSample is a sample of a retainers profile built by
// encodeRetainers: allocation frames, one location each, then the chain
// from the object outwards, the root last.
type retainedSample struct {
	heap  string
	alloc []line
	chain []string
	bytes int64
}

// profileBuilder adds functions and locations to a profile, one function
// per name and file as pprof keeps them.
type profileBuilder struct {
	p     *profile.Profile
	funcs map[[2]string]*profile.Function
}

func newProfileBuilder(types ...string) *profileBuilder {
	p := &profile.Profile{PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"}, TimeNanos: 1e18}
	for _, t := range types {
		typ, unit, _ := strings.Cut(t, "/")
		p.SampleType = append(p.SampleType, &profile.ValueType{Type: typ, Unit: unit})
	}
	return &profileBuilder{p: p, funcs: make(map[[2]string]*profile.Function)}
}

func (b *profileBuilder) location(lines []line) *profile.Location {
	l := &profile.Location{ID: uint64(len(b.p.Location) + 1)}
	for _, ln := range lines {
		fn := b.funcs[[2]string{ln.fn, ln.file}]
		if fn == nil {
			fn = &profile.Function{ID: uint64(len(b.p.Function) + 1), Name: ln.fn, Filename: ln.file}
			if ln.file != "" {
				fn.SystemName = ln.fn
			}
			b.funcs[[2]string{ln.fn, ln.file}] = fn
			b.p.Function = append(b.p.Function, fn)
		}
		l.Line = append(l.Line, profile.Line{Function: fn, Line: ln.n})
	}
	b.p.Location = append(b.p.Location, l)
	return l
}

// parsed encodes the profile and parses it back, as a file is read.
func (b *profileBuilder) parsed(t *testing.T) *profile.Profile {
	t.Helper()
	var buf bytes.Buffer
	if err := b.p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	p, err := ParseProfile("built", buf.Bytes(), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func encodeHeap(t *testing.T, samples []heapSample) *profile.Profile {
	b := newProfileBuilder("inuse_objects/count", "inuse_space/bytes")
	for _, s := range samples {
		out := &profile.Sample{Value: []int64{1, s.inuse}}
		if s.heap != "" {
			out.Label = map[string][]string{"heap": {s.heap}}
		}
		for _, l := range s.locs {
			out.Location = append(out.Location, b.location(l))
		}
		b.p.Sample = append(b.p.Sample, out)
	}
	return b.parsed(t)
}

func encodeRetainers(t *testing.T, samples []retainedSample) *profile.Profile {
	b := newProfileBuilder("inuse_objects/count", "inuse_space/bytes")
	b.p.Comments = []string{RetainersPrefix + " each stack is ..."}
	for _, s := range samples {
		out := &profile.Sample{Value: []int64{1, s.bytes}}
		if s.heap != "" {
			out.Label = map[string][]string{"heap": {s.heap}}
		}
		for _, ln := range s.alloc {
			out.Location = append(out.Location, b.location([]line{ln}))
		}
		for _, name := range s.chain {
			out.Location = append(out.Location, b.location([]line{{fn: name}}))
		}
		b.p.Sample = append(b.p.Sample, out)
	}
	return b.parsed(t)
}

// describeRetention formats a Retention for comparison: its bytes, then
// each root with its bytes and chain.
func describeRetention(ret Retention) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:", ret.Bytes)
	for _, r := range ret.Roots {
		fmt.Fprintf(&b, " %s=%d [%s];", r.Name, r.Bytes, strings.Join(r.Chain, " | "))
	}
	return b.String()
}

// The frames of the heap profile in TestMatch: main.handle calls
// main.newNode and main.newBuf, both inlined into it, and allocates
// itself; the heap profile names each call, the retainers profile names
// them all main.handle, with the inlined code's file and line.
var (
	mainFrame = line{"main.main", "main.go", 5}
	runtimeFr = line{"runtime.main", "proc.go", 290}
)

func TestMatch(t *testing.T) {
	heap := encodeHeap(t, []heapSample{
		// newNode, inlined into handle at main.go:30.
		{"go", [][]line{{{"main.newNode", "node.go", 12}, {"main.handle", "main.go", 30}}, {mainFrame}, {runtimeFr}}, 1000},
		// handle itself, at two lines: one site.
		{"go", [][]line{{{"main.handle", "main.go", 31}}, {mainFrame}, {runtimeFr}}, 500},
		{"go", [][]line{{{"main.handle", "main.go", 33}}, {mainFrame}, {runtimeFr}}, 500},
		// newBuf, inlined into handle at main.go:32.
		{"go", [][]line{{{"main.newBuf", "buf.go", 5}, {"main.handle", "main.go", 32}}, {mainFrame}, {runtimeFr}}, 700},
		// A map's growth: the runtime's frames at the leaf, which a
		// retainers profile leaves out.
		{"go", [][]line{{{"internal/runtime/maps.newarray", "table.go", 1}}, {{"runtime.mapassign_faststr", "map.go", 2}}, {{"main.fill", "main.go", 40}}, {mainFrame}}, 300},
		// The profiler's own memory, and a site of the user's with the
		// same leaf as some of it.
		{"go", [][]line{{{OwnFrame, "", 0}}}, 64},
		{"go", [][]line{{{"slices.Grow", "slices.go", 1}}, {{"main.grow", "main.go", 50}}, {mainFrame}}, 64},
		// The same stack in the Go heap and in a heap of tracked objects.
		{"go", [][]line{{{"main.newSession", "main.go", 60}}, {mainFrame}}, 2048},
		{"sessions", [][]line{{{"main.newSession", "main.go", 60}}, {mainFrame}}, 2048},
		// A heap of memory allocated by hand, never in a retainers profile.
		{"default", [][]line{{{"main.newSession", "main.go", 60}}, {mainFrame}}, 4096},
		// A goroutine's function, inlined into the go statement's wrapper,
		// which pprof leaves out and a heap dump names the frame by.
		{"go", [][]line{{{"main.keeper", "main.go", 47}}}, 384},
	})
	handleAt := func(file string, n int64) []line {
		return []line{{"main.handle", file, n}, {"main.handle", "main.go", 30}, mainFrame, runtimeFr}
	}
	ret, err := NewRetainers("r.pb.gz", encodeRetainers(t, []retainedSample{
		// newNode's objects: two roots, the registry through two chains.
		{"go", handleAt("node.go", 12), []string{"[48 B object] +16", "[held by] main.registry"}, 600},
		{"go", handleAt("node.go", 12), []string{"[map] map[string]*main.Node", "[held by] main.registry"}, 200},
		{"go", handleAt("node.go", 12), []string{"[held by] main.worker (goroutine 7, chan receive)"}, 200},
		// handle's own, at both lines, no label as before the profiler
		// wrote one.
		{"", []line{{"main.handle", "main.go", 31}, mainFrame, runtimeFr}, []string{"[held by] main.cache"}, 300},
		{"", []line{{"main.handle", "main.go", 33}, mainFrame, runtimeFr}, []string{"[held by] main.cache +8"}, 300},
		// newBuf's, which have the same names as newNode's.
		{"go", []line{{"main.handle", "buf.go", 5}, {"main.handle", "main.go", 32}, mainFrame, runtimeFr}, []string{"[held by] main.pool"}, 700},
		{"go", []line{{"main.fill", "main.go", 40}, mainFrame}, []string{"[held by] main.table"}, 300},
		{"go", []line{{"slices.Grow", "slices.go", 1}, {"github.com/leakhunt/profiler.(*liveTable).grow", "table.go", 9}, mainFrame}, []string{"[held by] github.com/leakhunt/profiler.active"}, 64},
		{"go", []line{{"main.newSession", "main.go", 60}, mainFrame}, []string{"[held by] main.buffers"}, 1024},
		{"sessions", []line{{"main.newSession", "main.go", 60}, mainFrame}, []string{"[map] map[string]*main.session", "[held by] main.sessions"}, 2048},
		{"go", []line{{"main.main.gowrap1", "main.go", 47}}, []string{"[held by] main.main.gowrap1 (goroutine 7, chan receive)"}, 384},
		// Not a chain: no root.
		{"go", []line{{"main.newSession", "main.go", 60}, mainFrame}, []string{"[48 B object] +0"}, 999},
	}))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ret.Match("h.pb.gz", heap)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		site Site
		ok   bool
		want string
	}{
		{Site{"go", []string{"main.newNode", "main.handle", "main.main", "runtime.main"}}, true,
			"1000: main.registry=800 [[held by] main.registry | [48 B object] +16]; main.worker (goroutine 7, chan receive)=200 [[held by] main.worker (goroutine 7, chan receive)];"},
		{Site{"go", []string{"main.handle", "main.main", "runtime.main"}}, true,
			"600: main.cache=300 [[held by] main.cache]; main.cache +8=300 [[held by] main.cache +8];"},
		{Site{"go", []string{"main.newBuf", "main.handle", "main.main", "runtime.main"}}, true, "700: main.pool=700 [[held by] main.pool];"},
		{Site{"go", []string{"internal/runtime/maps.newarray", "runtime.mapassign_faststr", "main.fill", "main.main"}}, true, "300: main.table=300 [[held by] main.table];"},
		{Site{"go", []string{OwnFrame}}, true, "64: github.com/leakhunt/profiler.active=64 [[held by] github.com/leakhunt/profiler.active];"},
		{Site{"go", []string{"slices.Grow", "main.grow", "main.main"}}, true, "0:"},
		{Site{"go", []string{"main.newSession", "main.main"}}, true, "1024: main.buffers=1024 [[held by] main.buffers];"},
		{Site{"sessions", []string{"main.newSession", "main.main"}}, true, "2048: main.sessions=2048 [[held by] main.sessions | [map] map[string]*main.session];"},
		{Site{"default", []string{"main.newSession", "main.main"}}, false, "0:"},
		{Site{"go", []string{"main.keeper"}}, true, "384: main.main.gowrap1 (goroutine 7, chan receive)=384 [[held by] main.main.gowrap1 (goroutine 7, chan receive)];"},
		{Site{"go", []string{"main.gone"}}, true, "0:"},
	} {
		got, ok := h.Of(tc.site)
		if ok != tc.ok || describeRetention(got) != tc.want {
			t.Errorf("%s %q:\n got %v %s\nwant %v %s", tc.site.Heap, tc.site.Stack, ok, describeRetention(got), tc.ok, tc.want)
		}
	}
}

// Stacks whose lines match no site's, as in a retainers profile of
// another build, are matched by their names: to every site with those
// names, which for calls inlined into one function may be several.
func TestMatchByNames(t *testing.T) {
	heap := encodeHeap(t, []heapSample{
		{"go", [][]line{{{"main.newNode", "node.go", 12}, {"main.handle", "main.go", 30}}, {mainFrame}}, 1000},
		{"go", [][]line{{{"main.newBuf", "buf.go", 5}, {"main.handle", "main.go", 32}}, {mainFrame}}, 700},
		{"go", [][]line{{{"main.handle", "main.go", 31}}, {mainFrame}}, 500},
	})
	ret, err := NewRetainers("r.pb.gz", encodeRetainers(t, []retainedSample{
		{"go", []line{{"main.handle", "node.go", 14}, {"main.handle", "main.go", 35}, mainFrame}, []string{"[held by] main.registry"}, 100},
		{"go", []line{{"main.handle", "main.go", 36}, mainFrame}, []string{"[held by] main.cache"}, 50},
	}))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ret.Match("h.pb.gz", heap)
	if err != nil {
		t.Fatal(err)
	}
	for stack, want := range map[string]string{
		"main.newNode main.handle main.main": "100: main.registry=100 [[held by] main.registry];",
		"main.newBuf main.handle main.main":  "100: main.registry=100 [[held by] main.registry];",
		"main.handle main.main":              "50: main.cache=50 [[held by] main.cache];",
	} {
		if got, _ := h.Of(Site{"go", strings.Fields(stack)}); describeRetention(got) != want {
			t.Errorf("%s: %s, want %s", stack, describeRetention(got), want)
		}
	}
}

// Roots are ordered by bytes, then by name; a root's chain is the one
// that holds the most of its bytes, the first in chain order of those
// that hold as much.
func TestMatchRootOrder(t *testing.T) {
	stack := []line{{"main.alloc", "main.go", 1}}
	heap := encodeHeap(t, []heapSample{{"go", [][]line{stack}, 1}})
	ret, err := NewRetainers("r.pb.gz", encodeRetainers(t, []retainedSample{
		{"go", stack, []string{"[held by] main.b"}, 10},
		{"go", stack, []string{"[held by] main.a"}, 10},
		{"go", stack, []string{"[16 B object] +8", "[held by] main.c"}, 5},
		{"go", stack, []string{"[16 B object] +0", "[held by] main.c"}, 5},
		{"go", stack, []string{"[32 B object] +0", "[held by] main.c"}, 6},
		{"go", stack, []string{"[held by] main.d"}, 0}, // nothing held
	}))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ret.Match("h.pb.gz", heap)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := h.Of(Site{"go", []string{"main.alloc"}})
	if want := "36: main.c=16 [[held by] main.c | [32 B object] +0]; main.a=10 [[held by] main.a]; main.b=10 [[held by] main.b];"; describeRetention(got) != want {
		t.Errorf("got  %s\nwant %s", describeRetention(got), want)
	}
}

// A heap profile without heap labels, as runtime/pprof writes them, is
// all Go heap.
func TestMatchUnlabelledHeap(t *testing.T) {
	stack := []line{{"main.alloc", "main.go", 1}, mainFrame}
	heap := encodeHeap(t, []heapSample{{"", [][]line{{stack[0]}, {stack[1]}}, 1}})
	ret, err := NewRetainers("r.pb.gz", encodeRetainers(t, []retainedSample{
		{"go", stack, []string{"[held by] main.a"}, 8},
		{"", stack, []string{"[held by] main.b"}, 8},
	}))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ret.Match("h.pb.gz", heap)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := h.Of(Site{"", []string{"main.alloc", "main.main"}})
	if want := "16: main.a=8 [[held by] main.a]; main.b=8 [[held by] main.b];"; !ok || describeRetention(got) != want {
		t.Errorf("got %v %s, want true %s", ok, describeRetention(got), want)
	}
}
