package profiler

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The tracker keeps what the profiles report: for every sampled allocation
// still live, which group it belongs to and when it was made; and for every
// group, how many sampled allocations it has seen in all. A group is one
// (heap, stack, size, labels) combination, the unit a profile sample shows.
// Keeping the live count per group as well means a profile is built from the
// groups alone, never by walking every live record.

const (
	defaultMaxLiveSamples = 1 << 17
	defaultMaxStacks      = 1 << 16
	maxGroups             = groupChunkSize * groupChunks
	groupChunkSize        = 1 << 10
	groupChunks           = 1 << 8
	liveShardBits         = 6
	liveShards            = 1 << liveShardBits
)

// group is one (heap, stack, size, labels) combination: the allocations a
// profile sample describes. Its identity fields never change; its counter
// is updated atomically by the hook and read by the writer without a lock.
// Its live allocations are counted from the live table when a profile is
// written, together with their ages.
type group struct {
	stk    *stack // nil when the stack table was full
	id     uint32
	heap   uint32
	labels uint32 // label set id, 0 for none
	size   int64
	next   *group       // next group with the same hash
	allocs atomic.Int64 // sampled allocations, cumulative
}

// groupTable interns groups. Groups are stored in fixed chunks so that a
// group's id maps to its address without a lock.
type groupTable struct {
	mu     sync.Mutex
	byHash map[uint64]*group
	n      atomic.Uint32 // groups in use; ids are 1..n, 0 is "none"
	chunks [groupChunks]atomic.Pointer[[groupChunkSize]group]
}

// is reports whether g is the group of these fields.
func (g *group) is(heap, labels uint32, size int64, pcs []uintptr) bool {
	return g.heap == heap && g.labels == labels && g.size == size && g.stk.matches(pcs)
}

func (t *groupTable) get(id uint32) *group {
	return &t.chunks[id/groupChunkSize].Load()[id%groupChunkSize]
}

// find returns the id of the group with these fields, creating it if new.
// A stack that does not fit in the stack table lands in its heap's overflow
// group for that size (stk == nil), so its bytes still count. find returns
// 0 when the group table is full.
func (t *groupTable) find(stacks *stackTable, heap, labels uint32, pcs []uintptr, pcHash uint64, size int64) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := groupHash(pcHash, heap, labels, size)
	for g := t.byHash[h]; g != nil; g = g.next {
		if g.heap == heap && g.labels == labels && g.size == size && g.stk.matches(pcs) {
			return g.id
		}
	}
	stk := stacks.intern(pcs, pcHash)
	if stk == nil {
		h = groupHash(0, heap, labels, size)
		for g := t.byHash[h]; g != nil; g = g.next {
			if g.heap == heap && g.labels == labels && g.size == size && g.stk == nil {
				return g.id
			}
		}
	}
	id := t.n.Load() + 1
	if id >= maxGroups {
		return 0
	}
	c := t.chunks[id/groupChunkSize].Load()
	if c == nil {
		c = new([groupChunkSize]group)
		t.chunks[id/groupChunkSize].Store(c)
	}
	g := &c[id%groupChunkSize]
	g.id, g.stk, g.heap, g.labels, g.size, g.next = id, stk, heap, labels, size, t.byHash[h]
	t.byHash[h] = g
	t.n.Store(id)
	return id
}

func groupHash(pcHash uint64, heap, labels uint32, size int64) uint64 {
	return mix(pcHash ^ mix(uint64(heap)<<40^uint64(labels)<<20^uint64(size)))
}

// snapshot returns the groups in use. The identity fields of each are
// immutable once published, so the caller reads them without a lock.
func (t *groupTable) snapshot(buf []*group) []*group {
	n := t.n.Load()
	for id := uint32(1); id <= n; id++ {
		buf = append(buf, t.get(id))
	}
	return buf
}

// liveKey identifies a live allocation: the caller's key within a heap's key
// space. Tracked Go objects use a separate key space per heap (trackedBit),
// keyed by a sample id rather than an address, because a cleanup can run
// after the address was reused.
type liveKey struct {
	key  uintptr
	heap uint32
}

const trackedBit uint32 = 1 << 31

// liveRecord is what the table keeps per live sample: 8 bytes, so with its
// 16-byte key one map slot is 24 bytes.
type liveRecord struct {
	group uint32
	born  uint32 // seconds since the profiler started
}

type liveShard struct {
	mu   sync.Mutex
	live map[liveKey]liveRecord
	_    [64]byte // keep neighbouring shards' locks off one cache line
}

// liveTable is the sharded table of sampled allocations not yet freed. It is
// safe for concurrent use.
type liveTable struct {
	groups  groupTable
	stacks  *stackTable
	labels  labelTable
	maxLive int64
	count   atomic.Int64
	filter  *keyFilter
	growMu  sync.Mutex // one filter resize at a time
	shards  [liveShards]liveShard

	samples      atomic.Uint64 // sampled allocations offered to the table
	droppedLive  atomic.Uint64 // not recorded: maxLive reached
	droppedGroup atomic.Uint64 // not recorded: group table full
	nextTracked  atomic.Uint64 // sample ids for tracked Go objects
}

func newLiveTable(maxLive, maxStacks int) *liveTable {
	t := &liveTable{
		stacks:  newStackTable(maxStacks),
		maxLive: int64(maxLive),
		filter:  newKeyFilter(maxLive),
	}
	t.groups.byHash = make(map[uint64]*group)
	for i := range t.shards {
		t.shards[i].live = make(map[liveKey]liveRecord)
	}
	return t
}

