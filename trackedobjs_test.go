package profiler

import (
	"runtime"
	"slices"
	"testing"
	"unsafe"
)

// trackedSink keeps the test's tracked objects on the heap.
var trackedSink []*[64]byte

// The live table lists each tracked object's address while the object is
// reachable, and never once the collector has found it unreachable: the
// address of a listed object is that object's, whatever the cleanups have
// done yet.
func TestTrackedObjectsAreLiveAddresses(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	trackedSink = []*[64]byte{new([64]byte), new([64]byte), new([64]byte)}
	t.Cleanup(func() { trackedSink = nil })
	for _, obj := range trackedSink {
		Track(obj)
	}
	addrs := func(objs []trackedObject) []uintptr {
		var a []uintptr
		for _, o := range objs {
			a = append(a, o.addr)
		}
		slices.Sort(a)
		return a
	}
	var want []uintptr
	for _, obj := range trackedSink {
		want = append(want, uintptr(unsafe.Pointer(obj)))
	}
	slices.Sort(want)

	listed := p.table.trackedObjects()
	if got := addrs(listed); !slices.Equal(got, want) {
		t.Fatalf("tracked objects at %#x, want %#x", got, want)
	}
	for _, o := range listed {
		if o.size != 64 || o.stk == nil || len(o.stk.pcs) == 0 {
			t.Errorf("tracked object %#x: size %d, stack %v; want 64 bytes and the caller's stack", o.addr, o.size, o.stk)
		}
	}

	dropped := uintptr(unsafe.Pointer(trackedSink[1]))
	trackedSink[1] = nil
	runtime.GC()
	for _, o := range listed {
		if got, want := o.stillAt(), o.addr != dropped; got != want {
			t.Errorf("object %#x (dropped: %t) still at its address: %t", o.addr, o.addr == dropped, got)
		}
	}
	want = slices.DeleteFunc(want, func(a uintptr) bool { return a == dropped })
	if got := addrs(p.table.trackedObjects()); !slices.Equal(got, want) {
		t.Errorf("after the collection, tracked objects at %#x, want %#x", got, want)
	}
	runtime.KeepAlive(trackedSink)
}
