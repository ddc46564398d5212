package profiler

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Heap is a named key space for the allocation hook. Memory that the Go
// runtime does not see (C malloc, mmap, slabs of a pool) is reported with
// Alloc and Free under a key the caller chooses; each Heap keeps its own
// keys, and its samples carry the string label heap=<name> in profiles, so
// `go tool pprof -tagfocus=heap=<name>` shows one kind of memory alone.
//
// A Heap may be created at any time, before or after Start, and its methods
// are safe for concurrent use. They are cheap no-ops while no profiler runs.
// The package-level Alloc, Free and Track use the heap named "default".
// Make Heaps with NewHeap, a few per program and for its whole life: each
// one's name is kept for the life of the process. A zero Heap or a nil
// *Heap is misuse.
type Heap struct {
	name string
	id   uint32
	seed uint64 // heapSeed(id), the heap's part of its keys' hashes
}

var (
	heapsMu   sync.Mutex
	heapNames = []string{0: "", 1: defaultHeapName} // index is Heap.id

	defaultHeap = &Heap{name: defaultHeapName, id: defaultHeapID, seed: heapSeed(defaultHeapID)}
)

const (
	defaultHeapName = "default"
	defaultHeapID   = 1
)

// NewHeap returns a new Heap whose samples are labelled heap=name. Each call
// returns a distinct key space, even for a name used before. NewHeap panics
// if name is empty or "go", which labels the Go runtime's own heap.
func NewHeap(name string) *Heap {
	if name == "" {
		panic("profiler: NewHeap with an empty name")
	}
	if name == goHeapName {
		panic(`profiler: NewHeap("go"): the name "go" labels the Go runtime's own heap`)
	}
	heapsMu.Lock()
	defer heapsMu.Unlock()
	if uint64(len(heapNames)) >= uint64(trackedBit) {
		panic("profiler: too many heaps")
	}
	id := uint32(len(heapNames))
	h := &Heap{name: name, id: id, seed: heapSeed(id)}
	heapNames = append(heapNames, name)
	return h
}

// Name returns the heap's name, the value of its samples' heap label.
func (h *Heap) Name() string { return h.name }

// heapName returns the name of the heap with the given id.
func heapName(id uint32) string {
	heapsMu.Lock()
	defer heapsMu.Unlock()
	return heapNames[id&^trackedBit]
}

// goHeapName labels samples of the Go runtime's own heap.
const goHeapName = "go"

// Frames from runtime.Callers up to the hook's caller on the sampled path,
// for each kind of entry point. Logical frames count, whether or not they
// were inlined.
const (
	skipAlloc = 3 // Callers, Profiler.alloc(Context), (Heap.)Alloc(Context)
	skipTrack = 4 // Callers, Profiler.trackSampled, Heap.track, (Heap.)Track(Size)(Context)
)

// Alloc reports that size bytes were allocated under key in this heap. If
// the allocation is sampled, it counts as live until Free(key) or until
// another Alloc reuses key. An Alloc of zero or fewer bytes records
// nothing, but still ends a live record under key.
func (h *Heap) Alloc(key uintptr, size int) {
	if p := active.Load(); p != nil {
		p.alloc(key, h, size)
	}
}

// AllocContext is Alloc that also records, on a sampled allocation, the
// pprof labels in ctx (set with pprof.WithLabels or pprof.Do), written as
// string labels of its profile samples so that, for example,
// `go tool pprof -tagfocus=tenant=acme` shows one tenant's memory. Labels
// are read only when the allocation is sampled. At most 4096 distinct label
// sets are kept per profiler; samples beyond that are kept without labels
// and counted in Stats.LabelSetsDropped.
func (h *Heap) AllocContext(ctx context.Context, key uintptr, size int) {
	if p := active.Load(); p != nil {
		p.allocContext(ctx, key, h, size)
	}
}

// Free reports that the allocation under key in this heap was released.
// Free of a key that is not live (almost always: most allocations are not
// sampled) costs a hash and a look at a small bitmap, with no lock.
func (h *Heap) Free(key uintptr) { freeFiltered(key, h, freeListed) }

// Track reports a Go object allocated by the caller, obj being a non-nil
// pointer to it; its size is that of the pointed-to type. A sampled object
// stays live in profiles until the garbage collector frees it. Track panics
// if obj is not a non-nil pointer. See the package-level Track for details.
func (h *Heap) Track(obj any) {
	ptr, size := pointerOf(obj)
	h.track(nil, ptr, size)
}

// TrackContext is Track that also records the pprof labels in ctx; see
// AllocContext.
func (h *Heap) TrackContext(ctx context.Context, obj any) {
	ptr, size := pointerOf(obj)
	h.track(ctx, ptr, size)
}

