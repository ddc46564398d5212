package profiler

import (
	"cmp"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Stacks are captured as raw program counters on the sampled path and
// symbolized only when a profile is written, off the hot path: a sampled
// allocation pays for runtime.Callers and a hash lookup, never for the
// function, file and line tables.

const (
	defaultStackDepth = 128 // what runtime/pprof keeps for its heap profile
	maxStackDepth     = 256 // bounds the capture buffer kept on the stack
)

// stack is an interned call stack, leaf first. It never changes once
// interned, so whoever holds a pointer to it reads it without a lock.
type stack struct {
	pcs   []uintptr
	hash  uint64 // the table's hash of pcs
	order uint64 // sort key for output: a hash of pcs, the same in every run
	next  *stack // next stack in the same shard with the same hash
}

// matches reports whether st is the stack pcs (nil matches nothing).
func (st *stack) matches(pcs []uintptr) bool {
	return st != nil && equalPCs(st.pcs, pcs)
}

const stackShards = 16

// stackTable interns PC slices so that each distinct stack is stored once,
// however many groups and live samples refer to it. It is safe for
// concurrent use.
type stackTable struct {
	seed   maphash.Seed
	max    int64        // bound on distinct stacks
	count  atomic.Int64 // distinct stacks interned
	shards [stackShards]stackShard
}

type stackShard struct {
	mu     sync.Mutex
	byHash map[uint64]*stack
	_      [64]byte // keep neighbouring shards' locks off one cache line
}

func newStackTable(max int) *stackTable {
	t := &stackTable{seed: maphash.MakeSeed(), max: int64(max)}
	for i := range t.shards {
		t.shards[i].byHash = make(map[uint64]*stack)
	}
	return t
}

// hash hashes a PC slice without copying it.
func (t *stackTable) hash(pcs []uintptr) uint64 {
	if len(pcs) == 0 {
		return maphash.Bytes(t.seed, nil)
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&pcs[0])), len(pcs)*int(unsafe.Sizeof(pcs[0])))
	return maphash.Bytes(t.seed, b)
}

// intern returns the stack equal to pcs, adding a copy if it is new. It
// returns nil when the stack is new and the table already holds max stacks.
func (t *stackTable) intern(pcs []uintptr, hash uint64) *stack {
	s := &t.shards[hash%stackShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	for st := s.byHash[hash]; st != nil; st = st.next {
		if st.matches(pcs) {
			return st
		}
	}
	if t.count.Add(1) > t.max {
		t.count.Add(-1)
		return nil
	}
	st := &stack{
		pcs:   append([]uintptr(nil), pcs...),
		hash:  hash,
		order: orderKey(pcs),
		next:  s.byHash[hash],
	}
	s.byHash[hash] = st
	return st
}

// orderKey hashes pcs with FNV-1a, unseeded (unlike the interning hash),
// so that output order does not change from run to run.
func orderKey(pcs []uintptr) uint64 {
	h := uint64(14695981039346656037)
	for _, pc := range pcs {
		h ^= uint64(pc)
		h *= 1099511628211
	}
	return h
}

func equalPCs(a, b []uintptr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// frame is one symbolized call frame.
type frame struct {
	function string
	file     string
	line     int64
}

// symbol is a program counter resolved: the address pprof shows for it and
// its frame. runtime.Callers records one PC per logical frame, inlined
// calls included, and each resolves to exactly one function; the writer
// joins the PCs of one physical frame (an inlined chain) into one Location.
type symbol struct {
	addr    uint64
	frames  []frame // one for Go code; none, or a C symbolizer's, otherwise
	entry   uintptr // entry of the physical function holding the PC
	inlined bool    // inlined into the function of the next PC
	goexit  bool    // the root frame every goroutine has; runtime/pprof omits it
}

// symbolCache maps each program counter to its symbol. Go code does not
// move, so entries stay valid for the life of the process and a
// steady-state profile symbolizes nothing new. It is safe for concurrent
// use.
type symbolCache struct {
	mu      sync.Mutex
	symbols map[uintptr]symbol
}

// processSymbols outlives any one Profiler: a Stop followed by a new Start
// keeps what was already symbolized.
var processSymbols = &symbolCache{symbols: make(map[uintptr]symbol)}

// lookup returns the symbol for pc, symbolizing it on first use.
func (c *symbolCache) lookup(pc uintptr) symbol {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.symbols[pc]; ok {
		return s
	}
	s := symbolize(pc)
	c.symbols[pc] = s
	return s
}

// symbolize resolves pc, a return address as runtime.Callers records it.
// The address is that of the call instruction (runtime.Frame.PC), the
// convention of runtime/pprof, so our Locations and the Go heap's coincide.
func symbolize(pc uintptr) symbol {
	s := symbol{addr: uint64(pc - 1)}
	frames := runtime.CallersFrames([]uintptr{pc})
	for first := true; ; first = false {
		f, more := frames.Next()
		if first {
			if f.PC != 0 {
				s.addr = uint64(f.PC)
			}
			s.entry = f.Entry
			s.inlined = f.Func == nil && f.Entry != 0
			s.goexit = f.Function == "runtime.goexit"
		}
		if f.Function != "" || f.File != "" {
			s.frames = append(s.frames, frame{
				function: f.Function,
				file:     f.File,
				line:     int64(f.Line),
			})
		}
		if !more {
			break
		}
	}
	// With no frames (not Go code, say a C frame) the Location keeps just
	// its address, which pprof can still show and symbolize later.
	return s
}

// compareStacks orders stacks by their order key, a hash of the PCs that
// is the same in every run of a binary, and by the PCs on a tie, which is
// cheaper than comparing every pair of stacks in full.
func compareStacks(a, b *stack) int {
	switch {
	case a == b:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if c := cmp.Compare(a.order, b.order); c != 0 {
		return c
	}
	return slices.Compare(a.pcs, b.pcs)
}
