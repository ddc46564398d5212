package profiler

import (
	"context"
	"runtime"
	"sync"
	"unsafe"
	"weak"

	"github.com/leakhunt/profiler/internal/leakrank"
)

// The hook: the entry points a program calls where memory is allocated and
// freed. Each is an inlinable check that returns at once while no profiler
// runs, then an outlined path named for what it does, as sync.Once is
// written; in Free's, the key filter's check inlines and rules out almost
// every key before the table is touched.

// Heap is a named key space for the allocation hook. Memory that the Go
// runtime does not see (C malloc, mmap, slabs of a pool) is reported with
// Alloc and Free under a key the caller chooses; each Heap keeps its own
// keys, and its samples carry the string label heap=<name> in profiles, so
// `go tool pprof -tagfocus=heap=<name>` shows one kind of memory alone.
//
// A Heap may be created at any time, before or after Start, and its methods
// are safe for concurrent use. They are cheap no-ops while no profiler runs.
// Make Heaps with NewHeap, a few per program and for its whole life: each
// one's name is kept for the life of the process. A nil *Heap, and a zero
// Heap, stand for the heap named "default", which the package-level Alloc,
// Free and Track use.
type Heap struct {
	id uint32 // index in heapNames; 0 is the default heap
}

var (
	heapsMu   sync.Mutex
	heapNames = []string{defaultHeapName} // by Heap.id
)

const defaultHeapName = "default"

// NewHeap returns a new Heap whose samples are labelled heap=name. Each call
// returns a distinct key space, even for a name used before. NewHeap panics
// if name is empty or "go", which labels the Go runtime's own heap.
func NewHeap(name string) *Heap {
	if name == "" {
		panic("profiler: NewHeap with an empty name")
	}
	if name == leakrank.GoHeap {
		panic(`profiler: NewHeap("go"): the name "go" labels the Go runtime's own heap`)
	}
	heapsMu.Lock()
	defer heapsMu.Unlock()
	if uint64(len(heapNames)) >= uint64(trackedBit) {
		panic("profiler: too many heaps")
	}
	heapNames = append(heapNames, name)
	return &Heap{id: uint32(len(heapNames) - 1)}
}

// Name returns the heap's name, the value of its samples' heap label.
func (h *Heap) Name() string {
	heapsMu.Lock()
	defer heapsMu.Unlock()
	return heapNames[h.key()]
}

// key returns the heap's id, 0 (the default heap) for a nil Heap.
func (h *Heap) key() uint32 {
	if h == nil {
		return 0
	}
	return h.id
}

// appendHeapNames appends the name of every heap, by id.
func appendHeapNames(dst []string) []string {
	heapsMu.Lock()
	defer heapsMu.Unlock()
	return append(dst, heapNames...)
}

// Alloc reports that size bytes were allocated under key in this heap. If
// the allocation is sampled, it counts as live until Free(key) or until
// another Alloc reuses key: an Alloc under a live key ends its record, as
// the object under it must have been freed without a Free. An Alloc of
// zero or fewer bytes records nothing, but still ends a record under key.
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
func (h *Heap) Free(key uintptr) {
	if p := active.Load(); p != nil {
		p.free(key, h)
	}
}

// Alloc reports an allocation in the default heap; see Heap.Alloc.
func Alloc(key uintptr, size int) {
	if p := active.Load(); p != nil {
		p.alloc(key, nil, size)
	}
}

// Free reports a release in the default heap; see Heap.Free.
func Free(key uintptr) {
	if p := active.Load(); p != nil {
		p.free(key, nil)
	}
}

// Track reports the Go object *obj, just allocated by the caller, to the
// default heap, with the size of its type. Only a sampled object gets a
// runtime.AddCleanup, which removes it from the live set once the garbage
// collector has found it unreachable, so a freed object leaves the profiles
// only after a GC (and its cleanup) ran. Tiny pointer-free objects (16
// bytes or less) share memory blocks with others and may never be cleaned
// up; do not Track them. Track panics if obj is nil.
//
// Memory outside the Go heap (from mmap, C or an arena) is never recorded,
// on any call, and never panics; a sampled call on it is counted in
// Stats.TrackRejected. Report that memory with Alloc and Free instead. A
// package-level variable is recorded and stays live, as it does.
func Track[T any](obj *T) {
	trackObject(context.Background(), unsafe.Pointer(obj), 0, int(unsafe.Sizeof(*obj)))
}

// TrackIn is Track into heap h (nil for the default heap), with the pprof
// labels in ctx recorded on a sampled object (see Heap.AllocContext; pass
// context.Background() for none) and a footprint of size bytes, for
// objects that hold more than their type's size, such as a struct owning a
// large buffer. Pass int(unsafe.Sizeof(*obj)) for an object that holds
// just itself.
func TrackIn[T any](ctx context.Context, h *Heap, obj *T, size int) {
	trackObject(ctx, unsafe.Pointer(obj), h.key(), size)
}

