package bench

import (
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"

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

// FlushGoHeap measures one WriteProfile with the Go heap source on and the
// hook's table empty, in a process whose runtime heap profile holds the
// NumPaths stacks of the runtime fixture: the cost of the Go heap in a
// profile, beside BaselinePprofHeap, the runtime's own WriteTo of the same
// heap, which the profile reads and re-encodes.
func FlushGoHeap(b *testing.B) {
	runtimeFixture()
	size := timeWriteProfile(b, startProfiler(b))
	buckets, _ := runtime.MemProfile(nil, true)
	b.ReportMetric(float64(buckets), "buckets")
	b.ReportMetric(float64(size), "B/profile")
}

// FlushFileGoHeap measures one Flush, a profile file written, with the Go
// heap of the runtime fixture: with the leak detector, which parses each
// profile written and scores its sites, and without it, the baseline, in
// the same run.
func FlushFileGoHeap(b *testing.B) {
	runtimeFixture()
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("detector=%v", on), func(b *testing.B) {
			p := startProfiler(b, profiler.WithLeakWarnings(on), profiler.WithMemoryPoll(0), profiler.WithMaxFiles(2))
			if _, err := p.Flush(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := p.Flush(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// measureFlush fills p's table with FlushSamples live samples over the
// NumPaths stacks, writes one profile to warm the caches, and times
// WriteProfile in steady state. It returns the size of a profile.
func measureFlush(b *testing.B, p *profiler.Profiler) int64 {
	for i := range FlushSamples {
		CallPath(i%NumPaths, i, hookLeaf)
	}
	return timeWriteProfile(b, p)
}

// timeWriteProfile writes one profile to warm the caches and times
// WriteProfile in steady state. It returns the size of a profile.
func timeWriteProfile(b *testing.B, p *profiler.Profiler) int64 {
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
