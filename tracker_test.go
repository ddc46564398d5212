package profiler

import (
	"sync"
	"testing"
)

// The key filter grows while inserts and frees run on other goroutines;
// no Free may be lost to a resize (a lost Free leaves a record live for
// ever), and the filter's counts must match the records afterwards.
func TestKeyFilterGrowsUnderConcurrency(t *testing.T) {
	tbl := newLiveTable(1<<20, 16)
	gid := tbl.groups.find(tbl.stacks, 1, 0, []uintptr{1}, 1, 8)
	if gid == 0 {
		t.Fatal("no group")
	}
	before := tbl.filter.cur.Load().slots()

	const workers, perWorker = 4, 20000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			base := uintptr(w) << 40
			for i := range uintptr(perWorker) {
				tbl.insert(liveKey{key: base + i, heap: 1}, gid, 0)
				if i%2 == 1 { // free every other key, right after inserting it
					tbl.free(base+i, 1)
				}
			}
		})
	}
	wg.Wait()

	after := tbl.filter.cur.Load().slots()
	if after <= before {
		t.Fatalf("filter did not grow: %d slots before and after %d live keys", before, tbl.count.Load())
	}
	if want := int64(workers * perWorker / 2); tbl.count.Load() != want {
		t.Errorf("%d live records, want %d: some Free was lost during a resize", tbl.count.Load(), want)
	}
	for w := range workers {
		for i := uintptr(0); i < perWorker; i += 2 {
			tbl.free(uintptr(w)<<40+i, 1)
		}
	}
	if n := tbl.count.Load(); n != 0 {
		t.Errorf("%d records left after freeing every key", n)
	}
	var sum uint64
	cur := tbl.filter.cur.Load()
	for i := range cur.slots() {
		sum += uint64(cur.count(i))
	}
	if sum != 0 {
		t.Errorf("filter counts %d keys after all were freed, want 0", sum)
	}
	t.Logf("filter grew from %d to %d slots", before, after)
}

// The filter never grows past four slots per allowed live sample.
func TestKeyFilterBound(t *testing.T) {
	tbl := newLiveTable(2000, 16)
	gid := tbl.groups.find(tbl.stacks, 1, 0, []uintptr{1}, 1, 8)
	for i := range uintptr(2000) {
		tbl.insert(liveKey{key: i, heap: 1}, gid, 0)
	}
	if n := tbl.filter.cur.Load().slots(); n != 32768 {
		t.Errorf("filter has %d slots for at most 2000 live samples, want 32768 (16 per sample, rounded up to a power of two)", n)
	}
}

// A counter that would pass 255 sticks there: its keys always go to the
// table from then on, and no Free of them is ever turned away. Its
// neighbours in the same word are untouched.
func TestKeyFilterCounterSaturates(t *testing.T) {
	c := newFilterSlots(16)
	const h = 5
	for range 300 {
		c.add(h, 1)
	}
	c.add(h+1, 1)
	for range 300 {
		c.add(h, -1)
	}
	if got := c.count(h); got != 255 {
		t.Errorf("counter after 300 adds and 300 removes = %d, want stuck at 255", got)
	}
	if got, next, prev := c.count(h+1), c.count(h+2), c.count(h-1); got != 1 || next != 0 || prev != 0 {
		t.Errorf("neighbouring counters = %d, %d, %d; want 1, 0, 0", prev, got, next)
	}
}
