package profiler

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// The tracker keeps what the profiles report: for every sampled allocation
// still live, which group it belongs to and when it was made; and for every
// group, how many sampled allocations it has seen in all. A group is one
// (heap, stack, size, labels) combination, the unit a profile sample shows.
// Keeping the live count per group as well means a profile is built from the
// groups alone, never by walking every live record.
//
// Groups are bounded, and a site whose sizes vary freely makes new ones
// without end, so a group with nothing live is recycled when the table is
// full: its cumulative allocations, scaled to the estimates they stand
// for, are added to its (heap, stack, labels) entry among the retired
// allocations, which profiles report beside the groups. Those entries are
// bounded too; past the bound they fold into one per heap.

const (
	defaultMaxLiveSamples = 1 << 17
	defaultMaxStacks      = 1 << 16
	maxGroups             = groupChunkSize*groupChunks - 1 // ids 1..maxGroups
	groupChunkSize        = 1 << 10
	groupChunks           = 1 << 8
	liveShardBits         = 6
	liveShards            = 1 << liveShardBits
)

// group is one (heap, stack, size, labels) combination: the allocations a
// profile sample describes. Its identity fields change only under the
// table's lock, when it is made or recycled; its counters are updated
// atomically.
// Its live allocations are counted from the live table when a profile is
// written, together with their ages.
type group struct {
	stk    *stack // nil when the stack table was full
	id     uint32 // 0 while the slot is free
	heap   uint32
	labels uint32 // label set id, 0 for none
	size   int64
	next   *group       // next group with the same hash
	allocs atomic.Int64 // sampled allocations, cumulative

	// refs counts the group's live records and the finds that will insert
	// one: while it is above zero the group is not recycled.
	refs atomic.Int64
}

// groupTable interns groups. Groups are stored in fixed chunks so that a
// group's id maps to its address without a lock.
type groupTable struct {
	mu     sync.Mutex
	byHash map[uint64]*group
	n      atomic.Uint32 // highest id used; 0 is "none"
	free   []uint32      // ids of recycled groups
	chunks [groupChunks]atomic.Pointer[[groupChunkSize]group]
	rate   int64 // of the samples, to scale a recycled group's allocations

	// idle counts the groups with no reference, which recycling could
	// free: when none is, a full table is not scanned for each sample. It
	// lags the references by a moment, which at worst drops a sample.
	idle    atomic.Int64
	retired map[retiredKey]*retiredAllocs // under mu
}

// retiredKey is what recycled groups' allocations are kept by: their heap,
// stack and labels, or their heap alone (folded) past the entries' bound.
type retiredKey struct {
	stk          *stack
	heap, labels uint32
	folded       bool
}

// retiredAllocs are the estimated objects and bytes that recycled groups
// allocated, already scaled; they only grow, and saturate.
type retiredAllocs struct{ objects, bytes int64 }

func (t *groupTable) get(id uint32) *group {
	return &t.chunks[id/groupChunkSize].Load()[id%groupChunkSize]
}

// find returns the id of the group with these fields, creating it if new,
// with a reference the caller must pass to the live table's insert. A stack
// that does not fit in the stack table lands in its heap's overflow group
// for that size (stk == nil), so its bytes still count. find returns 0
// when every group has live allocations.
func (t *groupTable) find(stacks *stackTable, heap, labels uint32, pcs []uintptr, pcHash uint64, size int64) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := groupHash(pcHash, heap, labels, size)
	for g := t.byHash[h]; g != nil; g = g.next {
		if g.heap == heap && g.labels == labels && g.size == size && g.stk.matches(pcs) {
			t.ref(g)
			return g.id
		}
	}
	stk := stacks.intern(pcs, pcHash)
	if stk == nil {
		h = groupHash(0, heap, labels, size)
		for g := t.byHash[h]; g != nil; g = g.next {
			if g.heap == heap && g.labels == labels && g.size == size && g.stk == nil {
				t.ref(g)
				return g.id
			}
		}
	}
	id := t.freeID()
	if id == 0 {
		return 0
	}
	c := t.chunks[id/groupChunkSize].Load()
	if c == nil {
		c = new([groupChunkSize]group)
		t.chunks[id/groupChunkSize].Store(c)
	}
	g := &c[id%groupChunkSize]
	g.id, g.stk, g.heap, g.labels, g.size, g.next = id, stk, heap, labels, size, t.byHash[h]
	g.allocs.Store(0)
	g.refs.Store(1)
	t.byHash[h] = g
	return id
}

