package bench

import (
	"bytes"
	"io"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
)

// The flush comparison: the library holds FlushSamples live samples over
// NumPaths distinct stacks; the runtime's heap profile holds the same
// number of live objects allocated from the same NumPaths stacks. Both
// write a gzipped pprof profile to io.Discard, in steady state (written
// once before timing, so symbol caches are warm).
const (
	FlushSamples   = 100_000
	flushAllocSize = 64
)

// Flush measures one WriteProfile of the library with FlushSamples live
// samples over NumPaths stacks and the Go heap left out.
func Flush(b *testing.B) {
	p := startProfiler(b,
		profiler.WithSamplingRate(1),
		profiler.WithMaxLiveSamples(2*FlushSamples),
		goHeapOff(),
	)
	size := measureFlush(b, p)
	// Metrics go after the loop: its first iteration resets them.
	s := p.Stats()
	b.ReportMetric(float64(s.LiveSamples), "live")
	b.ReportMetric(float64(s.Stacks), "stacks")
	b.ReportMetric(float64(size), "B/profile")
}

// hookLeaf reports one 64-byte allocation under a key unique to i.
func hookLeaf(i int) { profiler.Alloc(uintptr(i+1)*64, flushAllocSize) }

// BaselinePprofHeap measures pprof.Lookup("heap").WriteTo(io.Discard, 0)
// with FlushSamples live objects allocated from the NumPaths stacks at
// runtime.MemProfileRate = 1. It reports the number of buckets the runtime
// profile holds, which also counts every other stack this process
// allocated from.
func BaselinePprofHeap(b *testing.B) {
	runtimeFixture()
	size := measurePprofHeap(b)
	buckets, _ := runtime.MemProfile(nil, true)
	b.ReportMetric(float64(buckets), "buckets")
	b.ReportMetric(float64(size), "B/profile")
}

// measurePprofHeap times pprof.Lookup("heap").WriteTo in steady state
// (after one warm-up write) and returns the size of a profile.
func measurePprofHeap(b *testing.B) int64 {
	heap := pprof.Lookup("heap")
	var w countingWriter
	if err := heap.WriteTo(&w, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := heap.WriteTo(io.Discard, 0); err != nil {
			b.Fatal(err)
		}
	}
	return w.n
}

// goObjects holds the runtime fixture's objects live for the life of the
// process; the runtime never drops a bucket, so building it twice would
// add nothing but objects.
var (
	goObjects     []*[flushAllocSize]byte
	goObjectsOnce sync.Once
)

// runtimeFixture allocates FlushSamples objects from the NumPaths stacks,
// every allocation profiled.
func runtimeFixture() {
	goObjectsOnce.Do(func() {
		goObjects = make([]*[flushAllocSize]byte, FlushSamples)
		allocateProfiled(FlushSamples, NumPaths, CallPath, goLeaf)
	})
}

// allocateProfiled calls leaf(i) for i < n from path i%paths, with every
// allocation profiled, then runs two GCs so that the heap profile (as of
// the last completed GC, up to two cycles old) shows them.
func allocateProfiled(n, paths int, path func(id, i int, leaf func(int)), leaf func(int)) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	for i := range n {
		path(i%paths, i, leaf)
	}
	runtime.MemProfileRate = old
	runtime.GC()
	runtime.GC()
}

func goLeaf(i int) { goObjects[i] = new([flushAllocSize]byte) }

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// FlushGoHeap is Flush with the Go heap source on, in a process whose
// runtime heap profile holds the NumPaths stacks of the runtime fixture:
// the cost of merging the Go heap, beside Flush (off) and
// BaselinePprofHeap (the runtime's own WriteTo) on the same stacks.
// Start sets runtime.MemProfileRate to the sampling rate, 1 here for the
// hook's table; the benchmark puts the runtime's default back at once, as
// a program at a production rate would have it, so that the flushes' own
// allocations are not each recorded by the runtime.
func FlushGoHeap(b *testing.B) {
	runtimeFixture()
	p := startProfiler(b,
		profiler.WithSamplingRate(1),
		profiler.WithMaxLiveSamples(2*FlushSamples),
	)
	runtime.MemProfileRate = 512 * 1024
	size := measureFlush(b, p)
	buckets, _ := runtime.MemProfile(nil, true)
	b.ReportMetric(float64(buckets), "buckets")
	b.ReportMetric(float64(size), "B/profile")
}

// measureFlush fills p's table with FlushSamples live samples over the
// NumPaths stacks, writes one profile to warm the caches, and times
// WriteProfile in steady state. It returns the size of a profile.
func measureFlush(b *testing.B, p *profiler.Profiler) int64 {
	for i := range FlushSamples {
		CallPath(i%NumPaths, i, hookLeaf)
	}
	var w countingWriter
	if err := p.WriteProfile(&w); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.WriteProfile(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	return w.n
}

// The Go heap's cheap path: in a program whose Go allocation stacks all fit
// runtime.MemProfile's 32 frames, a flush reads raw records and symbolizes
// only new PCs, instead of parsing what runtime/pprof writes. These two
// run first in a plain `go test -bench .` (see bench_test.go): a single
// deeper stack anywhere in the process sends every later flush down the
// runtime/pprof path.

// ShallowPaths is the number of distinct shallow Go allocation stacks.
const ShallowPaths = 1024

var (
	shallowObjects     []*[flushAllocSize]byte
	shallowObjectsOnce sync.Once
)

// shallowFixture allocates 4 objects on each of ShallowPaths shallow
// stacks, every allocation profiled.
func shallowFixture() {
	shallowObjectsOnce.Do(func() {
		shallowObjects = make([]*[flushAllocSize]byte, 4*ShallowPaths)
		allocateProfiled(len(shallowObjects), ShallowPaths, ShallowPath, shallowLeaf)
	})
}

func shallowLeaf(i int) { shallowObjects[i] = new([flushAllocSize]byte) }

// FlushGoHeapShallow measures one WriteProfile with the Go heap on and the
// hook's table empty, over the shallow fixture's stacks. It fails if the
// flush did not take the raw-records path.
func FlushGoHeapShallow(b *testing.B) {
	shallowFixture()
	p := startProfiler(b)
	var w bytes.Buffer
	if err := p.WriteProfile(&w); err != nil {
		b.Fatal(err)
	}
	prof, err := profile.Parse(&w)
	if err != nil {
		b.Fatal(err)
	}
	if !slices.ContainsFunc(prof.Comments, func(c string) bool { return strings.Contains(c, "read from runtime.MemProfile") }) {
		b.Fatalf("the flush read runtime/pprof's profile, not raw records: %q", prof.Comments)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.WriteProfile(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	buckets, _ := runtime.MemProfile(nil, true)
	b.ReportMetric(float64(buckets), "buckets")
}

// BaselinePprofHeapShallow is pprof.Lookup("heap").WriteTo over the same
// shallow stacks, in the same process.
func BaselinePprofHeapShallow(b *testing.B) {
	shallowFixture()
	size := measurePprofHeap(b)
	buckets, _ := runtime.MemProfile(nil, true)
	b.ReportMetric(float64(buckets), "buckets")
	b.ReportMetric(float64(size), "B/profile")
}
