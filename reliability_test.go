package profiler

import (
	"runtime"
	"testing"
	"weak"
)

// An Alloc under a live key replaces its record even when the new sample
// is dropped: here because the group table is full.
func TestReusedKeyEndsRecordWhenDropped(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	const key = 1 << 40
	Alloc(key, 100)
	// Fill the group table with groups of other sizes, freeing each key
	// so that the live table stays small; the groups stay.
	for size := 101; p.table.groups.n.Load() < maxGroups-1; size++ {
		Alloc(uintptr(size), size)
		Free(uintptr(size))
	}
	before := p.Stats()
	Alloc(key, 7) // a new group: dropped
	after := p.Stats()
	if after.Dropped != before.Dropped+1 {
		t.Fatalf("Dropped went from %d to %d, want one more: the group table is not full", before.Dropped, after.Dropped)
	}
	if after.LiveSamples != 0 {
		t.Errorf("LiveSamples = %d after a dropped Alloc over the only live key, want 0: the 100-byte record stayed", after.LiveSamples)
	}
}

// A tracked object that outlives its profiler does not keep the
// profiler's tables alive.
func TestStoppedProfilerNotRetainedByTracked(t *testing.T) {
	p, err := Start(WithSamplingRate(1), WithGoHeap(false), WithOutputDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	obj := new([1024]byte)
	Track(obj)
	if n := p.Stats().LiveSamples; n != 1 {
		t.Fatalf("%d live samples, want the tracked object", n)
	}
	table := weak.Make(p.table)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	p = nil
	for range 10 {
		runtime.GC()
		if table.Value() == nil {
			break
		}
	}
	runtime.KeepAlive(obj)
	if table.Value() != nil {
		t.Error("the stopped profiler's table is still reachable while an object it tracked lives")
	}
}
