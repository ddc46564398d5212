package profiler

import (
	"math/bits"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// count returns slot i's counter; the caller holds the slot's shard lock.
func (c *filterSlots) count(i uint64) uint8 { return c.counts[i] }

// newTestTable returns a live table of at most maxLive samples and
// maxStacks stacks, with the default rate and depth.
func newTestTable(maxLive, maxStacks int) *liveTable {
	return newLiveTable(time.Now(), DefaultSamplingRate, defaultStackDepth, maxLive, maxStacks)
}

// freeVia is Free against tbl: the filter, then the table.
func freeVia(tbl *liveTable, k liveKey) {
	if tbl.filter.mayContain(k.key, k.heap) {
		tbl.remove(k)
	}
}

// The key filter grows while inserts and frees run on other goroutines;
// no Free may be lost to a resize (a lost Free leaves a record live for
// ever), and the filter's counts must match the records afterwards.
func TestKeyFilterGrowsUnderConcurrency(t *testing.T) {
	tbl := newTestTable(1<<20, 16)
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
					freeVia(tbl, liveKey{key: base + i, heap: 1})
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
			freeVia(tbl, liveKey{key: uintptr(w)<<28 + i, heap: 1})
		}
	}
	if n := tbl.count.Load(); n != 0 {
		t.Errorf("%d records left after freeing every key", n)
	}
	var sum uint64
	cur := tbl.filter.cur.Load()
	for i := range cur.slots() {
		sum += uint64(cur.count(i))
		if set := cur.words[i/64]&(1<<(i%64)) != 0; set != (cur.count(i) != 0) {
			t.Fatalf("slot %d counts %d but its bit is %v", i, cur.count(i), set)
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
	tbl := newTestTable(2000, 16)
	gid := tbl.groups.find(tbl.stacks, 1, 0, []uintptr{1}, 1, 8)
	for i := range uintptr(2000) {
		tbl.insert(liveKey{key: i, heap: 1}, gid, 0)
	}
	if n := tbl.filter.cur.Load().slots(); n != 32768 {
		t.Errorf("filter has %d slots for at most 2000 live samples, want 32768 (16 per sample, rounded up to a power of two)", n)
	}
	tbl = newTestTable(10, 16)
	if n := tbl.filter.cur.Load().slots(); n != minFilterSlots {
		t.Errorf("filter has %d slots for at most 10 live samples, want the minimum %d", n, minFilterSlots)
	}
}

// filterHash returns a hash whose block is word w and whose two slots in
// it are b1 and b2.
func filterHash(c *filterSlots, w, b1, b2 uint64) uint64 {
	return (w<<12 | b1<<6 | b2) << c.low
}

// A counter that would pass 255 sticks there: its keys always go to the
// table from then on, and no Free of them is ever turned away. The bitmap
// readers see follows the counters, and neighbouring slots are untouched.
func TestKeyFilterCounterSaturates(t *testing.T) {
	c := newFilterSlots(minFilterSlots)
	hot := filterHash(c, 3, 5, 5) // both of its slots are slot 5 of word 3
	near := filterHash(c, 3, 6, 6)
	for range 300 {
		c.add(hot, 1)
	}
	c.add(near, 1)
	for range 300 {
		c.add(hot, -1)
	}
	if got := c.count(3*64 + 5); got != 255 || !c.mayContain(hot) {
		t.Errorf("counter after 300 adds and 300 removes = %d (contains %v), want stuck at 255", got, c.mayContain(hot))
	}
	if got, next, prev := c.count(3*64+6), c.count(3*64+7), c.count(3*64+4); got != 2 || next != 0 || prev != 0 {
		t.Errorf("neighbouring counters = %d, %d, %d; want 0, 2, 0", prev, got, next)
	}
	c.add(near, -1)
	if c.mayContain(near) || c.mayContain(filterHash(c, 3, 7, 7)) {
		t.Errorf("bits of empty slots are set")
	}
}

// A key is reported only if both of its slots are nonzero.
func TestKeyFilterNeedsBothSlots(t *testing.T) {
	c := newFilterSlots(minFilterSlots)
	c.add(filterHash(c, 9, 1, 2), 1)
	c.add(filterHash(c, 9, 3, 4), 1)
	for _, tc := range []struct {
		b1, b2 uint64
		want   bool
	}{{1, 2, true}, {2, 1, true}, {1, 3, true}, {4, 4, true}, {1, 5, false}, {5, 1, false}, {5, 5, false}} {
		if got := c.mayContain(filterHash(c, 9, tc.b1, tc.b2)); got != tc.want {
			t.Errorf("slots %d and %d of a word with slots 1-4 set: mayContain = %v, want %v", tc.b1, tc.b2, got, tc.want)
		}
	}
	if c.mayContain(filterHash(c, 10, 1, 2)) {
		t.Error("a key of another word passes")
	}
}

// Every slot belongs to the shard of the keys that land in it, so that
// one shard lock orders all changes to a slot and its bit.
func TestKeyFilterSlotsFollowShards(t *testing.T) {
	for _, n := range []uint64{minFilterSlots, maxFilterSlots} {
		c := newFilterSlots(n)
		wordsPerShard := n / 64 / liveShards
		for k := range uintptr(10000) {
			h := hashKey(liveKey{key: k * 4096, heap: 1})
			w := h >> c.low >> 12
			if got, want := w/wordsPerShard, h>>(64-liveShardBits); got != want {
				t.Fatalf("key %d: slots of shard %d, key of shard %d", k, got, want)
			}
		}
	}
}

// Keys are often aligned addresses or small consecutive ids; the key hash
// must still spread them over shards and filter slots as random keys
// would, or Frees would queue on one lock and pass the filter more often.
// The filter is filled to the load at which it grows, and other keys of
// the same kind are looked up: their false-positive rate must be close to
// that of random keys measured the same way (about 2%). With 2^18 lookups
// either rate has a standard deviation near 0.03 points; the bound, 1.25
// times the random rate plus 0.3 points, is far outside that and far
// below the 6% of a one-slot filter.
func TestKeyHashSpreadsStructuredKeys(t *testing.T) {
	const slots = 1 << 18
	const n, lookups = slots / filterLoad, 1 << 18
	r := rand.New(rand.NewPCG(7, 8))
	falsePositives := func(key func(i int) uintptr) float64 {
		c := newFilterSlots(slots)
		for i := range n {
			c.add(hashKey(liveKey{key: key(i), heap: 1}), 1)
		}
		hits := 0
		for i := range lookups {
			if c.mayContain(hashKey(liveKey{key: key(n + i), heap: 1})) {
				hits++
			}
		}
		return float64(hits) / lookups
	}
	random := falsePositives(func(int) uintptr { return uintptr(r.Uint64()) })
	t.Logf("random keys: %.2f%% false positives", 100*random)
	for _, keys := range []struct {
		name string
		key  func(i int) uintptr
	}{
		{"page-aligned addresses", func(i int) uintptr { return 1<<(bits.UintSize-2) + uintptr(i)*4096 }},
		{"16-byte aligned addresses", func(i int) uintptr { return 1<<(bits.UintSize-3) + uintptr(i)*16 }},
		{"consecutive ids", func(i int) uintptr { return uintptr(i) }},
	} {
		fp := falsePositives(keys.key)
		t.Logf("%s: %.2f%% false positives", keys.name, 100*fp)
		if fp > 1.25*random+0.003 {
			t.Errorf("%s: %.2f%% of unsampled keys pass the filter, random keys %.2f%%", keys.name, 100*fp, 100*random)
		}
		var shards [liveShards]int
		for i := range n {
			shards[hashKey(liveKey{key: keys.key(i), heap: 1})>>(64-liveShardBits)]++
		}
		// 256 keys a shard on average; 5σ of a binomial is about 80.
		for i, m := range shards {
			if m < 256-80 || m > 256+80 {
				t.Errorf("%s: shard %d got %d keys, want 256±80", keys.name, i, m)
			}
		}
	}
}

// Across Starts and Stops, with hook calls running all along and growing
// each table's filter, no Free may be lost: Free reads the filter of the
// running profiler's table, whichever it is and however often it grew.
func TestFreeAcrossRestarts(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			key := uintptr(g+1) << (bits.UintSize - 8) // apart from the test's own keys, on 32 bits too
			for {
				select {
				case <-stop:
					return
				default:
				}
				for range 512 {
					key++
					Alloc(key, 64)
					if key%3 == 0 {
						Free(key)
					}
				}
			}
		})
	}
	h := NewHeap("restarts")
	for cycle := range 20 {
		p := startTestProfiler(t, WithSamplingRate(1), WithMaxLiveSamples(1<<16))
		for i := range uintptr(2000) { // grows the filter twice
			h.Alloc(i, 8)
		}
		for i := range uintptr(2000) {
			h.Free(i)
		}
		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		var left int
		for k := range p.table.shards {
			s := &p.table.shards[k]
			s.mu.Lock()
			for lk := range s.live {
				if lk.heap == h.id {
					left++
				}
			}
			s.mu.Unlock()
		}
		if left != 0 {
			t.Fatalf("cycle %d: %d of 2000 freed keys still live: their Frees were lost", cycle, left)
		}
	}
	close(stop)
	wg.Wait()
}
