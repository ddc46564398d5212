package bench

import (
	"math/bits"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakhunt/profiler"
)

// sink64 keeps the baseline's allocations on the heap; keySpace hands out
// keys no other benchmark uses.
var (
	sink64   *[64]byte
	keySpace atomic.Uint64
)

// BaselineNew64 measures a 64-byte heap allocation, the cost the hook's
// fast paths are compared with.
func BaselineNew64(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink64 = new([64]byte)
	}
	if sink64 == nil {
		b.Fatal("no allocation")
	}
}

// AllocUnsampled measures Alloc of 64 bytes under a fresh key at the
// default sampling rate. About one call in 8192 is sampled and recorded;
// that cost is included, as it is in a program.
func AllocUnsampled(b *testing.B) {
	startProfiler(b)
	b.ReportAllocs()
	var key uintptr
	for b.Loop() {
		key += 64
		profiler.Alloc(key, 64)
	}
}

// AllocNoProfiler measures Alloc with no profiler running: one atomic
// load and a compare, the floor of any hook call.
func AllocNoProfiler(b *testing.B) {
	b.ReportAllocs()
	var key uintptr
	for b.Loop() {
		key += 64
		profiler.Alloc(key, 64)
	}
}

// liveForFree is how many live samples the table holds while FreeUnsampled
// runs, so that its key filter is as occupied as in a program.
const liveForFree = 1 << 14

// FreeUnsampled measures Free of keys that were never allocated, while the
// table holds liveForFree live samples (recorded at rate 1; Free does not
// depend on the rate).
func FreeUnsampled(b *testing.B) {
	startProfiler(b, profiler.WithSamplingRate(1), goHeapOff())
	const liveBase = 1 << 30 // above the freed keys, within 32 bits
	for i := range liveForFree {
		profiler.Alloc(liveBase+uintptr(i)*64, 64)
	}
	b.ReportAllocs()
	var key uintptr
	for b.Loop() {
		key += 64
		profiler.Free(key)
	}
}

// AllocFreePair measures Alloc then Free of the same fresh key at the
// default rate, on one goroutine.
func AllocFreePair(b *testing.B) {
	startProfiler(b)
	b.ReportAllocs()
	var key uintptr
	for b.Loop() {
		key += 64
		profiler.Alloc(key, 64)
		profiler.Free(key)
	}
}

// AllocFreePairParallel is AllocFreePair on GOMAXPROCS goroutines with
// disjoint keys. Its ns/op is wall time per pair over all goroutines, so
// perfect scaling on 2 cores halves AllocFreePair's.
func AllocFreePairParallel(b *testing.B) {
	startProfiler(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// The top byte keeps each goroutine's keys apart, on 32 bits too.
		key := uintptr(keySpace.Add(1)) << (bits.UintSize - 8)
		for pb.Next() {
			key += 64
			profiler.Alloc(key, 64)
			profiler.Free(key)
		}
	})
}

// SampledDepth is the stack depth of the sampled-Alloc comparison.
const SampledDepth = 32

// AllocSampledDepth32 measures a sampled Alloc with a stack deeper than 32
// frames, capturing 32 (rate 1, WithStackDepth(32)). Keys cycle through a
// fixed set, so each call replaces a live record of the same stack: the
// steady state of a hot allocation site.
func AllocSampledDepth32(b *testing.B) {
	startProfiler(b, profiler.WithSamplingRate(1), profiler.WithStackDepth(SampledDepth), goHeapOff())
	b.ReportAllocs()
	Recurse(SampledDepth, func() {
		const keys = 1 << 12
		var i uintptr
		for b.Loop() {
			i++
			profiler.Alloc(i%keys*64+64, 64)
		}
	})
}

// BaselineCallersDepth32 measures runtime.Callers into a 32-slot buffer
// from the same 32-deep recursion: the floor for any sampled Alloc.
func BaselineCallersDepth32(b *testing.B) {
	b.ReportAllocs()
	Recurse(SampledDepth, func() {
		var pcs [SampledDepth]uintptr
		n := 0
		for b.Loop() {
			n += runtime.Callers(1, pcs[:])
		}
		if n == 0 {
			b.Fatal("runtime.Callers recorded no frames")
		}
	})
}

// sampledBlock is how many calls SampledInterleaved times at a stretch:
// about 0.1 ms, long enough that reading the clock costs nothing, short
// enough that the machine's drift falls on both sides alike.
const sampledBlock = 64

// SampledInterleaved measures AllocSampledDepth32 and its baseline in one
// loop, in alternating blocks, and reports both as callers-ns/op and
// sampled-ns/op: on a shared machine, runs of the two benchmarks one after
// the other differ by more than the 20 % that their ratio is judged on.
func SampledInterleaved(b *testing.B) {
	startProfiler(b, profiler.WithSamplingRate(1), profiler.WithStackDepth(SampledDepth), goHeapOff())
	b.ReportAllocs()
	var callers, sampled time.Duration
	var calls int
	Recurse(SampledDepth, func() {
		const keys = 1 << 12
		var pcs [SampledDepth]uintptr
		var i uintptr
		n := 0
		for b.Loop() {
			t0 := time.Now()
			for range sampledBlock {
				n += runtime.Callers(1, pcs[:])
			}
			t1 := time.Now()
			for range sampledBlock {
				i++
				profiler.Alloc(i%keys*64+64, 64)
			}
			callers += t1.Sub(t0)
			sampled += time.Since(t1)
			calls += sampledBlock
		}
		if n == 0 {
			b.Fatal("runtime.Callers recorded no frames")
		}
	})
	b.ReportMetric(float64(callers.Nanoseconds())/float64(calls), "callers-ns/op")
	b.ReportMetric(float64(sampled.Nanoseconds())/float64(calls), "sampled-ns/op")
}