// TrackSizeContext is TrackSize that also records the pprof labels in ctx.
func (h *Heap) TrackSizeContext(ctx context.Context, obj any, size int) {
	ptr, _ := pointerOf(obj)
	h.track(ctx, ptr, size)
}

// TrackSize is Track for an object whose footprint is not the size of its
// type, for example a struct that owns a large buffer.
func (h *Heap) TrackSize(obj any, size int) {
	ptr, _ := pointerOf(obj)
	h.track(nil, ptr, size)
}

func pointerOf(obj any) (unsafe.Pointer, int) {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic("profiler: Track needs a non-nil pointer")
	}
	return v.UnsafePointer(), int(v.Type().Elem().Size())
}

// Alloc reports an allocation in the default heap; see Heap.Alloc.
func Alloc(key uintptr, size int) {
	if p := active.Load(); p != nil {
		p.alloc(key, defaultHeap, size)
	}
}

// AllocContext reports an allocation in the default heap with the pprof
// labels in ctx; see Heap.AllocContext.
func AllocContext(ctx context.Context, key uintptr, size int) {
	if p := active.Load(); p != nil {
		p.allocContext(ctx, key, defaultHeap, size)
	}
}

// Free reports a release in the default heap; see Heap.Free.
func Free(key uintptr) { freeFiltered(key, defaultHeap, freeListed) }

// Track reports the Go object *obj, allocated by the caller, to the default
// heap. Only a sampled object gets a runtime.AddCleanup, which removes it
// from the live set once the garbage collector has found it unreachable, so
// a freed object leaves the profiles only after a GC (and its cleanup) ran.
// Tiny pointer-free objects (16 bytes or less) share memory blocks with
// others and may never be cleaned up; do not Track them. Objects made by
// package-level initializers may not be heap-allocated and are never
// cleaned up either. Track panics if obj is nil, and, when the object is
// sampled, if it is not in the Go heap: memory from mmap, C or an arena is
// reported with Alloc and Free instead.
func Track[T any](obj *T) {
	defaultHeap.track(nil, unsafe.Pointer(obj), int(unsafe.Sizeof(*obj)))
}

// TrackSize is Track with an explicit footprint in bytes, for objects whose
// memory is not just unsafe.Sizeof(*obj).
func TrackSize[T any](obj *T, size int) {
	defaultHeap.track(nil, unsafe.Pointer(obj), size)
}

// TrackContext is Track that also records the pprof labels in ctx; see
// Heap.AllocContext.
func TrackContext[T any](ctx context.Context, obj *T) {
	defaultHeap.track(ctx, unsafe.Pointer(obj), int(unsafe.Sizeof(*obj)))
}

// TrackSizeContext is TrackSize that also records the pprof labels in ctx.
func TrackSizeContext[T any](ctx context.Context, obj *T, size int) {
	defaultHeap.track(ctx, unsafe.Pointer(obj), size)
}

// track is every Track variant; ctx is nil for those without labels.
func (h *Heap) track(ctx context.Context, ptr unsafe.Pointer, size int) {
	if ptr == nil {
		panic("profiler: Track of a nil pointer")
	}
	if p := active.Load(); p != nil {
		if r := stackRegion(); !p.sampler.counted(r, size) {
			if c, ok := p.sampler.sample(p.sampler.slot(r), r, size); ok {
				p.trackSampled(c, ctx, ptr, h, size)
			}
		}
	}
}

// alloc is the hook's Alloc with a profiler running. It counts the
// allocation on the caller's countdown and records it when a sample point
// falls inside it. An unsampled allocation under a live key ends the key's
// old record: its object was freed without a Free.
//
// The sampled branch captures the stack here rather than in a function of
// its own, which would be one more frame for runtime.Callers to unwind on
// every sample; the buffer comes from a pool, so this frame stays small.
func (p *Profiler) alloc(key uintptr, h *Heap, size int) {
	if r := stackRegion(); !p.sampler.counted(r, size) {
		if c, ok := p.sampler.sample(p.sampler.slot(r), r, size); ok {
			buf := stackBufs.Get().(*[maxStackDepth]uintptr)
			p.record(c, liveKey{key: key, heap: h.id}, size, 0, buf[:runtime.Callers(skipAlloc, buf[:p.depth])])
			stackBufs.Put(buf)
			return
		}
	}
	freeFiltered(key, h, freeListed)
}

