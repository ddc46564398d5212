package profiler

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// These tests check the stacks of hook samples as a user sees them in the
// written profile: the leaf is the caller of the hook for every entry point
// (whatever the library inlines or wraps in between), deep stacks are cut
// with a visible mark, inlined callers are kept, and a full stack table
// still accounts for its bytes under a visible mark.
//
// They live in package profiler for the stack-table test, which lowers the
// bound on a running profiler. So "a library frame" cannot mean "a function
// of package profiler" (the test helpers are too): it is a frame of this
// package, or of its internal packages, from a file other than a _test.go
// file.

// One helper per entry point. Each returns the file and line of its hook
// call, which is on the line after its runtime.Caller(0) call.

//go:noinline
func frameAlloc(key uintptr) (string, int) {
	_, file, line, _ := runtime.Caller(0)
	Alloc(key, 101)
	return file, line + 1
}

//go:noinline
func frameHeapAlloc(h *Heap, key uintptr) (string, int) {
	_, file, line, _ := runtime.Caller(0)
	h.Alloc(key, 102)
	return file, line + 1
}

//go:noinline
func frameTrack(obj *[80]byte) (string, int) {
	_, file, line, _ := runtime.Caller(0)
	Track(obj)
	return file, line + 1
}

//go:noinline
func frameTrackIn(obj *[96]byte) (string, int) {
	_, file, line, _ := runtime.Caller(0)
	TrackIn(context.Background(), nil, obj, 1000)
	return file, line + 1
}

//go:noinline
func frameHeapTrackIn(h *Heap, obj *[112]byte) (string, int) {
	_, file, line, _ := runtime.Caller(0)
	TrackIn(context.Background(), h, obj, 2000)
	return file, line + 1
}

//go:noinline
func frameHeapAllocContext(h *Heap, key uintptr) (string, int) {
	_, file, line, _ := runtime.Caller(0)
	h.AllocContext(context.Background(), key, 103)
	return file, line + 1
}

const thisPackage = "github.com/leakhunt/profiler."

func TestLeafFrameIsHookCaller(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	h := NewHeap("frames")
	o1, o2, o3 := new([80]byte), new([96]byte), new([112]byte)

	type site struct {
		fn   string
		heap string
		file string
		line int
	}
	var sites []site
	add := func(fn, heap string, file string, line int) {
		sites = append(sites, site{thisPackage + fn, heap, file, line})
	}
	f, l := frameAlloc(1)
	add("frameAlloc", defaultHeapName, f, l)
	f, l = frameHeapAlloc(h, 1)
	add("frameHeapAlloc", "frames", f, l)
	f, l = frameTrack(o1)
	add("frameTrack", defaultHeapName, f, l)
	f, l = frameTrackIn(o2)
	add("frameTrackIn", defaultHeapName, f, l)
	f, l = frameHeapTrackIn(h, o3)
	add("frameHeapTrackIn", "frames", f, l)
	f, l = frameHeapAllocContext(h, 2)
	add("frameHeapAllocContext", "frames", f, l)

	prof := writeParsed(t, p)
	runtime.KeepAlive([]any{o1, o2, o3}) // no cleanup may remove a sample before the write

	for _, s := range sites {
		var found []*profile.Sample
		for _, smp := range prof.Sample {
			if leafFunction(smp) == s.fn {
				found = append(found, smp)
			}
		}
		// One sample of its allocation, one of its live object, of one
		// stack.
		if len(found) != 2 {
			t.Errorf("%s: %d samples with it as leaf, want 2; leaves: %v", s.fn, len(found), leaves(prof))
			continue
		}
		for _, smp := range found {
			line := smp.Location[0].Line[0]
			if line.Function.Filename != s.file || line.Line != int64(s.line) {
				t.Errorf("%s: leaf frame at %s:%d, want the hook call at %s:%d",
					s.fn, line.Function.Filename, line.Line, s.file, s.line)
			}
			if got := heapLabel(smp); got != s.heap {
				t.Errorf("%s: heap label %q, want %q", s.fn, got, s.heap)
			}
			// The helper's caller follows it: the leaf is not a frame that
			// merely happens to carry the helper's name.
			if got := frameNames(smp); len(got) < 2 || got[1] != thisPackage+"TestLeafFrameIsHookCaller" {
				t.Errorf("%s: stack %v, want the helper then TestLeafFrameIsHookCaller", s.fn, got)
			}
		}
	}
	checkNoLibraryFrames(t, prof)
}

