package profiler

import (
	"runtime"
	"testing"
	"time"
)

// These benchmarks take the unsampled Alloc apart, beside the allocation it
// is compared with (bench/ measures the public hook against the targets):
//
//	go test -run '^$' -bench 'HookPart' -count 5 .
//
// The sampling decision alone is what the countdown costs; the key-filter
// look is what an Alloc adds so that it can end a live record under its
// key (an object freed without a Free).

var sinkHookPart *[64]byte

func BenchmarkHookPartNew64(b *testing.B) {
	for b.Loop() {
		sinkHookPart = new([64]byte)
	}
}

// BenchmarkHookPartDecision is the sampling decision of an unsampled
// Alloc: pinning to the P and counting down its countdown.
func BenchmarkHookPartDecision(b *testing.B) {
	s := newSampler(b, DefaultSamplingRate)
	for b.Loop() {
		s.sampled(64)
	}
}

// BenchmarkHookPartFilter is the key-filter look of an unsampled Alloc or
// Free with 16384 live samples in the table, the cost of Free.
func BenchmarkHookPartFilter(b *testing.B) {
	p := startTestProfiler(b, WithSamplingRate(1))
	for i := range uintptr(1 << 14) {
		Alloc(1<<30+i*64, 64)
	}
	if n := p.Stats().LiveSamples; n != 1<<14 {
		b.Fatalf("%d live samples, want %d", n, 1<<14)
	}
	var key uintptr
	n := 0
	for b.Loop() {
		key += 64
		if p.table.filter.mayContain(key, 0) {
			n++
		}
	}
	sinkHookPartN = n
}

// BenchmarkHookPartAlloc is the whole unsampled Alloc at the default rate.
func BenchmarkHookPartAlloc(b *testing.B) {
	startTestProfiler(b)
	var key uintptr
	for b.Loop() {
		key += 64
		Alloc(key, 64)
	}
}

// BenchmarkHookPartRecord is what a sampled Alloc does besides capturing
// its stack: the group lookup and the live-table insert, replacing a live
// record of the same stack as a hot allocation site does.
func BenchmarkHookPartRecord(b *testing.B) {
	p := startTestProfiler(b, WithSamplingRate(1))
	var pcs [32]uintptr
	for i := range pcs {
		pcs[i] = uintptr(0x401000 + 64*i)
	}
	var i uintptr
	for b.Loop() {
		i++
		p.table.record(liveKey{key: i%4096*64 + 64}, 64, 0, pcs[:])
	}
}

// BenchmarkHookPartSampled takes the sampled Alloc of bench's row 4 apart.
// In a 32-deep recursion it times, in turn and 64 calls at a time:
// runtime.Callers itself; the same from one function more, with a pooled
// buffer, as the hook captures; that plus the table work of record; and
// the whole sampled Alloc. It reports each as a ratio to the first.
func BenchmarkHookPartSampled(b *testing.B) {
	p := startTestProfiler(b, WithSamplingRate(1), WithStackDepth(32))
	var d [4]time.Duration
	recurse(32, func() {
		var pcs [32]uintptr
		var key uintptr
		n := 0
		for b.Loop() {
			t0 := time.Now()
			for range 64 {
				n += runtime.Callers(1, pcs[:])
			}
			t1 := time.Now()
			for range 64 {
				n += captureOnly(p)
			}
			t2 := time.Now()
			for range 64 {
				key++
				n += captureAndRecord(p, key%4096*64+64)
			}
			t3 := time.Now()
			for range 64 {
				key++
				Alloc(key%4096*64+64, 64)
			}
			t4 := time.Now()
			for i, t := range [...]time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3)} {
				d[i] += t
			}
		}
		sinkHookPartN = n
	})
	b.ReportMetric(float64(d[1])/float64(d[0]), "capture/Callers")
	b.ReportMetric(float64(d[2])/float64(d[0]), "capture+record/Callers")
	b.ReportMetric(float64(d[3])/float64(d[0]), "Alloc/Callers")
}

var sinkHookPartN int

//go:noinline
func recurse(depth int, fn func()) {
	if depth <= 1 {
		fn()
		return
	}
	recurse(depth-1, fn)
}

//go:noinline
func captureOnly(p *Profiler) int {
	buf := stackBufs.Get().(*[maxStackDepth]uintptr)
	n := runtime.Callers(2, buf[:p.depth])
	stackBufs.Put(buf)
	return n
}

//go:noinline
func captureAndRecord(p *Profiler, key uintptr) int {
	buf := stackBufs.Get().(*[maxStackDepth]uintptr)
	pcs := buf[:runtime.Callers(2, buf[:p.depth])]
	p.table.record(liveKey{key: key}, 64, 0, pcs)
	stackBufs.Put(buf)
	return len(pcs)
}