// trackObject is both Track functions, one frame below each, so that their
// callers are equally deep.
func trackObject(ctx context.Context, ptr unsafe.Pointer, heap uint32, size int) {
	if ptr == nil {
		panic("profiler: Track of a nil pointer")
	}
	if p := active.Load(); p != nil {
		p.track(ctx, ptr, heap, size)
	}
}

// Frames from runtime.Callers up to the hook's caller on the sampled path,
// for each kind of entry point. Logical frames count, whether or not they
// were inlined.
const (
	skipAlloc = 3 // Callers, Profiler.alloc, (Heap.)Alloc(Context)
	skipTrack = 4 // Callers, Profiler.track, trackObject, Track(In)
)

// alloc is the hook's Alloc with a profiler running: it records the
// allocation if it is sampled, else it ends any live record under key.
//
// The stack is captured here rather than in a function of its own, which
// would be one more frame for runtime.Callers to unwind on every sample;
// the buffer comes from a pool, so this frame stays small.
func (p *Profiler) alloc(key uintptr, h *Heap, size int) {
	if !p.sampler.sampled(size) {
		if heap := h.key(); p.table.filter.mayContain(key, heap) {
			p.table.remove(liveKey{key: key, heap: heap})
		}
		return
	}
	buf := stackBufs.Get().(*[maxStackDepth]uintptr)
	p.table.record(liveKey{key: key, heap: h.key()}, size, 0, buf[:runtime.Callers(skipAlloc, buf[:p.depth])])
	stackBufs.Put(buf)
}

// allocContext is alloc with the pprof labels of ctx, apart so that Alloc
// does not carry a context it never uses.
func (p *Profiler) allocContext(ctx context.Context, key uintptr, h *Heap, size int) {
	if !p.sampler.sampled(size) {
		if heap := h.key(); p.table.filter.mayContain(key, heap) {
			p.table.remove(liveKey{key: key, heap: heap})
		}
		return
	}
	buf := stackBufs.Get().(*[maxStackDepth]uintptr)
	p.table.record(liveKey{key: key, heap: h.key()}, size, p.labelsOf(ctx), buf[:runtime.Callers(skipAlloc, buf[:p.depth])])
	stackBufs.Put(buf)
}

// free is the hook's Free with a profiler running. The key filter rules
// out almost every key with no lock and no write; the table resolves the
// rest.
func (p *Profiler) free(key uintptr, h *Heap) {
	if heap := h.key(); p.table.filter.mayContain(key, heap) {
		p.table.remove(liveKey{key: key, heap: heap})
	}
}

// track records a sampled Go object under a fresh sample id and attaches
// the cleanup that removes exactly that record. Keying by id, not address,
// matters: a cleanup runs some time after the object died, by when its
// address may hold a new, also tracked, object.
func (p *Profiler) track(ctx context.Context, ptr unsafe.Pointer, heap uint32, size int) {
	if !p.sampler.sampled(size) {
		return
	}
	// The cleanup comes first: runtime.AddCleanup refuses memory outside
	// the Go heap, which is then left out before it counts anywhere.
	k := liveKey{key: uintptr(p.table.nextTracked.Add(1)), heap: heap | trackedBit}
	if !addCleanup(ptr, trackedRef{table: weak.Make(p.table), key: k}) {
		p.table.trackRejected.Add(1)
		return
	}
	buf := stackBufs.Get().(*[maxStackDepth]uintptr)
	p.table.record(k, size, p.labelsOf(ctx), buf[:runtime.Callers(skipTrack, buf[:p.depth])])
	stackBufs.Put(buf)
	p.table.setObject(k, weak.Make((*byte)(ptr)))
	// Until the record is in, the object must not die: its cleanup could
	// run first and find nothing to remove, and the record stay for ever.
	runtime.KeepAlive(ptr)
}

// stackBufs holds the buffers stacks are captured into, each put back
// once its stack is interned. Declared in the hook's frames instead, a
// buffer would be zeroed on every sample, and it would make those frames
// large, so that a hook call on a nearly full goroutine stack would grow
// it.
var stackBufs = sync.Pool{New: func() any { return new([maxStackDepth]uintptr) }}

// labelsOf interns the pprof labels of ctx; 0 means none.
func (p *Profiler) labelsOf(ctx context.Context) uint32 {
	if ctx == nil {
		return 0
	}
	return p.table.labels.intern(ctx)
}

// addCleanup attaches untrack to the object at ptr, and reports whether it
// could: runtime.AddCleanup panics for memory the Go heap does not own
// (mmap, C, arenas, the binary's data), which Track documents as never
// recorded. That panic is the runtime's only answer to "is this a heap
// object", so it is recovered here, for this one call, and nothing else.
func addCleanup(ptr unsafe.Pointer, ref trackedRef) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	runtime.AddCleanup((*byte)(ptr), untrack, ref)
	return true
}

// trackedRef is a cleanup's argument. It must not point to the object, and
// holds the table weakly: a tracked object can outlive its profiler, which
// must not keep the profiler's tables alive.
type trackedRef struct {
	table weak.Pointer[liveTable]
	key   liveKey
}

func untrack(r trackedRef) {
	if t := r.table.Value(); t != nil {
		t.remove(r.key)
	}
}