// mix is a 64-bit finalizer (from splitmix64): every input bit affects every
// output bit, so groupHash can combine a group's fields by xor.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashKey hashes a live key for the table and the filter, both of which
// use only its top bits (shard, slots): a multiply carries every input bit
// up into them, so one is enough on the path every Free takes. Free adds
// the heap's part, heapSeed, from a field of the Heap.
func hashKey(k liveKey) uint64 {
	return (uint64(k.key) + heapSeed(k.heap)) * keyMul
}

const keyMul = 0xbf58476d1ce4e5b9

func heapSeed(heap uint32) uint64 { return uint64(heap) * 0x9e3779b97f4a7c15 }

func (t *liveTable) shard(h uint64) *liveShard {
	return &t.shards[h>>(64-liveShardBits)]
}

// insert records a sampled allocation under k. A live record under the same
// key is replaced: its object was freed without telling us. It reports
// false if the table was full and the sample dropped.
func (t *liveTable) insert(k liveKey, groupID uint32, born uint32) bool {
	g := t.groups.get(groupID)
	g.allocs.Add(1)
	h := hashKey(k)
	s := t.shard(h)
	s.mu.Lock()
	if t.count.Load() >= t.maxLive {
		if _, ok := s.live[k]; !ok {
			s.mu.Unlock()
			t.droppedLive.Add(1)
			return false
		}
	}
	n := len(s.live)
	s.live[k] = liveRecord{group: groupID, born: born}
	replaced := len(s.live) == n // one map probe, not a lookup and a store
	if !replaced {
		if t.count.Add(1) > t.maxLive { // another shard took the last place
			t.count.Add(-1)
			delete(s.live, k)
			s.mu.Unlock()
			t.droppedLive.Add(1)
			return false
		}
		t.filter.add(h)
	}
	s.mu.Unlock()
	if !replaced && t.filter.wantsGrowth(t.count.Load()) {
		t.grow()
	}
	return true
}

// liveAges appends, for each live record of groups 1..maxGroup, its group
// id and age bucket packed as id<<ageBits | bucket. now is the writer's
// clock in seconds since Start. Each shard is locked only while its
// records are copied out.
func (t *liveTable) liveAges(now, maxGroup uint32, out []uint32) []uint32 {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, r := range s.live {
			if r.group > maxGroup {
				continue
			}
			age := uint32(0)
			if now > r.born { // a record may be younger than the writer's clock
				age = now - r.born
			}
			out = append(out, r.group<<ageBits|uint32(ageBucket(age)))
		}
		s.mu.Unlock()
	}
	return out
}

// remove forgets k if it is live.
func (t *liveTable) remove(k liveKey) {
	h := hashKey(k)
	s := t.shard(h)
	s.mu.Lock()
	_, ok := s.live[k]
	if ok {
		delete(s.live, k)
		t.filter.remove(h)
	}
	s.mu.Unlock()
	if ok {
		t.count.Add(-1)
	}
}

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
	cur    atomic.Pointer[filterSlots]
	max    uint64          // slots at most
	shared *unsafe.Pointer // where Free reads cur, if published
}

// liveFilter is the *filterSlots that Free reads without going through the
// profiler: the running profiler's, or an empty one. It is an
// unsafe.Pointer read with atomic.LoadPointer, not an atomic.Pointer,
// because that keeps Free within the inlining budget.
var liveFilter = unsafe.Pointer(noFilter)

// noFilter is the filter of no live keys, in use while no profiler runs.
var noFilter = newFilterSlots(64 * 64)

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

func newKeyFilter(maxLive int) *keyFilter {
	most := min(uint64(maxLive)*filterLoad, maxFilterSlots)
	most = max(uint64(1)<<bits.Len64(most-1), minFilterSlots)
	f := &keyFilter{max: most}
	f.cur.Store(newFilterSlots(min(most, minFilterSlots)))
	return f
}

// publish makes dst follow the filter in use, before any key is added.
func (f *keyFilter) publish(dst *unsafe.Pointer) {
	f.shared = dst
	atomic.StorePointer(dst, unsafe.Pointer(f.cur.Load()))
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

// grow replaces the filter by one four times larger, rebuilt from the
// records. It holds every shard lock meanwhile, so no add or remove runs
// against the old filter once the new one is built, and the published
// pointer that Free reads switches before any key is added to the new one.
// A Free that loaded the old filter just before the switch still sees
// every key inserted before it: the old filter is only retired, never
// cleared.
func (t *liveTable) grow() {
	t.growMu.Lock()
	defer t.growMu.Unlock()
	if !t.filter.wantsGrowth(t.count.Load()) {
		return // another insert grew it first
	}
	for i := range t.shards {
		t.shards[i].mu.Lock()
	}
	old := t.filter.cur.Load()
	next := newFilterSlots(min(old.slots()*4, t.filter.max))
	for i := range t.shards {
		for k := range t.shards[i].live {
			next.add(hashKey(k), 1)
		}
	}
	t.filter.cur.Store(next)
	if t.filter.shared != nil {
		// Only if it still shows this table's filter: Stop replaces it.
		atomic.CompareAndSwapPointer(t.filter.shared, unsafe.Pointer(old), unsafe.Pointer(next))
	}
	for i := range t.shards {
		t.shards[i].mu.Unlock()
	}
}
