package profiler

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The sampler decides, for each allocation the hook sees, whether to record
// it. Sample points fall on allocated bytes as a Poisson process with mean
// spacing rate bytes, like runtime.MemProfileRate (runtime/malloc.go,
// nextSample). An allocation of size s is sampled when at least one point
// falls inside it, which happens with probability
//
//	p(s) = 1 - exp(-s/rate)
//
// independently of every other allocation. A sampled allocation then stands
// for 1/p(s) allocations and s/p(s) bytes, so the sum over samples of those
// weights is an unbiased estimate of the true totals (the runtime's
// scaleHeapSample does the same for Go's heap profile).
//
// Like the runtime, the sampler keeps a countdown of bytes until the next
// sample point, so the unsampled path is a compare and a subtract with no
// lock and no random draw. Gaps between points are drawn as
// floor(E)+1 bytes with E exponential of mean rate, which puts a point on
// each byte independently with probability 1-exp(-1/rate): a Poisson process
// over whole bytes, so an allocation of s bytes holds no point with
// probability exactly exp(-s/rate), whatever came before it. A sampled
// allocation restarts its countdown with a fresh gap, since the bytes after
// it are independent of what fell inside it.
//
// The runtime keeps one countdown per P. Reaching a per-P counter from
// outside the runtime costs two calls (runtime.procPin and procUnpin, as
// sync.Pool does): 2.8 ns with the decrement, against 1.1–1.5 ns for the whole
// decision here (bench/RESULTS.md). So the countdowns are kept per region
// of goroutine stack instead: the address of a local variable, divided by
// 2 KiB (the smallest stack), names the region, which picks one of
// countdownSlots countdowns, each on a cache line of its own. A region
// belongs to one goroutine's stack at a time, so a countdown that a region
// owns is read and written by one goroutine at a time, without atomics.
//
// A region claims a free countdown on the first hook call that finds it
// free, and keeps it until the next profile is written, when every
// countdown is freed (the goroutine may have exited). A region whose
// countdown is owned by another counts on its P's countdown instead, pinned
// to the P as sync.Pool does (see procpin.go): slower, but still exact and
// shared with no goroutine running at the same time. Two goroutines never
// count on one countdown without atomics, which would lose updates (a test
// that makes two goroutines share one found 2 % more or 12 % fewer samples
// than expected), but for two rare races that each can leave one
// countdown off once, by one allocation or one gap: a region that checked
// its ownership just before the countdowns are freed (or that is
// descheduled right after the check) still changes its countdown while
// another may claim it; and a goroutine whose stack grows, and so moves,
// while it decides a sample still acts for the region it left, which
// another goroutine's stack may take at once. Under the race
// detector, and on 32-bit platforms where a uint64 is two words, the
// countdowns are read and written atomically.

// maxSamplingRate bounds the rate: a mean of a GiB between samples already
// leaves almost nothing in a profile.
const maxSamplingRate = 1 << 30

const (
	countdownSlots = 1 << 12
	countdownShift = 11 // log2 of the smallest goroutine stack, 2 KiB
)

// stackRegion names the 2 KiB of goroutine stack the caller runs on. It is
// never 0, which marks a free countdown: no stack is at address 0.
func stackRegion() uintptr {
	var anchor byte
	return uintptr(unsafe.Pointer(&anchor)) >> countdownShift
}

// atomicCountdowns is true where plain reads and writes of the countdowns
// would not do: under the race detector, which would report the benign
// races described above, and where a uint64 is not one machine word.
const atomicCountdowns = raceEnabled || bits.UintSize == 32

// sampler decides which allocations to record. Its rate is immutable after
// Start; the countdowns change on every call.
type sampler struct {
	counts [countdownSlots]countdown // first, so that they start a cache line
	perP   []countdown               // for regions whose countdown another region holds
	rate   uint64                    // mean bytes between samples; 1 records every allocation

	sharedMu sync.Mutex
	shared   countdown // for a P beyond perP (GOMAXPROCS raised since Start)
}

// countdown is the bytes left until the next sample point, at least 1, and
// the stack region that owns it (0 if none), padded to a cache line of its
// own. The zero-length atomic field makes it 8-byte aligned on 32-bit
// platforms too, where it is used atomically.
//
// group is the group of the last sample taken on the countdown. Samples of
// a hot allocation site come one after another on the goroutines that run
// it, so the next sample is often of the same group, which record then
// checks first.
type countdown struct {
	_     [0]atomic.Uint64
	left  uint64
	owner uintptr
	group atomic.Uint32
	_     [64 - 8 - unsafe.Sizeof(uintptr(0)) - 4]byte
}

// init sets the rate and draws a first gap for every countdown. It runs
// before the sampler is published to the hook.
func (s *sampler) init(rate int) {
	s.rate = uint64(rate)
	s.perP = make([]countdown, max(runtime.GOMAXPROCS(0), runtime.NumCPU()))
	s.shared.left = s.gap()
	for _, cs := range [][]countdown{s.counts[:], s.perP} {
		for i := range cs {
			cs[i].left = s.gap()
		}
	}
}

