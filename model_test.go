package profiler

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// The model test: at rate 1 every allocation is sampled with weight 1, so
// the live table must hold exactly what a plain map would, however the
// goroutines interleave. Eight goroutines allocate, free and re-allocate
// keys from one shared range, in two heaps, while two more take profiles;
// every operation is mirrored into a map under a mutex, and at the end the
// table, read both through a written profile and directly, must equal it.
//
// Workers share keys, so two of them may operate on one key at once. The
// reference can only say what the table must hold if it sees the
// operations on a key in the order the table saw them: each operation holds
// a lock striped by key across the hook call and the reference update.
// Operations on different keys (and most are) still run concurrently, in
// whatever order the scheduler picks, through every shard of the table.

// modelSiteA and modelSiteB are the two allocation sites; each worker
// picks one at random, so the profile has two stacks per heap and size.
//
//go:noinline
func modelSiteA(h *Heap, key uintptr, size int) {
	if h == nil {
		Alloc(key, size) // the package-level hook, as most callers use it
	} else {
		h.Alloc(key, size)
	}
}

//go:noinline
func modelSiteB(h *Heap, key uintptr, size int) {
	if h == nil {
		Alloc(key, size)
	} else {
		h.Alloc(key, size)
	}
}

const (
	modelSiteAName = "github.com/leakhunt/profiler.modelSiteA"
	modelSiteBName = "github.com/leakhunt/profiler.modelSiteB"
)

// modelReference is the plain model of the live table: key → size, per
// heap (index into the heaps of the test).
type modelReference struct {
	mu   sync.Mutex
	live [2]map[uintptr]int
}

// allocCount counts Alloc calls per site, heap and size; each worker keeps
// its own and the test adds them up at the end.
type allocCount struct {
	site string
	heap int
	size int
}