// frameNames returns the functions of a sample's stack, leaf first, one per
// Line (inlined frames included).
func frameNames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, l := range loc.Line {
			out = append(out, l.Function.Name)
		}
	}
	return out
}

func leaves(prof *profile.Profile) []string {
	var out []string
	for _, s := range prof.Sample {
		out = append(out, leafFunction(s))
	}
	return out
}

// isLibraryFrame reports whether a frame belongs to the profiler itself.
func isLibraryFrame(fn *profile.Function) bool {
	lib := strings.HasPrefix(fn.Name, thisPackage) || strings.HasPrefix(fn.Name, "github.com/leakhunt/profiler/")
	return (lib && !strings.HasSuffix(fn.Filename, "_test.go")) || fn.Name == "runtime.Callers"
}

// checkNoLibraryFrames fails the test if any hook sample's stack shows a
// frame of the profiler (or runtime.Callers): the capture must skip exactly
// its own frames, for every entry point.
func checkNoLibraryFrames(t *testing.T, prof *profile.Profile) {
	t.Helper()
	checked := 0
	for _, s := range prof.Sample {
		if heapLabel(s) == goHeapName {
			continue // the Go heap's stacks are the runtime's business
		}
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if isLibraryFrame(l.Function) {
					t.Errorf("sample with leaf %s has library frame %s (%s:%d)",
						leafFunction(s), l.Function.Name, l.Function.Filename, l.Line)
				}
				checked++
			}
		}
	}
	if checked == 0 {
		t.Errorf("no hook frames to check")
	}
}

// recurseToAlloc calls itself depth times, then allocates from
// deepAllocSite. It returns the stack deepAllocSite saw, as runtime.Callers
// reports it from that frame: the stack the hook captures.
//
//go:noinline
func recurseToAlloc(depth int, key uintptr) []uintptr {
	if depth > 0 {
		return recurseToAlloc(depth-1, key)
	}
	return deepAllocSite(key)
}

//go:noinline
func deepAllocSite(key uintptr) []uintptr {
	var buf [1024]uintptr
	n := runtime.Callers(1, buf[:])
	Alloc(key, 77)
	return append([]uintptr(nil), buf[:n]...)
}

func TestDeepStackTruncated(t *testing.T) {
	for _, depth := range []int{8, maxStackDepth} {
		p := startTestProfiler(t, WithSamplingRate(1), WithStackDepth(depth))
		recurseToAlloc(depth+40, 1)
		prof := writeParsed(t, p)
		if err := p.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		s := onlySample(t, prof, thisPackage+"deepAllocSite")
		names := locationNames(s)
		if len(names) != depth+1 {
			t.Errorf("depth %d: stack has %d locations, want %d frames plus %q: %v", depth, len(names), depth, truncatedFrame, names)
			continue
		}
		for i, n := range names[1:depth] {
			if n != thisPackage+"recurseToAlloc" {
				t.Errorf("depth %d: location %d is %s, want recurseToAlloc", depth, i+1, n)
				break
			}
		}
		last := s.Location[depth]
		if names[depth] != truncatedFrame || last.Address != 0 || len(last.Line) != 1 {
			t.Errorf("depth %d: last location %s (address %#x, %d lines), want the synthetic %q frame",
				depth, names[depth], last.Address, len(last.Line), truncatedFrame)
		}
		checkNoLibraryFrames(t, prof)
	}
}

