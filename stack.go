package profiler

import (
	"hash/maphash"
	"runtime"
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
	pcs       []uintptr
	truncated bool   // deeper than the configured depth: the root end was cut
	next      *stack // next stack in the same shard with the same hash
}

// matches reports whether st is the stack pcs (nil matches nothing).
func (st *stack) matches(pcs []uintptr, truncated bool) bool {
	return st != nil && st.truncated == truncated && equalPCs(st.pcs, pcs)
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
func (t *stackTable) intern(pcs []uintptr, truncated bool, hash uint64) *stack {
	s := &t.shards[hash%stackShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	for st := s.byHash[hash]; st != nil; st = st.next {
		if st.matches(pcs, truncated) {
			return st
		}
	}
	if t.count.Add(1) > t.max {
		t.count.Add(-1)
		return nil
	}
	st := &stack{
		pcs:       append([]uintptr(nil), pcs...),
		truncated: truncated,
		next:      s.byHash[hash],
	}
	s.byHash[hash] = st
	return st
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

// symbolCache maps each program counter to its frames, innermost (inlined)
// first. Go code does not move, so entries stay valid for the life of the
// process and a steady-state profile symbolizes nothing new. It is safe for
// concurrent use.
type symbolCache struct {
	mu     sync.Mutex
	frames map[uintptr][]frame
}

// processSymbols outlives any one Profiler: a Stop followed by a new Start
// keeps what was already symbolized.
var processSymbols = &symbolCache{frames: make(map[uintptr][]frame)}

// lookup returns the frames for pc, symbolizing it on first use.
func (c *symbolCache) lookup(pc uintptr) []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.frames[pc]; ok {
		return f
	}
	f := symbolize(pc)
	c.frames[pc] = f
	return f
}

// symbolize expands pc into its frames. A pc inside inlined calls yields one
// frame per inlined function, innermost first, which the writer turns into
// one pprof Location with several Lines (as runtime/pprof does).
func symbolize(pc uintptr) []frame {
	var out []frame
	frames := runtime.CallersFrames([]uintptr{pc})
	for {
		f, more := frames.Next()
		if f.Function != "" || f.File != "" {
			out = append(out, frame{
				function: f.Function,
				file:     f.File,
				line:     int64(f.Line),
			})
		}
		if !more {
			break
		}
	}
	if len(out) == 0 {
		// Not Go code (for example a C frame with no symbolizer): keep the
		// address so pprof can still show and later symbolize it.
		out = append(out, frame{})
	}
	return out
}
