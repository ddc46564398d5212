//go:build linux || darwin

package profiler_test

import (
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/leakhunt/profiler"
)

// Track of memory outside the Go heap is misuse: when the object is
// sampled it panics with a message that names the fix, and leaves no
// record behind.
func TestTrackOfMmapMemoryPanics(t *testing.T) {
	mem, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(mem)
	p, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))

	got := panicMessage(func() { profiler.Track((*[4096]byte)(unsafe.Pointer(&mem[0]))) })
	if !strings.HasPrefix(got, "profiler: ") || !strings.Contains(got, "Alloc and Free") {
		t.Errorf("Track of mmap memory panicked with %q, want a \"profiler: \" message pointing to Alloc and Free", got)
	}
	if live := p.Stats().LiveSamples; live != 0 {
		t.Errorf("LiveSamples = %d after the refused Track, want 0", live)
	}
}