// TestStackDepthBoundary checks the edge of the bound: a stack of exactly
// the configured depth is kept whole and unmarked; one frame more is cut to
// the depth and marked. The expected frames are those runtime.Callers
// reports at the hook's caller, except that a whole stack ends without
// runtime.goexit, the root of every goroutine, as in runtime/pprof.
func TestStackDepthBoundary(t *testing.T) {
	const recursion = 3
	var full []string // no profiler runs yet: this only measures
	frames := runtime.CallersFrames(recurseToAlloc(recursion, 1))
	for {
		f, more := frames.Next()
		full = append(full, f.Function)
		if !more {
			break
		}
	}
	if full[len(full)-1] != "runtime.goexit" {
		t.Fatalf("stack %v does not end in runtime.goexit", full)
	}
	whole := full[:len(full)-1]
	cut := append(slices.Clone(full[:len(full)-1]), truncatedFrame)

	for _, tc := range []struct {
		depth int
		want  []string
	}{{len(full), whole}, {len(full) - 1, cut}} {
		p := startTestProfiler(t, WithSamplingRate(1), WithStackDepth(tc.depth))
		if got := len(recurseToAlloc(recursion, 1)); got != len(full) {
			t.Fatalf("the stack depth changed between calls: %d, then %d frames", len(full), got)
		}
		prof := writeParsed(t, p)
		if err := p.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		got := locationNames(onlySample(t, prof, thisPackage+"deepAllocSite"))
		if !slices.Equal(got, tc.want) {
			t.Errorf("stack of %d frames at depth %d:\n got %v\nwant %v", len(full), tc.depth, got, tc.want)
		}
	}
}

// onlySample returns the single hook sample whose leaf is fn.
func onlySample(t *testing.T, prof *profile.Profile, fn string) *profile.Sample {
	t.Helper()
	var found []*profile.Sample
	for _, s := range prof.Sample {
		if heapLabel(s) != goHeapName && leafFunction(s) == fn {
			found = append(found, s)
		}
	}
	// A site has one sample for its cumulative allocations and one per age
	// bucket of its live objects, all with the same stack.
	if len(found) == 0 {
		t.Fatalf("no sample with leaf %s; leaves: %v", fn, leaves(prof))
	}
	for _, s := range found[1:] {
		if !slices.Equal(s.Location, found[0].Location) {
			t.Fatalf("samples with leaf %s have different stacks: %v and %v", fn, locationNames(found[0]), locationNames(s))
		}
	}
	return found[0]
}

// locationNames returns the innermost function of each Location.
func locationNames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		if len(loc.Line) == 0 {
			out = append(out, "?")
			continue
		}
		out = append(out, loc.Line[0].Function.Name)
	}
	return out
}

// inlinedAllocSite is small enough to be inlined into its caller; the test
// checks that it was. It calls Track, whose body is a call: Alloc inlines a
// body of the full inlining budget, which would keep its caller from being
// inlined in turn.
func inlinedAllocSite(obj *[64]byte) { Track(obj) }

//go:noinline
func callsInlinedSite(obj *[64]byte) { inlinedAllocSite(obj) }

// TestInlinedCallerLines: when the hook's caller is inlined, its Location
// must carry one Line per function inlined at that address, innermost
// first, as runtime/pprof writes them; the caller that inlined it must not
// then appear again as a Location of its own. go tool pprof must show the
// inlined function by name.
func TestInlinedCallerLines(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	obj := new([64]byte)
	callsInlinedSite(obj)
	path, err := p.Flush()
	runtime.KeepAlive(obj)
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	prof := parseChecked(t, data)
	s := onlySample(t, prof, thisPackage+"inlinedAllocSite")

	// Precondition, independent of how the profile groups Lines: the leaf
	// address lies in the machine code of callsInlinedSite, so the
	// compiler did inline inlinedAllocSite.
	outer := runtime.FuncForPC(reflect.ValueOf(callsInlinedSite).Pointer())
	if leaf := runtime.FuncForPC(uintptr(s.Location[0].Address)); leaf == nil || outer == nil || leaf.Entry() != outer.Entry() {
		t.Fatalf("inlinedAllocSite was not inlined into callsInlinedSite (leaf address %#x); the test needs it inlined",
			s.Location[0].Address)
	}

	var lines []string
	for _, l := range s.Location[0].Line {
		lines = append(lines, l.Function.Name)
	}
	want := []string{thisPackage + "inlinedAllocSite", thisPackage + "callsInlinedSite"}
	if len(lines) < 2 || lines[0] != want[0] || lines[1] != want[1] {
		t.Errorf("leaf Location has Lines %v, want %v: an inlined call and its caller share one Location", lines, want)
	}
	if names := frameNames(s); strings.Count(strings.Join(names, " "), want[1]) != 1 {
		t.Errorf("callsInlinedSite appears %d times in the stack %v, want once",
			strings.Count(strings.Join(names, " "), want[1]), names)
	}
	checkNoLibraryFrames(t, prof)

	outs := pproftest.RunAll(t, []string{"-raw", path}, []string{"-top", path})
	raw, top := outs[0], outs[1]
	if !strings.Contains(raw, want[0]) {
		t.Errorf("go tool pprof -raw does not show %s:\n%s", want[0], raw)
	}
	if !strings.Contains(top, want[0]) {
		t.Errorf("go tool pprof -top does not show %s:\n%s", want[0], top)
	}
}