// freeID returns an unused id, recycling the groups with nothing live if
// none is left, or 0. The caller holds mu.
func (t *groupTable) freeID() uint32 {
	if n := t.n.Load(); n < maxGroups {
		t.n.Store(n + 1)
		return n + 1
	}
	if len(t.free) == 0 && t.idle.Load() > 0 {
		t.recycle()
	}
	if len(t.free) == 0 {
		return 0
	}
	id := t.free[len(t.free)-1]
	t.free = t.free[:len(t.free)-1]
	return id
}

// recycle frees every group with nothing live and no insert on its way,
// keeping its allocations among the retired ones. The caller holds mu, so
// no find can take a reference meanwhile, and no snapshot is listing live
// records that refer to groups.
func (t *groupTable) recycle() {
	if t.retired == nil {
		t.retired = make(map[retiredKey]*retiredAllocs)
	}
	for id := uint32(1); id <= t.n.Load(); id++ {
		g := t.get(id)
		if g.id == 0 || g.refs.Load() != 0 {
			continue
		}
		t.retire(g)
		t.unlink(g)
		*g = group{}
		t.free = append(t.free, id)
		t.idle.Add(-1)
	}
}

// retire adds g's allocations to its retired entry, or to its heap's
// overflow entry when the entries are at their bound.
func (t *groupTable) retire(g *group) {
	allocs := g.allocs.Load()
	if allocs == 0 {
		return
	}
	k := retiredKey{stk: g.stk, heap: g.heap, labels: g.labels}
	r := t.retired[k]
	if r == nil {
		if len(t.retired) >= maxGroups {
			k = retiredKey{heap: g.heap, folded: true}
			r = t.retired[k]
		}
		if r == nil {
			r = new(retiredAllocs)
			t.retired[k] = r
		}
	}
	objects, bytes := scale(allocs, float64(allocs)*float64(g.size), t.rate)
	r.objects, r.bytes = saturatingAdd(r.objects, objects), saturatingAdd(r.bytes, bytes)
}

// unlink takes g out of its hash chain.
func (t *groupTable) unlink(g *group) {
	var h uint64
	if g.stk != nil {
		h = groupHash(g.stk.hash, g.heap, g.labels, g.size)
	} else {
		h = groupHash(0, g.heap, g.labels, g.size)
	}
	p := t.byHash[h]
	if p == g {
		if g.next == nil {
			delete(t.byHash, h)
		} else {
			t.byHash[h] = g.next
		}
		return
	}
	for ; p != nil; p = p.next {
		if p.next == g {
			p.next = g.next
			return
		}
	}
}

// ref takes a reference to g. The caller holds mu.
func (t *groupTable) ref(g *group) {
	if g.refs.Add(1) == 1 {
		t.idle.Add(-1)
	}
}

// unref drops a reference to the group with the given id.
func (t *groupTable) unref(id uint32) {
	if t.get(id).refs.Add(-1) == 0 {
		t.idle.Add(1)
	}
}

func groupHash(pcHash uint64, heap, labels uint32, size int64) uint64 {
	return mix(pcHash ^ mix(uint64(heap)<<40^uint64(labels)<<20^uint64(size)))
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
	objs map[liveKey]weak.Pointer[byte] // the tracked objects among live (trackedobjs.go)
	_    [64]byte                       // keep neighbouring shards' locks off one cache line
}

// liveTable is the sharded table of sampled allocations not yet freed. It is
// safe for concurrent use.
type liveTable struct {
	filter  keyFilter // first: Free reads it through the *liveTable
	groups  groupTable
	stacks  *stackTable
	labels  labelTable
	maxLive int64
	count   atomic.Int64
	growMu  sync.Mutex // one filter resize at a time
	shards  [liveShards]liveShard

	start time.Time // of the clock that birth times count on
	rate  int64     // the sampling rate every sample was taken at
	depth int       // frames captured per stack: a stack this long may be cut

	samples       atomic.Int64  // sampled allocations offered to the table
	droppedLive   atomic.Int64  // not recorded: maxLive reached
	droppedGroup  atomic.Int64  // not recorded: group table full
	trackRejected atomic.Int64  // sampled Track calls on memory outside the Go heap
	nextTracked   atomic.Uint64 // sample ids for tracked Go objects
}