// gap draws the distance in bytes to the next sample point, at least 1.
// At rate 1 it is always 1, so that every allocation is sampled.
func (s *sampler) gap() uint64 {
	if s.rate == 1 {
		return 1
	}
	return uint64(rand.ExpFloat64()*float64(s.rate)) + 1
}

// slot returns the countdown of stack region r.
func (s *sampler) slot(r uintptr) *countdown {
	return &s.counts[r%countdownSlots]
}

// counted is the fast path of a decision for stack region r: it reports
// true if r owns its countdown and no sample point falls in an allocation
// of size bytes, which it counts. Otherwise sample decides.
func (s *sampler) counted(r uintptr, size int) bool {
	c := s.slot(r)
	return c.owns(r) && c.pass(size)
}

// owns reports whether region r owns c.
func (c *countdown) owns(r uintptr) bool {
	if atomicCountdowns {
		return atomic.LoadUintptr(&c.owner) == r
	}
	return c.owner == r
}

// pass is the decision on the fast path, for the owner of c: it counts an
// allocation of size bytes and reports true if no sample point falls
// inside it. It reports false, leaving the countdown alone, when one does
// or when size is not positive (a negative size converts to a huge one);
// sample finishes both.
func (c *countdown) pass(size int) bool {
	n := uint64(size)
	if atomicCountdowns {
		left := atomic.LoadUint64(&c.left)
		if n >= left {
			return false
		}
		atomic.StoreUint64(&c.left, left-n) // the owner is the only writer
		return true
	}
	left := c.left
	if n >= left {
		return false
	}
	c.left = left - n
	return true
}

// sample finishes a decision that counted did not take, for region r and
// its countdown c. It returns the countdown the allocation counted on and
// whether it is sampled: an allocation of a positive size that holds a
// sample point is, and its countdown restarts with a fresh gap.
func (s *sampler) sample(c *countdown, r uintptr, size int) (*countdown, bool) {
	if size <= 0 {
		return c, false
	}
	if !c.owns(r) {
		// Load before swapping: a failed swap still takes the cache line
		// from the owner's core.
		if atomic.LoadUintptr(&c.owner) != 0 || !atomic.CompareAndSwapUintptr(&c.owner, 0, r) {
			return s.samplePerP(size)
		}
		if c.pass(size) {
			return c, false
		}
	}
	c.restart(s.gap())
	return c, true
}

// restart gives c a fresh gap, after a sample.
func (c *countdown) restart(gap uint64) {
	if atomicCountdowns {
		atomic.StoreUint64(&c.left, gap)
	} else {
		c.left = gap
	}
}

// samplePerP decides on the countdown of the caller's P, which the caller
// has to itself while it is pinned there (pinning also keeps it from
// being descheduled).
func (s *sampler) samplePerP(size int) (*countdown, bool) {
	pid := procPin()
	if pid >= len(s.perP) {
		procUnpin()
		return &s.shared, s.sampleShared(uint64(size))
	}
	c := &s.perP[pid]
	sampled := !c.pass(size)
	if sampled {
		c.restart(s.gap())
	}
	procUnpin()
	return c, sampled
}

// sampleShared decides on the shared countdown, under a lock: the path is
// rare, and a lock-free one was not exact. With compare-and-swap, the time
// rand.ExpFloat64 takes, which depends on the gap it draws, decided which
// goroutine reached the swap first, and over 150 runs two goroutines
// sampled 0.3 % too rarely (mean z = -2.5).
func (s *sampler) sampleShared(n uint64) bool {
	s.sharedMu.Lock()
	defer s.sharedMu.Unlock()
	c := &s.shared
	if n < c.left {
		c.left -= n
		return false
	}
	c.left = s.gap()
	return true
}

// release frees every countdown, for the regions that sample next to claim.
// Their counts stay: what is left of a gap is a fresh gap, whoever counts
// it down.
func (s *sampler) release() {
	for i := range s.counts {
		atomic.StoreUintptr(&s.counts[i].owner, 0)
	}
}

// saturate rounds x to an int64, holding it at MaxInt64 rather than
// wrapping: an absurd size must not turn into a negative total.
func saturate(x float64) int64 {
	if x >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Round(x))
}

// probability is p(s) = 1 - exp(-s/rate), the chance that an allocation of
// size bytes is sampled. Expm1 keeps precision when s is much smaller than
// the rate, where 1-exp(-x) would cancel.
func (s *sampler) probability(size int64) float64 {
	if s.rate <= 1 {
		return 1
	}
	return -math.Expm1(-float64(size) / float64(s.rate))
}

// scale returns the unbiased estimates of objects and bytes that count
// sampled allocations of size bytes each stand for: count/p and count·size/p.
func (s *sampler) scale(count, size int64) (objects, bytes int64) {
	if count == 0 {
		return 0, 0
	}
	p := s.probability(size)
	if p <= 0 {
		return 0, 0
	}
	return saturate(float64(count) / p), saturate(float64(count) * float64(size) / p)
}