// Sites for the stack-table test: each call is a distinct stack.
//
//go:noinline
func tableSiteA(key uintptr, size int) { Alloc(key, size) }

//go:noinline
func tableSiteB(key uintptr, size int) { Alloc(key, size) }

//go:noinline
func tableSiteC(key uintptr, size int) { Alloc(key, size) }

//go:noinline
func tableSiteD(key uintptr, size int) { Alloc(key, size) }

// TestStackTableFull: past the bound on distinct stacks, samples are still
// counted, per heap and size, under a synthetic "[stack table full]"
// frame, so the bytes of a profile add up even when its stacks do not fit.
func TestStackTableFull(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	// There is no option for the bound; lower it before any sample is
	// taken (only this goroutine calls the hook, so no lock is needed).
	p.table.stacks.max = 2

	// One call line for all, so that the stacks differ in their leaf only.
	for _, step := range []struct {
		site func(uintptr, int)
		key  uintptr
		size int
	}{
		{tableSiteA, 1, 32},
		{tableSiteB, 2, 32},
		{tableSiteC, 3, 32}, // the table is full from here on
		{tableSiteC, 4, 32},
		{tableSiteD, 5, 32},
		{tableSiteD, 6, 64},
		{tableSiteA, 7, 32}, // a stored stack still finds its own group
	} {
		step.site(step.key, step.size)
	}
	Free(4)

	st := p.Stats()
	if st.Stacks != 2 || st.Dropped != 0 || st.Samples != 7 || st.LiveSamples != 6 {
		t.Errorf("Stats: %d stacks, %d dropped, %d samples, %d live; want 2, 0, 7, 6", st.Stacks, st.Dropped, st.Samples, st.LiveSamples)
	}
	path, err := p.Flush()
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	prof := parseChecked(t, data)
	read := valuesOf(t, prof)
	got := map[string]values{}
	for _, s := range prof.Sample {
		if heapLabel(s) != defaultHeapName {
			continue
		}
		name := strings.TrimPrefix(leafFunction(s), thisPackage)
		if name == overflowFrame && (len(s.Location) != 1 || s.Location[0].Address != 0) {
			t.Errorf("overflow sample has %d locations (first at %#x), want the one synthetic frame", len(s.Location), s.Location[0].Address)
		}
		k, v := fmt.Sprintf("%s/%d", name, sizeLabel(t, s)), read(s)
		sum := got[k]
		sum.allocObjects += v.allocObjects
		sum.allocSpace += v.allocSpace
		sum.inuseObjects += v.inuseObjects
		sum.inuseSpace += v.inuseSpace
		got[k] = sum
	}
	// Sites C and D have no sample of their own: their allocations, and
	// the Free of one, count in the overflow group of their size.
	want := map[string]values{
		"tableSiteA/32":       {2, 64, 2, 64},
		"tableSiteB/32":       {1, 32, 1, 32},
		overflowFrame + "/32": {3, 96, 2, 64},
		overflowFrame + "/64": {1, 64, 1, 64},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %+v, want %+v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("profile has samples %v, want exactly %v", got, want)
	}

	top := pproftest.Run(t, "-top", "-sample_index=alloc_objects", path)
	if !strings.Contains(top, overflowFrame) {
		t.Errorf("go tool pprof -top does not show %q:\n%s", overflowFrame, top)
	}
}
