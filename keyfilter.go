package profiler

import (
	"math/bits"
	"sync/atomic"
)

// hashKey hashes a live key for the table and the filter, both of which
// use only its top bits (shard, slots): a multiply carries every input bit
// up into them, so one is enough on the path every Free takes. The heap's
// part, heapSeed, is a multiple of its id.
func hashKey(k liveKey) uint64 {
	return (uint64(k.key) + heapSeed(k.heap)) * keyMul
}

const keyMul = 0xbf58476d1ce4e5b9

func heapSeed(heap uint32) uint64 { return uint64(heap) * 0x9e3779b97f4a7c15 }

// keyFilter is a counting filter over key hashes: each key counts in two
// slots of one 64-slot block, and a key with either slot at zero is not
// live, so Free of an unsampled key takes no lock and writes nothing. Keys
// that pass are resolved by the table.
//
// Readers see only a bitmap of the nonzero slots, one bit a slot, so the
// part of the filter that every Free touches is small enough to stay in
// cache, and a key's two bits are in one 64-bit word, read with one load;
// the 8-bit counters behind it change only with the live table. A block is
// picked by the top bits of the key's hash, whose top six bits pick the
// key's shard too: each block belongs to one shard, so its counters and
// bits change only under that shard's lock and each bit always says
// whether its counter is zero.
//
// The filter starts small, for the few live samples of a production rate,
// and grows fourfold whenever live samples reach a sixteenth of its slots.
// At that load a key's two slots are both nonzero, and a Free of an
// unsampled key takes a shard lock, for about 2% of keys (one slot per key
// would let 6% through). It never grows past maxFilterSlots or sixteen
// slots per WithMaxLiveSamples. A counter that reaches 255 sticks there
// until the next resize: its keys then always go to the table, which is
// slower but never wrong.
type keyFilter struct {
	cur atomic.Pointer[filterSlots]
	max uint64 // slots at most
}

type filterSlots struct {
	words  []uint64 // bit b of word w: counts[64w+b] != 0; accessed atomically
	low    uint     // 64 - 12 - log2(words): h>>low is a key's word and two slots
	counts []uint8  // under the lock of the block's shard
}

const (
	minFilterSlots = 1 << 14 // ≥ 64 words of 64 bits: a word per shard at least
	maxFilterSlots = 1 << 22
	filterLoad     = 16 // slots per live sample before the filter grows
)

func newFilterSlots(n uint64) *filterSlots {
	return &filterSlots{
		words:  make([]uint64, n/64),
		low:    uint(64 - 12 - bits.TrailingZeros64(n/64)),
		counts: make([]uint8, n),
	}
}

func (c *filterSlots) slots() uint64 { return uint64(len(c.counts)) }

// mayContain reports whether key may be live in heap: false means it is
// not. It is all that a Free of a key that was never sampled does once a
// profiler runs, and it inlines into the hook's paths.
func (f *keyFilter) mayContain(key uintptr, heap uint32) bool {
	return f.cur.Load().mayContain(hashKey(liveKey{key: key, heap: heap}))
}

// mayContain reports whether both slots of hash h are nonzero. Of x, the
// hash's top bits, the top ones pick the word and the two lowest groups of
// six bits the slots in it.
func (c *filterSlots) mayContain(h uint64) bool {
	x := h >> (c.low % 64)
	w := atomic.LoadUint64(&c.words[x>>12])
	return w>>(x>>6%64)&(w>>(x%64))&1 != 0
}

// add adds delta (1 or -1) to the counters of hash h's two slots (twice to
// one slot if they coincide). The caller holds the shard lock.
func (c *filterSlots) add(h uint64, delta int) {
	x := h >> c.low
	c.addSlot(x>>12, x>>6%64, delta)
	c.addSlot(x>>12, x%64, delta)
}

// addSlot adds delta to slot b of word w, unless it is stuck at 255, and
// keeps its bit in step.
func (c *filterSlots) addSlot(w, b uint64, delta int) {
	i := w*64 + b
	n := c.counts[i]
	if n == 0xff || (delta < 0 && n == 0) {
		return
	}
	n = uint8(int(n) + delta)
	c.counts[i] = n
	switch {
	case n == 1 && delta > 0:
		atomic.OrUint64(&c.words[w], 1<<b)
	case n == 0:
		atomic.AndUint64(&c.words[w], ^uint64(1<<b))
	}
}

// init sizes the filter for at most maxLive live keys.
func (f *keyFilter) init(maxLive int) {
	most := min(uint64(maxLive)*filterLoad, maxFilterSlots)
	f.max = max(uint64(1)<<bits.Len64(most-1), minFilterSlots)
	f.cur.Store(newFilterSlots(min(f.max, minFilterSlots)))
}

// add and remove are called under the lock of the shard holding the key,
// which a resize holds too, so they always update the filter in use.
func (f *keyFilter) add(h uint64)    { f.cur.Load().add(h, 1) }
func (f *keyFilter) remove(h uint64) { f.cur.Load().add(h, -1) }

// wantsGrowth reports whether live keys have outgrown the filter.
func (f *keyFilter) wantsGrowth(live int64) bool {
	n := f.cur.Load().slots()
	return n < f.max && uint64(live) > n/filterLoad
}