func newLiveTable(start time.Time, rate, depth, maxLive, maxStacks int) *liveTable {
	t := &liveTable{
		stacks:  newStackTable(maxStacks),
		maxLive: int64(maxLive),
		start:   start,
		rate:    int64(rate),
		depth:   depth,
	}
	t.filter.init(maxLive)
	t.groups.byHash = make(map[uint64]*group)
	t.groups.rate = int64(rate)
	for i := range t.shards {
		t.shards[i].live = make(map[liveKey]liveRecord)
		t.shards[i].objs = make(map[liveKey]weak.Pointer[byte])
	}
	return t
}

// clock returns the time since start in whole seconds, the clock of the
// live records' birth times.
func (t *liveTable) clock() uint32 {
	return uint32(time.Since(t.start) / time.Second)
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

func (t *liveTable) shard(h uint64) *liveShard {
	return &t.shards[h>>(64-liveShardBits)]
}

// record stores a sampled allocation with its stack, exactly the depth
// deep (whether it was cut is judged when it is written), and its label
// set; or counts it as dropped.
func (t *liveTable) record(k liveKey, size int, labels uint32, pcs []uintptr) {
	t.samples.Add(1)
	gid := t.groups.find(t.stacks, k.heap&^trackedBit, labels, pcs, t.stacks.hash(pcs), int64(size))
	if gid == 0 {
		// The allocation replaces whatever was under its key, kept or not.
		t.droppedGroup.Add(1)
		t.remove(k)
		return
	}
	t.insert(k, gid, t.clock())
}

// insert records a sampled allocation under k in group groupID, taking
// over the reference that find took for it. A live record under the same
// key is replaced: its object was freed without telling us. It reports
// false if the table was full and the sample dropped.
func (t *liveTable) insert(k liveKey, groupID uint32, born uint32) bool {
	g := t.groups.get(groupID)
	g.allocs.Add(1)
	h := hashKey(k)
	s := t.shard(h)
	s.mu.Lock()
	old, replaced := s.live[k]
	if !replaced && t.count.Load() >= t.maxLive {
		s.mu.Unlock()
		t.groups.unref(groupID)
		t.droppedLive.Add(1)
		return false
	}
	if !replaced {
		if t.count.Add(1) > t.maxLive { // another shard took the last place
			t.count.Add(-1)
			s.mu.Unlock()
			t.groups.unref(groupID)
			t.droppedLive.Add(1)
			return false
		}
		t.filter.add(h)
	}
	s.live[k] = liveRecord{group: groupID, born: born}
	s.mu.Unlock()
	if replaced {
		t.groups.unref(old.group)
	} else if t.filter.wantsGrowth(t.count.Load()) {
		t.grow()
	}
	return true
}

// remove forgets k if it is live.
func (t *liveTable) remove(k liveKey) {
	h := hashKey(k)
	s := t.shard(h)
	s.mu.Lock()
	r, ok := s.live[k]
	if ok {
		delete(s.live, k)
		if k.heap&trackedBit != 0 {
			delete(s.objs, k)
		}
		t.filter.remove(h)
	}
	s.mu.Unlock()
	if ok {
		t.count.Add(-1)
		t.groups.unref(r.group)
	}
}

// grow replaces the filter by one four times larger, rebuilt from the
// records. It holds every shard lock meanwhile, so no add or remove runs
// against the old filter once the new one is built, and Free reads the new
// one before any key is added to it.
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
	for i := range t.shards {
		t.shards[i].mu.Unlock()
	}
}

// tableSnapshot is the table's state for one profile, copied out under
// short locks: every group with its cumulative count, the age buckets of
// the live records grouped by group, and the retired allocations of
// recycled groups, with the counters and settings a profile reports.
// Whoever encodes it needs nothing else of the table. Its slices are
// reused by the next snapshot taken into the same value.
type tableSnapshot struct {
	time      time.Time // when it was taken
	start     time.Time // when the profiler started
	rate      int64
	depth     int
	heapNames []string      // by heap id; filled in by the profiler
	trigger   string        // why the profile was taken, if not by the clock; filled in by the profiler
	labelSets [][]labelPair // by label set id - 1

	// groups are sorted for output (compareGroups); the age buckets of the
	// live records of group g are buckets[starts[g.id]:starts[g.id+1]].
	groups  []groupState
	starts  []int32
	buckets []uint8
	ages    []uint32 // scratch: id<<ageBits | bucket of each live record
	retired []retiredState

	samples, live, stacks, droppedLive, droppedGroup int64
	labelSetsDropped, trackRejected                  int64
}

// groupState is a group's identity and cumulative count of sampled
// allocations when the snapshot was taken.
type groupState struct {
	stk          *stack
	id           uint32
	heap, labels uint32
	size         int64
	allocs       int64
}

