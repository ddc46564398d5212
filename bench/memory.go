package bench

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/leakhunt/profiler"
)

// MemorySamples is the number of live samples the memory benchmarks hold.
const MemorySamples = 100_000

// TableMemory measures the heap the profiler takes per live sample:
// runtime.MemStats.HeapAlloc after a GC, before Start and after
// MemorySamples live samples recorded at rate 1, divided by their number.
// WithMaxLiveSamples is MemorySamples, so whatever the table sizes by its
// bound is counted in full. All samples come from one 16-frame-deep stack
// through the generated paths, so that a table storing a stack per sample
// would show its 8 bytes per frame here. It reports bytes/sample, and
// key-B, the size of the caller's key (a uintptr), beside it.
func TableMemory(b *testing.B) {
	var perSample float64
	for b.Loop() {
		perSample = tableMemory(b, 1)
	}
	reportMemory(b, perSample)
}

// TableMemoryManyStacks is TableMemory with the samples spread over the
// NumPaths stacks of the flush fixture, about 15 per stack, as in a
// program: it includes the stacks and the per-stack counters.
func TableMemoryManyStacks(b *testing.B) {
	var perSample float64
	for b.Loop() {
		perSample = tableMemory(b, NumPaths)
	}
	reportMemory(b, perSample)
}

func tableMemory(b *testing.B, paths int) float64 {
	b.StopTimer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.StartTimer()

	p, err := profiler.Start(
		profiler.WithOutputDir(b.TempDir()),
		profiler.WithSamplingRate(1),
		profiler.WithMaxLiveSamples(MemorySamples),
		goHeapOff(),
	)
	if err != nil {
		b.Fatal(err)
	}
	for i := range MemorySamples {
		CallPath(i%paths, i, hookLeaf)
	}

	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := p.Stats().LiveSamples; got != MemorySamples {
		b.Fatalf("live samples = %d, want %d", got, MemorySamples)
	}
	if err := p.Stop(); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / MemorySamples
}

// BaselineMapMemory measures the same quantity for the smallest table a
// program could keep itself: a Go map from a uintptr key to an 8-byte
// record, holding MemorySamples entries.
func BaselineMapMemory(b *testing.B) {
	var perEntry float64
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		m := make(map[uintptr]uint64)
		for i := range MemorySamples {
			m[uintptr(i+1)*64] = uint64(i)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(m)
		b.StartTimer()
		perEntry = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / MemorySamples
	}
	reportMemory(b, perEntry)
}

// reportMemory reports bytes per sample beside the size of the caller's
// key, after the loop (whose first iteration resets metrics).
func reportMemory(b *testing.B, perSample float64) {
	b.ReportMetric(perSample, "bytes/sample")
	b.ReportMetric(float64(unsafe.Sizeof(uintptr(0))), "key-B")
}
