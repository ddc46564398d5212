//go:build linux || darwin

package profiler_test

import (
	"context"
	"syscall"
	"testing"
	"unsafe"

	"github.com/leakhunt/profiler"
)

// Track of memory outside the Go heap is handled the same way on every
// call, sampled or not: it is never recorded and never panics; the sampled
// calls are counted as rejected and as nothing else. Rate 1 samples every
// call, the default rate few; both must leave nothing live and keep the
// program running.
func TestTrackOfMmapMemoryIgnored(t *testing.T) {
	mem, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(mem)
	obj := (*[4096]byte)(unsafe.Pointer(&mem[0]))
	for _, rate := range []int{1, profiler.DefaultSamplingRate} {
		p, _ := startProfiler(t, profiler.WithSamplingRate(rate), profiler.WithGoHeap(false))
		const calls = 1000
		for range calls {
			profiler.Track(obj)
			profiler.TrackIn(context.Background(), profiler.NewHeap("mmap"), obj, 4096)
		}
		s := p.Stats()
		if s.LiveSamples != 0 {
			t.Errorf("rate %d: LiveSamples = %d after Track of mmap memory, want 0", rate, s.LiveSamples)
		}
		if s.Samples != 0 {
			t.Errorf("rate %d: Samples = %d: a refused Track must not count as a sample", rate, s.Samples)
		}
		if rate == 1 && s.TrackRejected != 2*calls {
			t.Errorf("rate 1: TrackRejected = %d, want %d (every call sampled)", s.TrackRejected, 2*calls)
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}
