package profiler

import (
	"math/bits"
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
			base := uintptr(w) << 28
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
			tbl.free(uintptr(w)<<28+i, 1)
		}
	}
	if n := tbl.count.Load(); n != 0 {
		t.Errorf("%d records left after freeing every key", n)
	}
	var sum uint64
	cur := tbl.filter.cur.Load()
	for i := range cur.slots() {
		sum += uint64(cur.count(i))
		if cur.count(i) == 0 && cur.mayContain(i<<cur.shift) {
			t.Fatalf("slot %d is empty but its bit is set", i)
		}
	}
	if sum != 0 {
		t.Errorf("filter counts %d keys after all were freed, want 0", sum)
	}
	t.Logf("filter grew from %d to %d slots", before, after)
}

// The filter never grows past sixteen slots per allowed live sample, nor
// below its minimum.
func TestKeyFilterBound(t *testing.T) {
	tbl := newLiveTable(2000, 16)
	gid := tbl.groups.find(tbl.stacks, 1, 0, []uintptr{1}, 1, 8)
	for i := range uintptr(2000) {
		tbl.insert(liveKey{key: i, heap: 1}, gid, 0)
	}
	if n := tbl.filter.cur.Load().slots(); n != 32768 {
		t.Errorf("filter has %d slots for at most 2000 live samples, want 32768 (16 per sample, rounded up to a power of two)", n)
	}
	tbl = newLiveTable(10, 16)
	if n := tbl.filter.cur.Load().slots(); n != minFilterSlots {
		t.Errorf("filter has %d slots for at most 10 live samples, want the minimum %d", n, minFilterSlots)
	}
}

// A counter that would pass 255 sticks there: its keys always go to the
// table from then on, and no Free of them is ever turned away. The bitmap
// readers see follows the counters, and neighbouring slots are untouched.
func TestKeyFilterCounterSaturates(t *testing.T) {
	c := newFilterSlots(minFilterSlots)
	hash := func(slot uint64) uint64 { return slot << c.shift }
	const i = 5
	for range 300 {
		c.add(hash(i), 1)
	}
	c.add(hash(i+1), 1)
	for range 300 {
		c.add(hash(i), -1)
	}
	if got := c.count(i); got != 255 || !c.mayContain(hash(i)) {
		t.Errorf("counter after 300 adds and 300 removes = %d (bit %v), want stuck at 255 and set", got, c.mayContain(hash(i)))
	}
	if got, next, prev := c.count(i+1), c.count(i+2), c.count(i-1); got != 1 || next != 0 || prev != 0 {
		t.Errorf("neighbouring counters = %d, %d, %d; want 0, 1, 0", prev, got, next)
	}
	c.add(hash(i+1), -1)
	if c.mayContain(hash(i+1)) || c.mayContain(hash(i+2)) {
		t.Errorf("bits of empty slots are set")
	}
}

// Every slot belongs to the shard of the keys that land in it, so that
// one shard lock orders all changes to a slot and its bit.
func TestKeyFilterSlotsFollowShards(t *testing.T) {
	for _, n := range []uint64{minFilterSlots, maxFilterSlots} {
		c := newFilterSlots(n)
		for k := range uintptr(10000) {
			h := hashKey(liveKey{key: k * 4096, heap: 1})
			slotsPerShard := n / liveShards
			if got, want := c.slot(h)/slotsPerShard, h>>(64-liveShardBits); got != want {
				t.Fatalf("key %d: slot of shard %d, key of shard %d", k, got, want)
			}
		}
	}
}

// Keys are often aligned addresses or small consecutive ids; the key hash
// must still spread them over shards and filter slots as random keys
// would, or Frees would queue on one lock and pass the filter more often.
func TestKeyHashSpreadsStructuredKeys(t *testing.T) {
	c := newFilterSlots(1 << 18)
	for _, keys := range []struct {
		name string
		key  func(i int) uintptr
	}{
		{"page-aligned addresses", func(i int) uintptr { return 1<<(bits.UintSize-2) + uintptr(i)*4096 }},
		{"consecutive ids", func(i int) uintptr { return uintptr(i) }},
	} {
		const n = 16384
		slots := map[uint64]bool{}
		var shards [liveShards]int
		for i := range n {
			h := hashKey(liveKey{key: keys.key(i), heap: 1})
			slots[c.slot(h)] = true
			shards[h>>(64-liveShardBits)]++
		}
		// Random keys would leave n·(1 - n/(2·slots)) ≈ 97% of slots distinct.
		if len(slots) < n*95/100 {
			t.Errorf("%s: %d keys took only %d distinct filter slots", keys.name, n, len(slots))
		}
		// 256 keys a shard on average; 5σ of a binomial is about 80.
		for i, m := range shards {
			if m < 256-80 || m > 256+80 {
				t.Errorf("%s: shard %d got %d keys, want 256±80", keys.name, i, m)
			}
		}
	}
}