// retiredState is one entry of the retired allocations.
type retiredState struct {
	retiredKey
	retiredAllocs
}

// snapshot fills s with the table's state at now.
func (t *liveTable) snapshot(s *tableSnapshot, now time.Time) {
	s.time, s.start, s.rate, s.depth = now, t.start, t.rate, t.depth

	// The group table's lock is held while the live records are listed and
	// the groups copied: no group is made or recycled meanwhile, so every
	// listed record's group is copied, as it was when the record was.
	// Counts are read after the live records, so allocs ≥ live.
	t.groups.mu.Lock()
	s.ages = t.liveAges(uint32(now.Sub(t.start)/time.Second), s.ages[:0])
	n := t.groups.n.Load()
	s.groups = s.groups[:0]
	for id := uint32(1); id <= n; id++ {
		if g := t.groups.get(id); g.id != 0 {
			s.groups = append(s.groups, groupState{g.stk, g.id, g.heap, g.labels, g.size, g.allocs.Load()})
		}
	}
	s.retired = s.retired[:0]
	for k, r := range t.groups.retired {
		s.retired = append(s.retired, retiredState{k, *r})
	}
	t.groups.mu.Unlock()
	// After the groups: a label set is interned before its group is found,
	// so this covers every copied group's labels.
	s.labelSets = t.labels.snapshot()
	s.groupLive(n)
	s.sort()

	s.samples = t.samples.Load()
	s.live = t.count.Load()
	s.stacks = t.stacks.count.Load()
	s.droppedLive = t.droppedLive.Load()
	s.droppedGroup = t.droppedGroup.Load()
	s.labelSetsDropped = t.labels.dropped.Load()
	s.trackRejected = t.trackRejected.Load()
}

// liveAges appends, for each live record, its group id and age bucket
// packed as id<<ageBits | bucket. now is the clock in seconds since start.
// Each shard is locked only while its records are copied out.
func (t *liveTable) liveAges(now uint32, out []uint32) []uint32 {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, r := range s.live {
			age := uint32(0)
			if now > r.born { // a record may be younger than the clock
				age = now - r.born
			}
			out = append(out, r.group<<ageBits|uint32(ageBucket(age)))
		}
		s.mu.Unlock()
	}
	return out
}

// groupLive groups the age buckets of the live records by group id, 1..n
// (a counting sort), so that a snapshot costs memory in proportion to the
// live records and the groups, not to their product.
func (s *tableSnapshot) groupLive(n uint32) {
	starts := slices.Grow(s.starts[:0], int(n)+3)[:n+3]
	clear(starts)
	for _, a := range s.ages {
		starts[a>>ageBits+2]++
	}
	for i := 2; i < len(starts); i++ {
		starts[i] += starts[i-1]
	}
	// starts[g+1] is now where group g begins; filling moves it to g's end,
	// which is where group g+1 begins: starts[g] then marks g's start.
	buckets := slices.Grow(s.buckets[:0], len(s.ages))[:len(s.ages)]
	for _, a := range s.ages {
		g := a >> ageBits
		buckets[starts[g+1]] = uint8(a & (1<<ageBits - 1))
		starts[g+1]++
	}
	s.starts, s.buckets = starts, buckets
}

// liveBuckets returns the age buckets of the live records of group id.
func (s *tableSnapshot) liveBuckets(id uint32) []uint8 {
	return s.buckets[s.starts[id]:s.starts[id+1]]
}

// sort puts the groups and retired entries in output order, so that the
// same state always encodes to the same bytes.
func (s *tableSnapshot) sort() {
	slices.SortFunc(s.groups, compareGroups)
	slices.SortFunc(s.retired, func(a, b retiredState) int {
		if c := cmp.Compare(a.heap, b.heap); c != 0 {
			return c
		}
		if c := cmp.Compare(a.labels, b.labels); c != 0 {
			return c
		}
		if a.folded != b.folded {
			return cmp.Compare(boolInt(a.folded), boolInt(b.folded))
		}
		return compareStacks(a.stk, b.stk)
	})
}

// compareGroups orders groups by heap, label set, stack and size.
func compareGroups(a, b groupState) int {
	if c := cmp.Compare(a.heap, b.heap); c != 0 {
		return c
	}
	if c := cmp.Compare(a.labels, b.labels); c != 0 {
		return c
	}
	if c := compareStacks(a.stk, b.stk); c != 0 {
		return c
	}
	return cmp.Compare(a.size, b.size)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
