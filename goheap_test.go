package profiler_test

import (
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// goLeak holds what the Go heap tests leak, so the objects stay reachable.
var goLeak [][]byte

// leakDeep recurses depth times, then allocates n objects of size bytes
// and keeps them, with no hook call: only the Go heap source can see them.
//
//go:noinline
func leakDeep(depth, n, size int) {
	if depth > 0 {
		leakDeep(depth-1, n, size)
		return
	}
	leakAtBottom(n, size)
}

//go:noinline
func leakAtBottom(n, size int) {
	for range n {
		goLeak = append(goLeak, make([]byte, size))
	}
}

func heapLabel(s *profile.Sample) string {
	if v := s.Label["heap"]; len(v) == 1 {
		return v[0]
	}
	return ""
}

func leafFunction(s *profile.Sample) string {
	if len(s.Location) == 0 || len(s.Location[0].Line) == 0 {
		return ""
	}
	return s.Location[0].Line[0].Function.Name
}

// A plain Go leak behind more than 40 frames of recursion appears with its
// whole stack (runtime.MemProfile would cut it at 32), labelled heap=go,
// with an in-use estimate close to the truth once a GC has run.
func TestGoHeapDeepLeak(t *testing.T) {
	const (
		rate  = 4096
		size  = 1024 // a size class of its own, so the runtime's size is exact
		n     = 20000
		depth = 45
	)
	p, err := profiler.Start(profiler.WithSamplingRate(rate), profiler.WithOutputDir(t.TempDir()),
		profiler.WithGCBeforeSnapshot(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(); goLeak = nil })

	// Preallocated here so that append in leakAtBottom allocates nothing
	// but the objects themselves, the truth the estimate is checked against.
	goLeak = make([][]byte, 0, n)
	leakDeep(depth, n, size)
	path, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	prof := pproftest.Parse(t, path)

	var inuse int64
	deepest := 0
	for _, s := range prof.Sample {
		if leafFunction(s) != "github.com/leakhunt/profiler_test.leakAtBottom" {
			continue
		}
		if got := heapLabel(s); got != "go" {
			t.Errorf("leak sample labelled heap=%q, want go", got)
		}
		frames := 0
		for _, l := range s.Location {
			for _, line := range l.Line {
				if line.Function.Name == "github.com/leakhunt/profiler_test.leakDeep" {
					frames++
				}
			}
		}
		deepest = max(deepest, frames)
		inuse += s.Value[3]
	}
	// depth+1 calls of leakDeep: the outer call and depth recursive ones.
	if deepest != depth+1 {
		t.Errorf("deepest leak stack has %d leakDeep frames, want %d (the whole stack)", deepest, depth+1)
	}

	// Each object is sampled with p = 1-exp(-size/rate), so the number of
	// samples k is binomial(n, p), about 4,400 here, and the estimate's
	// relative standard deviation is sqrt((1-p)/(n p)) ≈ 1.3%. Five of
	// those (6.6%) is a bound a correct profiler fails about once in
	// three million runs.
	truth := float64(n * size)
	prob := -math.Expm1(-float64(size) / rate)
	tol := 5 * math.Sqrt((1-prob)/(n*prob))
	if rel := math.Abs(float64(inuse)-truth) / truth; rel > tol {
		t.Errorf("in-use estimate %d bytes, truth %.0f: relative error %.3f > %.3f", inuse, truth, rel, tol)
	} else {
		t.Logf("in-use estimate %d bytes, truth %.0f: relative error %.4f (tolerance %.4f)", inuse, truth, rel, tol)
	}
}

// hookLeak reports memory that only the hook sees.
//
//go:noinline
func hookLeak(h *profiler.Heap, n int) {
	for i := range n {
		h.Alloc(uintptr(0x10000+i), 64<<10)
	}
}

// Hook and Go heap samples share one file and one set of sample types, and
// pprof's tag filters separate them.
func TestGoHeapAndHookInOneFile(t *testing.T) {
	p, err := profiler.Start(profiler.WithSamplingRate(4096), profiler.WithOutputDir(t.TempDir()),
		profiler.WithGCBeforeSnapshot(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(); goLeak = nil })

	leakDeep(3, 2000, 1024)
	hookLeak(profiler.NewHeap("offheap"), 100)
	path, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}

	prof := pproftest.Parse(t, path)
	heaps := map[string]bool{}
	for _, s := range prof.Sample {
		heaps[heapLabel(s)] = true
	}
	if !heaps["go"] || !heaps["offheap"] {
		t.Fatalf("heaps in profile: %v, want go and offheap", heaps)
	}

	outs := pproftest.RunAll(t, []string{"-top", "-tagfocus=heap=go", path}, []string{"-top", "-tagignore=heap=go", path})
	goOnly, hookOnly := outs[0], outs[1]
	const goLeaf, hookLeaf = "profiler_test.leakAtBottom", "profiler_test.hookLeak"
	if !strings.Contains(goOnly, goLeaf) || strings.Contains(goOnly, hookLeaf) {
		t.Errorf("-tagfocus=heap=go shows the wrong part:\n%s", goOnly)
	}
	if !strings.Contains(hookOnly, hookLeaf) || strings.Contains(hookOnly, goLeaf) {
		t.Errorf("-tagignore=heap=go shows the wrong part:\n%s", hookOnly)
	}
}

// Start sets runtime.MemProfileRate to the sampling rate and Stop puts the
// old value back; with the Go heap off, the runtime's rate is left alone
// and no heap=go samples are written.
func TestGoHeapMemProfileRate(t *testing.T) {
	before := runtime.MemProfileRate
	p, err := profiler.Start(profiler.WithSamplingRate(12345), profiler.WithOutputDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.MemProfileRate != 12345 {
		t.Errorf("while running: MemProfileRate = %d, want 12345", runtime.MemProfileRate)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if runtime.MemProfileRate != before {
		t.Errorf("after Stop: MemProfileRate = %d, want %d restored", runtime.MemProfileRate, before)
	}

	p, err = profiler.Start(profiler.WithSamplingRate(12345), profiler.WithGoHeap(false), profiler.WithOutputDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(); goLeak = nil })
	if runtime.MemProfileRate != before {
		t.Errorf("WithGoHeap(false): MemProfileRate = %d, want %d untouched", runtime.MemProfileRate, before)
	}
	leakDeep(2, 1000, 1024)
	hookLeak(profiler.NewHeap("only"), 10)
	path, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, s := range pproftest.Parse(t, path).Sample {
		labels = append(labels, heapLabel(s))
	}
	if slices.Contains(labels, "go") || !slices.Contains(labels, "only") {
		t.Errorf("WithGoHeap(false) profile has heaps %v, want only the hook's", labels)
	}
}
