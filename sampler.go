package profiler

import (
	"math"
	"math/bits"
	"math/rand/v2"
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
// sync.Pool does): 2.8 ns with the decrement, against 1.6 ns for the whole
// decision here (bench/RESULTS.md). So the countdowns are spread over
// goroutine stacks instead: the address of a local variable picks one of
// countdownSlots counters, each on its own cache line. A goroutine's stack is its own while it runs, so goroutines running
// at once use different counters, except when two stacks happen to map to
// the same slot (stacks are at least 2 KiB apart, and the slots repeat
// every 8 MiB of address space). Such a collision costs cache traffic; it
// can cost accuracy only if the two goroutines' read-modify-writes of the
// counter also overlap, within a few instructions of each other. Each of
// the two allocations is then still decided against a true countdown, so
// with p(s); but the write that survives can leave the next decision on that
// counter off by at most the size of the other allocation, for one gap.
// That needs two goroutines sharing a slot to race at the same instant, a
// vanishing share of the allocations, and its effect is bounded by their
// sizes: far below the sampling error. Reads and writes of the counters are
// single machine words; under the race detector, and on 32-bit platforms
// where a uint64 is two words, they are atomic instead.

// maxSamplingRate bounds the rate: a mean of a GiB between samples already
// leaves almost nothing in a profile.
const maxSamplingRate = 1 << 30

const (
	countdownSlots = 1 << 12
	countdownShift = 11 // log2 of the smallest goroutine stack, 2 KiB
)

// atomicCountdowns is true where plain reads and writes of the countdowns
// would not do: under the race detector, which would report the benign
// races described above, and where a uint64 is not one machine word.
const atomicCountdowns = raceEnabled || bits.UintSize == 32

// sampler decides which allocations to record. Its rate is immutable after
// Start; the countdowns change on every call.
type sampler struct {
	rate   uint64 // mean bytes between samples; 1 records every allocation
	counts [countdownSlots]countdown
}

// countdown is the bytes left until the next sample point, at least 1,
// padded to a cache line of its own. The zero-length atomic field makes
// it 8-byte aligned on 32-bit platforms too, where it is used atomically.
//
// group is the group of the last sample taken on the countdown. Samples of
// a hot allocation site come one after another on the goroutines that run
// it, so the next sample is often of the same group, which record then
// checks first; a countdown that two goroutines share only makes the check
// fail more often.
type countdown struct {
	_     [0]atomic.Uint64
	left  uint64
	group atomic.Uint32
	_     [52]byte
}

// init sets the rate and draws a first gap for every countdown. It runs
// before the sampler is published to the hook.
func (s *sampler) init(rate int) {
	s.rate = uint64(rate)
	for i := range s.counts {
		s.counts[i].left = s.gap()
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

// here returns the countdown of the calling goroutine's stack region.
func (s *sampler) here() *countdown {
	var anchor byte
	return &s.counts[uintptr(unsafe.Pointer(&anchor))>>countdownShift%countdownSlots]
}

// pass is the decision on the fast path: it counts an allocation of size
// bytes and reports true if no sample point falls inside it. It reports
// false, leaving the countdown alone, when one does or when size is not
// positive (a negative size converts to a huge one); settle finishes both.
func (c *countdown) pass(size int) bool {
	n := uint64(size)
	if atomicCountdowns {
		return c.passAtomic(n)
	}
	// One read: the value compared must be the value subtracted from, or
	// a write from a goroutine sharing the slot could make it wrap.
	left := c.left
	if n >= left {
		return false
	}
	c.left = left - n
	return true
}

func (c *countdown) passAtomic(n uint64) bool {
	for {
		left := atomic.LoadUint64(&c.left)
		if n >= left {
			return false
		}
		if atomic.CompareAndSwapUint64(&c.left, left, left-n) {
			return true
		}
	}
}

// settle finishes a decision that pass did not take: an allocation of a
// positive size is sampled, and its countdown restarts with a fresh gap.
func (s *sampler) settle(c *countdown, size int) bool {
	if size <= 0 {
		return false
	}
	if atomicCountdowns {
		atomic.StoreUint64(&c.left, s.gap())
	} else {
		c.left = s.gap()
	}
	return true
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
