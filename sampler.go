package profiler

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
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
// The runtime implements the process with a per-P countdown of bytes until
// the next sample point (runtime/malloc.go, nextSample), and so does this
// sampler: each P has its own countdown on its own cache line, reached by
// pinning the goroutine to its P (see procpin.go), so the unsampled path is
// a subtract and a compare with no lock, no shared write and no random
// draw. Gaps between points are drawn as floor(E)+1 bytes with E
// exponential of mean rate, which puts a point on each byte independently
// with probability 1-exp(-1/rate): a Poisson process over whole bytes, so
// an allocation of s bytes holds no point with probability exactly
// exp(-s/rate), whatever came before it. Splitting one process into
// per-P streams changes nothing, since each stream is such a process.
//
// A P whose id is beyond the counters (GOMAXPROCS raised after Start) falls
// back to thinning, the same distribution drawn per call: u uniform in
// [0, 2^64) from the runtime's per-thread generator, sampled iff
// u < p(s)·2^64. Because p(s) ≤ s/rate, the test u ≥ s·⌈2^64/rate⌉ rejects
// almost every such call before any call to exp.

// maxSamplingRate bounds the rate so that s·⌈2^64/rate⌉ cannot overflow for
// any s < rate (it needs rate² < 2^64).
const maxSamplingRate = 1 << 30

// sampler decides which allocations to record. Its configuration is
// immutable after Start; the countdowns change on every call.
type sampler struct {
	rate   uint64 // mean bytes between samples; 1 records every allocation
	mul    uint64 // ⌈2^64/rate⌉, the early-reject threshold per byte
	counts []countdown
}

// countdown is the bytes left until the next sample point on one P, padded
// to a cache line of its own.
type countdown struct {
	left int64
	_    [56]byte
}

func newSampler(rate int) sampler {
	r := uint64(rate)
	// ⌈2^64/r⌉ computed without 128-bit arithmetic.
	mul := math.MaxUint64/r + 1
	s := sampler{rate: r, mul: mul, counts: make([]countdown, max(runtime.GOMAXPROCS(0), runtime.NumCPU()))}
	for i := range s.counts {
		s.counts[i].left = s.gap()
	}
	return s
}

// gap draws the distance in bytes to the next sample point, at least 1.
func (s *sampler) gap() int64 {
	return int64(rand.ExpFloat64()*float64(s.rate)) + 1
}

// sample reports whether an allocation of size bytes is to be recorded.
func (s *sampler) sample(size int) bool {
	if size <= 0 || s.rate == 1 {
		return size > 0 // rate 1 records every allocation, as MemProfileRate 1 does
	}
	pid := procPin()
	if pid >= len(s.counts) {
		procUnpin()
		return s.sampleThinning(size)
	}
	c := &s.counts[pid]
	var left int64
	if raceEnabled {
		left = atomic.AddInt64(&c.left, -int64(size))
	} else {
		c.left -= int64(size)
		left = c.left
	}
	if left > 0 {
		procUnpin()
		return false
	}
	// One or more points fell in this allocation: sampled once. Each byte
	// is a point independently of the others, so the distance from its end
	// to the next point is a fresh gap, whatever fell inside it.
	left = s.gap()
	if raceEnabled {
		atomic.StoreInt64(&c.left, left)
	} else {
		c.left = left
	}
	procUnpin()
	return true
}

// sampleThinning is sample for a P without a countdown.
func (s *sampler) sampleThinning(size int) bool {
	u := rand.Uint64()
	return !s.quickReject(size, u) && s.accept(size, u)
}

// quickReject reports whether u rejects an allocation of size bytes by the
// cheap bound u ≥ s·⌈2^64/rate⌉ ≥ p(s)·2^64. It answers for almost every
// call, with a multiply and a compare.
func (s *sampler) quickReject(size int, u uint64) bool {
	return uint64(size) < s.rate && u >= uint64(size)*s.mul
}

// accept finishes the decision for the rare draws that quickReject let
// through: sampled iff u < p(s)·2^64.
func (s *sampler) accept(size int, u uint64) bool {
	if size <= 0 {
		return false
	}
	if s.rate == 1 {
		return true
	}
	// For sizes of about 37 rates or more p rounds to exactly 1, and
	// float64(u) may round up to 2^64: accept those outright.
	threshold := s.probability(int64(size)) * (1 << 64)
	return threshold >= 1<<64 || float64(u) < threshold
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