func TestModelRateOne(t *testing.T) {
	const (
		workers   = 8
		opsEach   = 15_000
		keySpace  = 512 // shared by all workers, in both heaps
		lockCount = 64
	)
	sizes := []int{8, 24, 100, 4096, 1 << 20}

	p := startTestProfiler(t, WithSamplingRate(1))
	heaps := [2]*Heap{nil, NewHeap("model-test")}
	ref := &modelReference{live: [2]map[uintptr]int{{}, {}}}
	var keyLocks [lockCount]sync.Mutex

	done := make(chan struct{})
	var flushers sync.WaitGroup
	var flushes, writes atomic.Int64
	// Profiles taken while the workers run: each must parse and be valid,
	// no in-use figure may be negative, and the cumulative counts of each
	// (site, heap) may only grow from one profile to the next.
	flushers.Go(func() {
		last := map[[2]string]int64{}
		for {
			select {
			case <-done:
				return
			default:
			}
			path, err := p.Flush()
			if err != nil {
				t.Errorf("Flush during the workload: %v", err)
				return
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("reading the flushed profile: %v", err)
				return
			}
			checkIntermediate(t, "Flush", data, last)
			flushes.Add(1)
		}
	})
	flushers.Go(func() {
		last := map[[2]string]int64{}
		var buf bytes.Buffer
		for {
			select {
			case <-done:
				return
			default:
			}
			buf.Reset()
			if err := p.WriteProfile(&buf); err != nil {
				t.Errorf("WriteProfile during the workload: %v", err)
				return
			}
			checkIntermediate(t, "WriteProfile", buf.Bytes(), last)
			writes.Add(1)
		}
	})

	counts := make([]map[allocCount]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		counts[w] = map[allocCount]int{}
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range opsEach {
				hi := r.IntN(2)
				h := heaps[hi]
				key := uintptr(r.IntN(keySpace))
				mu := &keyLocks[key%lockCount]
				mu.Lock()
				if r.IntN(8) < 5 { // Alloc, or re-Alloc if key is live
					size := sizes[r.IntN(len(sizes))]
					site := modelSiteAName
					if r.IntN(2) == 0 {
						modelSiteA(h, key, size)
					} else {
						site = modelSiteBName
						modelSiteB(h, key, size)
					}
					ref.mu.Lock()
					ref.live[hi][key] = size
					ref.mu.Unlock()
					counts[w][allocCount{site, hi, size}]++
				} else { // Free, live or not
					if h == nil {
						Free(key)
					} else {
						h.Free(key)
					}
					ref.mu.Lock()
					delete(ref.live[hi], key)
					ref.mu.Unlock()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(done)
	flushers.Wait()
	t.Logf("%d workers × %d operations; %d Flush and %d WriteProfile calls ran meanwhile",
		workers, opsEach, flushes.Load(), writes.Load())

	allocs := map[allocCount]int{}
	totalAllocs := 0
	for _, c := range counts {
		for k, n := range c {
			allocs[k] += n
			totalAllocs += n
		}
	}
	refLive := 0
	for hi := range heaps {
		refLive += len(ref.live[hi])
	}
	t.Logf("reference: %d allocations, %d live (%d default, %d %s)",
		totalAllocs, refLive, len(ref.live[0]), len(ref.live[1]), heaps[1].Name())

	st := p.Stats()
	if st.Samples != int64(totalAllocs) || st.Dropped != 0 {
		t.Errorf("Stats: Samples %d, Dropped %d; want %d (every Alloc at rate 1) and 0", st.Samples, st.Dropped, totalAllocs)
	}
	if st.LiveSamples != int64(refLive) {
		t.Errorf("Stats().LiveSamples = %d, want %d, the reference's live keys", st.LiveSamples, refLive)
	}

	checkModelProfile(t, writeParsed(t, p), heaps, ref, allocs)
	checkModelTable(t, p.table, heaps, ref)
}

// checkIntermediate parses a profile taken during the workload and checks
// what must hold at any instant. last holds the alloc_objects per (site,
// heap) of the previous profile from the same goroutine.
func checkIntermediate(t *testing.T, what string, data []byte, last map[[2]string]int64) {
	prof, err := profile.ParseData(data)
	if err == nil {
		err = prof.CheckValid()
	}
	if err != nil {
		t.Errorf("%s during the workload: invalid profile: %v", what, err)
		return
	}
	read := valuesOfSafe(prof)
	if read == nil {
		t.Errorf("%s during the workload: profile lacks the heap sample types: %v", what, prof.SampleType)
		return
	}
	// A hook site's allocations are on a sample without age, its live
	// objects on samples with one; in all, in-use ≤ allocated.
	cur := map[[2]string]int64{}
	inuse := map[[2]string]int64{}
	for _, s := range prof.Sample {
		v := read(s)
		_, aged := s.NumLabel["age"]
		if v.inuseObjects < 0 || v.inuseSpace < 0 || v.allocObjects < 0 ||
			aged && v.allocObjects != 0 || !aged && v.inuseObjects != 0 {
			t.Errorf("%s during the workload: sample %s %s (age %v) has %+v; want allocations only without an age, live objects only with one",
				what, heapLabel(s), leafFunction(s), s.NumLabel["age"], v)
		}
		k := [2]string{leafFunction(s), heapLabel(s)}
		cur[k] += v.allocObjects
		inuse[k] += v.inuseObjects
	}
	for k, n := range inuse {
		if n > cur[k] {
			t.Errorf("%s during the workload: %v has %d objects in use of %d allocated", what, k, n, cur[k])
		}
	}
	for k, n := range last {
		if cur[k] < n {
			t.Errorf("%s during the workload: alloc_objects of %v fell from %d to %d; cumulative counts must not decrease",
				what, k, n, cur[k])
		}
	}
	clear(last)
	for k, n := range cur {
		last[k] = n
	}
}

// valuesOfSafe is valuesOf for use off the test goroutine (no Fatal): it
// returns nil if a sample type is missing.
func valuesOfSafe(prof *profile.Profile) func(*profile.Sample) values {
	idx := map[string]int{}
	for i, st := range prof.SampleType {
		idx[st.Type+"/"+st.Unit] = i
	}
	ao, ok1 := idx["alloc_objects/count"]
	as, ok2 := idx["alloc_space/bytes"]
	io, ok3 := idx["inuse_objects/count"]
	is, ok4 := idx["inuse_space/bytes"]
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil
	}
	return func(s *profile.Sample) values {
		return values{s.Value[ao], s.Value[as], s.Value[io], s.Value[is]}
	}
}

// checkModelProfile compares the final profile with the reference: at rate
// 1 every figure is a plain count, so the comparison is exact.
func checkModelProfile(t *testing.T, prof *profile.Profile, heaps [2]*Heap, ref *modelReference, allocs map[allocCount]int) {
	t.Helper()
	read := valuesOf(t, prof)
	heapIndex := map[string]int{heaps[0].Name(): 0, heaps[1].Name(): 1}

	type heapSize struct {
		heap int
		size int64
	}
	gotLive := map[heapSize]values{}
	gotAllocs := map[allocCount]values{}
	for _, s := range prof.Sample {
		hi, ok := heapIndex[heapLabel(s)]
		if !ok {
			t.Errorf("sample in heap %q; the workload used only %q and %q", heapLabel(s), heaps[0].Name(), heaps[1].Name())
			continue
		}
		size := sizeLabel(t, s)
		v := read(s)
		lv := gotLive[heapSize{hi, size}]
		lv.add(v)
		gotLive[heapSize{hi, size}] = lv
		k := allocCount{leafFunction(s), hi, int(size)}
		av := gotAllocs[k]
		av.add(v)
		gotAllocs[k] = av
	}

	wantLive := map[heapSize]int64{}
	for hi := range heaps {
		for _, size := range ref.live[hi] {
			wantLive[heapSize{hi, int64(size)}]++
		}
	}
	for k, n := range wantLive {
		got := gotLive[k]
		if got.inuseObjects != n || got.inuseSpace != n*k.size {
			t.Errorf("heap %s, %d B: profile has inuse %d objects, %d bytes; reference has %d live (%d bytes)",
				heaps[k.heap].Name(), k.size, got.inuseObjects, got.inuseSpace, n, n*k.size)
		}
	}
	for k, got := range gotLive {
		if _, ok := wantLive[k]; !ok && (got.inuseObjects != 0 || got.inuseSpace != 0) {
			t.Errorf("heap %s, %d B: profile has inuse %d objects, %d bytes; reference has none live",
				heaps[k.heap].Name(), k.size, got.inuseObjects, got.inuseSpace)
		}
	}

	for k, n := range allocs {
		got := gotAllocs[k]
		if got.allocObjects != int64(n) || got.allocSpace != int64(n)*int64(k.size) {
			t.Errorf("%s, heap %s, %d B: profile has alloc %d objects, %d bytes; there were %d Alloc calls",
				k.site, heaps[k.heap].Name(), k.size, got.allocObjects, got.allocSpace, n)
		}
	}
	for k, got := range gotAllocs {
		if _, ok := allocs[k]; !ok {
			t.Errorf("%s, heap %s, %d B: profile has alloc %d objects; there were no such Alloc calls",
				k.site, heaps[k.heap].Name(), k.size, got.allocObjects)
		}
	}
}

// checkModelTable compares the live table itself with the reference: the
// same keys, each in a group of the right heap and size, and every counter
// that summarizes the table (per-group live counts, the table's count, the
// key filter) consistent with the records.
func checkModelTable(t *testing.T, tbl *liveTable, heaps [2]*Heap, ref *modelReference) {
	t.Helper()
	live := map[liveKey]liveRecord{}
	for i := range tbl.shards {
		s := &tbl.shards[i]
		s.mu.Lock()
		for k, r := range s.live {
			live[k] = r
		}
		s.mu.Unlock()
	}

	want := 0
	for hi, h := range heaps {
		for key, size := range ref.live[hi] {
			want++
			r, ok := live[liveKey{key: key, heap: h.key()}]
			if !ok {
				t.Errorf("heap %s key %d: live in the reference (%d B), missing from the table", h.Name(), key, size)
				continue
			}
			g := tbl.groups.get(r.group)
			if g.size != int64(size) || g.heap != h.key() {
				t.Errorf("heap %s key %d: record's group has heap %d, size %d; want heap %d, size %d",
					h.Name(), key, g.heap, g.size, h.key(), size)
			}
		}
	}
	perGroup := map[uint32]int64{}
	for k, r := range live {
		perGroup[r.group]++
		hi := -1
		for i, h := range heaps {
			if k.heap == h.key() {
				hi = i
			}
		}
		if hi < 0 {
			t.Errorf("table has key %d in heap id %d, which the workload never used", k.key, k.heap)
			continue
		}
		if _, ok := ref.live[hi][k.key]; !ok {
			t.Errorf("heap %s key %d: in the table, but freed in the reference", heaps[hi].Name(), k.key)
		}
		if !tbl.filter.mayContain(k.key, k.heap) {
			t.Errorf("heap %s key %d: live, but the key filter says it is not; its Free would be lost", heaps[hi].Name(), k.key)
		}
	}
	if len(live) != want {
		t.Errorf("table has %d live records, reference %d", len(live), want)
	}
	if n := tbl.count.Load(); n != int64(want) {
		t.Errorf("table count = %d, want %d", n, want)
	}

	// The snapshot the writer encodes must agree with the records.
	var snap tableSnapshot
	tbl.snapshot(&snap, time.Now())
	var sumLive int64
	for _, g := range snap.groups {
		n := int64(len(snap.liveBuckets(g.id)))
		sumLive += n
		if n != perGroup[g.id] {
			t.Errorf("group %d (heap %d, %d B): the snapshot says %d live, but %d records point to it", g.id, g.heap, g.size, n, perGroup[g.id])
		}
	}
	if sumLive != int64(want) {
		t.Errorf("the snapshot's live records sum to %d, want %d", sumLive, want)
	}

	var slots uint64
	cur := tbl.filter.cur.Load()
	for i := range cur.slots() {
		slots += uint64(cur.count(i))
	}
	if slots != 2*uint64(want) { // two slots a key
		t.Errorf("key filter counts %d keys, want %d: a drift would turn into lost Frees (low) or slow ones (high)", slots/2, want)
	}
}

// TestModelDistinctKeySpaces pins the property the model test relies on
// when it uses one key range in two heaps: the same key in two heaps, and a
// tracked object's sample id equal to a key, are different allocations.
func TestModelDistinctKeySpaces(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(1))
	h := NewHeap("model-spaces")
	const key = 1 // also the first sample id Track hands out
	Alloc(key, 10)
	h.Alloc(key, 20)
	obj := new([64]byte)
	Track(obj)
	Free(key) // frees the default heap's key only
	if n := p.Stats().LiveSamples; n != 2 {
		t.Errorf("after Alloc in two heaps, Track, and Free in one heap: %d live, want 2", n)
	}
	prof := writeParsed(t, p)
	read := valuesOf(t, prof)
	got := map[string]int64{}
	for _, s := range prof.Sample {
		got[fmt.Sprintf("%s/%d", heapLabel(s), sizeLabel(t, s))] += read(s).inuseObjects
	}
	want := map[string]int64{"default/10": 0, "model-spaces/20": 1, "default/64": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("inuse_objects of %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	runtime.KeepAlive(obj)
}
