package profiler

import (
	"math"
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
// sample point, so the unsampled path is a subtract and a compare with no
// lock and no random draw. Gaps between points are drawn as floor(E)+1
// bytes with E exponential of mean rate, which puts a point on each byte
// independently with probability 1-exp(-1/rate): a Poisson process over
// whole bytes, so an allocation of s bytes holds no point with probability
// exactly exp(-s/rate), whatever came before it. A sampled allocation
// restarts its countdown with a fresh gap, since the bytes after it are
// independent of what fell inside it.
//
// As in the runtime there is one countdown per P, reached the way sync.Pool
// reaches its per-P caches: the goroutine is pinned to its P (procpin.go),
// which also keeps it from being preempted, so no other goroutine touches
// that countdown until it is unpinned and a decision is never split. The
// countdowns are still read and written atomically. The Go memory model
// knows nothing of Ps: two goroutines that run on one P one after the other
// are ordered by the scheduler, which neither the model nor the race
// detector sees, and an atomic operation on a cache line no other core
// writes costs little. So the race detector checks the very code that
// ships. Splitting one process into per-P streams changes nothing, since
// each stream is such a process.

// maxSamplingRate bounds the rate: a mean of a GiB between samples already
// leaves almost nothing in a profile.
const maxSamplingRate = 1 << 30

// sampler decides which allocations to record. Its rate is immutable after
// Start; the countdowns change on every call. It is safe for concurrent use.
type sampler struct {
	rate uint64 // mean bytes between samples; 1 records every allocation
	seed uint64 // of every countdown's generator, with its P id

	// counts is the countdown of each P, by P id. The slice is replaced,
	// never changed in place, when a P beyond it appears (GOMAXPROCS
	// raised); the countdowns it points to stay.
	counts atomic.Pointer[[]*countdown]
	growMu sync.Mutex
}

// countdown is the bytes left until the next sample point on one P, at
// least 1 between decisions, and the state of the generator its gaps are
// drawn from, on a cache line of its own.
type countdown struct {
	left atomic.Int64
	rng  atomic.Uint64
	_    [64 - 2*unsafe.Sizeof(atomic.Int64{})]byte
}

// init sets the rate and the seed, and makes a countdown for every P. It
// runs before the sampler is published to the hook.
func (s *sampler) init(rate int, seed uint64) {
	s.rate, s.seed = uint64(rate), seed
	s.grow(max(runtime.GOMAXPROCS(0), runtime.NumCPU()))
}

// grow makes countdowns for n Ps at least, each starting with a gap drawn
// from its own generator.
func (s *sampler) grow(n int) {
	s.growMu.Lock()
	defer s.growMu.Unlock()
	var old []*countdown
	if p := s.counts.Load(); p != nil {
		old = *p
	}
	if len(old) >= n {
		return
	}
	next := append(make([]*countdown, 0, n), old...)
	for pid := len(old); pid < n; pid++ {
		c := new(countdown)
		// Each generator starts at a point of splitmix64's cycle hashed
		// from the seed and the P id. Started at seed + pid·γ, γ being
		// the generator's own increment, P k's gaps were P 0's shifted by
		// k draws: the same gaps on every P, whose counts then rose and
		// fell together.
		c.rng.Store(mix(s.seed ^ mix(uint64(pid)+1)))
		c.left.Store(s.gap(c))
		next = append(next, c)
	}
	s.counts.Store(&next)
}

// gap draws the distance in bytes to c's next sample point, at least 1, as
// floor(E)+1 with E = -rate·ln(U), U uniform in (0, 1]: exponential of mean
// rate. At rate 1 it is always 1, so that every allocation is sampled. The
// caller is pinned to c's P or owns c alone.
func (s *sampler) gap(c *countdown) int64 {
	if s.rate == 1 {
		return 1
	}
	x := c.rng.Load() + 0x9e3779b97f4a7c15 // splitmix64
	c.rng.Store(x)
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	u := float64(x>>11+1) / (1 << 53)
	return int64(-math.Log(u)*float64(s.rate)) + 1
}

// sampled counts an allocation of size bytes on the caller's P and reports
// whether a sample point falls inside it. Sizes of zero or less are never
// sampled and count nothing.
func (s *sampler) sampled(size int) bool {
	if size <= 0 {
		return false
	}
	pid := procPin()
	counts := *s.counts.Load()
	if pid >= len(counts) {
		procUnpin()
		s.grow(pid + 1)
		return s.sampled(size)
	}
	c := counts[pid]
	if c.left.Add(-int64(size)) > 0 {
		procUnpin()
		return false
	}
	// One or more points fell inside the allocation: it is sampled once,
	// and the next point is a fresh gap from its end. Nothing else runs on
	// this P meanwhile, so no decision sees the countdown at zero or less.
	c.left.Store(s.gap(c))
	procUnpin()
	return true
}

// probability is p(s) = 1 - exp(-s/rate), the chance that an allocation of
// size bytes is sampled. Expm1 keeps precision when s is much smaller than
// the rate, where 1-exp(-x) would cancel.
func probability(size float64, rate int64) float64 {
	if rate <= 1 {
		return 1
	}
	return -math.Expm1(-size / float64(rate))
}

// scale returns the unbiased estimates of the objects and bytes that count
// sampled allocations of bytes in all stand for, at rate: each stands for
// 1/p of its kind, p being the probability that an allocation of their
// average size is sampled. For the hook's groups, whose allocations are
// all of one size, this is exact; the runtime's records hold mixed sizes
// and runtime/pprof scales them the same way (scaleHeapSample in
// runtime/pprof/protomem.go). bytes is a float64 so that count times an
// absurd size cannot wrap.
func scale(count int64, bytes float64, rate int64) (objects, size int64) {
	if count <= 0 || bytes <= 0 {
		return 0, 0
	}
	p := probability(bytes/float64(count), rate)
	return saturate(float64(count) / p), saturate(bytes / p)
}

// unscale inverts scale's object count: the sampled allocations behind an
// estimate of objects allocations holding bytes in all.
func unscale(objects, bytes, rate int64) int64 {
	if objects <= 0 || bytes <= 0 {
		return 0
	}
	return saturate(float64(objects) * probability(float64(bytes)/float64(objects), rate))
}

// saturatingAdd returns a+b for non-negative a and b, held at MaxInt64
// rather than wrapping.
func saturatingAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// saturate rounds x to an int64, holding it at MaxInt64 rather than
// wrapping: an absurd size must not turn into a negative total.
func saturate(x float64) int64 {
	if x >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Round(x))
}
