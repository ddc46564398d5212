package profiler

import (
	"context"
	"io"
	"math"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"
)

// An Alloc under a live key replaces its record even when the new sample
// is dropped: here because every group has live allocations.
func TestReusedKeyEndsRecordWhenDropped(t *testing.T) {
	if raceEnabled {
		t.Skip("one goroutine's computation, slow under the race detector and with nothing for it to check: the run without -race covers it")
	}
	p := startTestProfiler(t, WithSamplingRate(1), WithMaxLiveSamples(1<<19))
	const key = 1 << 30
	Alloc(key, 100)
	// Fill the group table with live groups of other sizes.
	for size := 101; p.table.groups.n.Load() < maxGroups; size++ {
		Alloc(uintptr(size), size)
	}
	before := p.Stats()
	Alloc(key, 7) // a new group: dropped
	after := p.Stats()
	if after.Dropped != before.Dropped+1 {
		t.Fatalf("Dropped went from %d to %d, want one more: the group table is not full", before.Dropped, after.Dropped)
	}
	if want := before.LiveSamples - 1; after.LiveSamples != want {
		t.Errorf("LiveSamples = %d after a dropped Alloc over a live key, want %d: the 100-byte record stayed", after.LiveSamples, want)
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

// A site whose sizes vary freely makes a new group for nearly every
// sample. Groups with nothing live are recycled, so no sample is dropped
// while live samples are under their bound, and the cumulative figures
// stay exact at rate 1: every allocation is in alloc_objects and
// alloc_space, every live one in the in-use figures.
func TestGroupsRecycled(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	const allocs = maxGroups + maxGroups/2
	var wantBytes, liveBytes, live int64
	for i := range allocs {
		size := 1 + i // a new group each time
		Alloc(uintptr(i+1), size)
		wantBytes += int64(size)
		if i%100 == 0 {
			live++ // kept
			liveBytes += int64(size)
		} else {
			Free(uintptr(i + 1))
		}
	}
	s := p.Stats()
	if s.Dropped != 0 {
		t.Errorf("Dropped = %d with %d live samples of at most %d: groups are not recycled", s.Dropped, s.LiveSamples, defaultMaxLiveSamples)
	}
	prof := writeParsed(t, p)
	read := valuesOf(t, prof)
	var total values
	for _, smp := range prof.Sample {
		total.add(read(smp))
	}
	want := values{allocObjects: allocs, allocSpace: wantBytes, inuseObjects: live, inuseSpace: liveBytes}
	if total != want {
		t.Errorf("profile totals %+v, want exactly %+v", total, want)
	}
}

// Groups are recycled while other goroutines allocate, free and write
// profiles: the totals stay exact at rate 1 and nothing is dropped.
func TestGroupsRecycledConcurrently(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	const workers, each = 4, maxGroups / 3
	var wantObjects, wantBytes, live, liveBytes atomic.Int64
	stop := make(chan struct{})
	var writers sync.WaitGroup
	writers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := p.WriteProfile(io.Discard); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := uintptr(w*each + i + 1)
				size := int(key) // distinct across workers too
				Alloc(key, size)
				wantObjects.Add(1)
				wantBytes.Add(int64(size))
				if i%64 == 0 {
					live.Add(1)
					liveBytes.Add(int64(size))
				} else {
					Free(key)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	writers.Wait()
	if d := p.Stats().Dropped; d != 0 {
		t.Errorf("Dropped = %d, want 0", d)
	}
	prof := writeParsed(t, p)
	read := valuesOf(t, prof)
	var total values
	for _, smp := range prof.Sample {
		total.add(read(smp))
	}
	want := values{wantObjects.Load(), wantBytes.Load(), live.Load(), liveBytes.Load()}
	if total != want {
		t.Errorf("profile totals %+v, want exactly %+v", total, want)
	}
}

// Absurd sizes saturate: two live allocations of math.MaxInt bytes, one
// group each, and a small one, make no total of the profile wrap, as pprof
// adds the samples up.
func TestAbsurdSizesSaturate(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	Alloc(1, math.MaxInt)
	Alloc(2, math.MaxInt)
	Alloc(3, 1000)
	prof := writeParsed(t, p)
	read := valuesOf(t, prof)
	var total values // as pprof adds them up: wrapping
	for _, smp := range prof.Sample {
		v := read(smp)
		if v.allocSpace < 0 || v.inuseSpace < 0 {
			t.Errorf("sample with negative values %+v", v)
		}
		total.add(v)
	}
	if total.inuseSpace != math.MaxInt64 || total.allocSpace != math.MaxInt64 {
		t.Errorf("totals %+v as pprof adds them, want in-use and allocated bytes saturated at %d", total, int64(math.MaxInt64))
	}
}

// Snapshots and the recycling of groups run at once without deadlock:
// recycling happens under the group table's lock, which a snapshot takes
// too, and nothing else is held in the other order.
func TestSnapshotWhileRecycling(t *testing.T) {
	tbl := newTestTable(1<<20, 1<<16)
	pcs := []uintptr{1, 2, 3}
	h := tbl.stacks.hash(pcs)
	for i := range maxGroups {
		id := tbl.groups.find(tbl.stacks, 0, 0, pcs, h, int64(i+1))
		if id == 0 {
			t.Fatalf("group table full after %d groups", i)
		}
		tbl.groups.unref(id) // as a dropped insert leaves it: recyclable
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		wg.Go(func() {
			var s tableSnapshot
			for range 200 {
				tbl.snapshot(&s, time.Now())
			}
		})
		wg.Go(func() {
			for i := range 200 {
				if id := tbl.groups.find(tbl.stacks, 0, 0, pcs, h, int64(maxGroups+1+i)); id != 0 {
					tbl.groups.unref(id)
				}
			}
		})
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("snapshots and finds that recycle groups are still running after a minute: deadlock")
	}
}

// A label set interned while a snapshot is taken is either in the
// snapshot with every group that uses it, or in neither: the encoder never
// meets a group whose label set it was not given.
func TestSnapshotLabelSetsCoverGroups(t *testing.T) {
	tbl := newTestTable(1<<20, 1<<16)
	pcs := []uintptr{1, 2, 3}
	h := tbl.stacks.hash(pcs)
	for i := range 100_000 { // live records make each snapshot take a while
		tbl.insert(liveKey{key: uintptr(i)}, tbl.groups.find(tbl.stacks, 0, 0, pcs, h, 8), 0)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			labels := tbl.labels.intern(pprof.WithLabels(context.Background(), pprof.Labels("n", strconv.Itoa(i))))
			if labels == 0 {
				return // the label table is full
			}
			tbl.insert(liveKey{key: uintptr(1<<30 + i)}, tbl.groups.find(tbl.stacks, 0, labels, pcs, h, 8), 0)
		}
	})
	e := newEncoder(func(pc uintptr) symbol { return symbol{addr: uint64(pc)} }, nil)
	var s tableSnapshot
	for range 200 {
		tbl.snapshot(&s, time.Now())
		s.heapNames = []string{defaultHeapName}
		if _, err := e.encode(&s, nil); err != nil {
			t.Fatal(err)
		}
	}
}