// allocContext is alloc for AllocContext, apart so that Alloc does not
// carry a context it never uses.
func (p *Profiler) allocContext(ctx context.Context, key uintptr, h *Heap, size int) {
	if r := stackRegion(); !p.sampler.counted(r, size) {
		if c, ok := p.sampler.sample(p.sampler.slot(r), r, size); ok {
			buf := stackBufs.Get().(*[maxStackDepth]uintptr)
			p.record(c, liveKey{key: key, heap: h.id}, size, p.labelsOf(ctx), buf[:runtime.Callers(skipAlloc, buf[:p.depth])])
			stackBufs.Put(buf)
			return
		}
	}
	freeFiltered(key, h, freeListed)
}

// freeFiltered looks key up in the live-key filter, and hands it to listed
// if the filter cannot rule it out: the whole of Free for a key that was
// never sampled. It is filterSlots.mayContain and hashKey written out, and
// it calls listed, always freeListed, through a parameter, because the
// inliner charges such a call far less than a call to a function it cannot
// inline (inlineParamCallCost against inlineExtraCallCost in
// cmd/compile/internal/inline): that is what lets Free inline into its
// callers. The call happens only when the filter lets the key through.
func freeFiltered(key uintptr, h *Heap, listed func(uintptr, *Heap)) {
	f := (*filterSlots)(atomic.LoadPointer(&liveFilter))
	x := (uint64(key) + h.seed) * keyMul >> (f.low % 64)
	if w := atomic.LoadUint64(&f.words[x>>12]); w>>(x>>6%64)&(w>>(x%64))&1 != 0 {
		listed(key, h)
	}
}

// stackBufs holds the buffers stacks are captured into, each put back
// once its stack is interned. Declared in the hook's frames instead, a
// buffer would be zeroed on every sample, and it would make those frames
// large, so that a hook call on a nearly full goroutine stack would grow
// it.
var stackBufs = sync.Pool{New: func() any { return new([maxStackDepth]uintptr) }}

// trackSampled records a sampled Go object under a fresh sample id and
// attaches the cleanup that removes exactly that record. Keying by id, not
// address, matters: a cleanup runs some time after the object died, by
// when its address may hold a new, also tracked, object.
func (p *Profiler) trackSampled(c *countdown, ctx context.Context, ptr unsafe.Pointer, h *Heap, size int) {
	buf := stackBufs.Get().(*[maxStackDepth]uintptr)
	k := liveKey{key: uintptr(p.table.nextTracked.Add(1)), heap: h.id | trackedBit}
	kept := p.record(c, k, size, p.labelsOf(ctx), buf[:runtime.Callers(skipTrack, buf[:p.depth])])
	stackBufs.Put(buf)
	if kept {
		if r := addCleanup(ptr, trackedRef{table: p.table, key: k}); r != nil {
			p.table.remove(k)
			panic(fmt.Sprintf("profiler: Track of memory the Go heap does not own (use Alloc and Free for it): %v", r))
		}
	}
}

// freeListed finishes a Free whose key the filter could not rule out.
//
//go:noinline
func freeListed(key uintptr, h *Heap) {
	if p := active.Load(); p != nil {
		p.table.remove(liveKey{key: key, heap: h.id})
	}
}

// labelsOf interns the pprof labels of ctx; nil means none.
func (p *Profiler) labelsOf(ctx context.Context) uint32 {
	if ctx == nil {
		return 0
	}
	return p.table.labels.intern(ctx)
}

// addCleanup attaches untrack to the object at ptr. It returns what
// runtime.AddCleanup panicked with, which it does for memory outside the Go
// heap (mmap, C, arenas), so that Track can name the misuse.
func addCleanup(ptr unsafe.Pointer, ref trackedRef) (panicked any) {
	defer func() { panicked = recover() }()
	runtime.AddCleanup((*byte)(ptr), untrack, ref)
	return nil
}

// trackedRef is a cleanup's argument. It must not point to the object.
type trackedRef struct {
	table *liveTable
	key   liveKey
}

func untrack(r trackedRef) { r.table.remove(r.key) }

// record stores a sampled allocation with its stack, exactly the depth
// deep (whether it was cut is judged when it is written), and its label
// set. c is the countdown it was sampled on, whose last group is tried
// before the group table (and its hash of the PCs and its lock). It
// reports whether the sample was kept.
func (p *Profiler) record(c *countdown, k liveKey, size int, labels uint32, pcs []uintptr) bool {
	t := p.table
	t.samples.Add(1)
	heap := k.heap &^ trackedBit
	gid := c.group.Load()
	if gid == 0 || !t.groups.get(gid).is(heap, labels, int64(size), pcs) {
		gid = t.groups.find(t.stacks, heap, labels, pcs, t.stacks.hash(pcs), int64(size))
		if gid == 0 {
			t.droppedGroup.Add(1)
			return false
		}
		c.group.Store(gid)
	}
	return t.insert(k, gid, p.age())
}
