package profiler

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/google/pprof/profile"
)

// The statistical tests below compare estimates read back from a written
// profile with the known truth of a workload driven through the hook. The
// sampler is seeded afresh for each run (a failing run logs its seed, and
// -seed replays it), so every run sees different samples: each bound is a
// five-sigma bound on the estimator's real standard deviation, computed from
// the Horvitz–Thompson variance below, which a correct sampler exceeds with
// probability about 6e-7 per check (some twenty-five checks here: a
// spurious failure about once in 70,000 runs).
//
// The Horvitz–Thompson estimator of a total Σ x_i over allocations, each
// sampled independently with probability p_i, is Σ_sampled x_i/p_i. It is
// unbiased, and its variance is
//
//	Var = Σ x_i² (1-p_i)/p_i
//
// (x_i = 1 for object counts, x_i = s_i for bytes). For n allocations of one
// size, with k = n·p expected samples, that is a relative standard deviation
// of sqrt((1-p)/k) ≤ 1/sqrt(k): the "±5 % at 10k samples" of DESIGN.md is
// the looser 5/sqrt(k) of this bound. Sizes were chosen so that every class
// with 0 < 1-p has k ≥ 10k and n·(1-p) ≥ 500 (the 3000 B class at p = 95 %
// has the fewest misses): the normal approximation behind "five sigma"
// holds only when the sampled and the unsampled counts are both large, and
// a class with, say, 0.5 expected misses would fail a five-sigma bound one
// run in a thousand. Classes with p = 1 exactly have σ = 0 and must come
// out exact.

// leakSite, churnSite and largeSite are the allocation sites of the
// workloads: the leaf frame of their samples, by which the profile is split.
//
//go:noinline
func leakSite(key uintptr, size int) { Alloc(key, size) }

//go:noinline
func churnSite(key uintptr, size int) { Alloc(key, size) }

//go:noinline
func largeSite(key uintptr, size int) { Alloc(key, size) }

//go:noinline
func reallocSite(key uintptr, size int) { Alloc(key, size) }

const (
	leakSiteName  = "github.com/leakhunt/profiler.leakSite"
	churnSiteName = "github.com/leakhunt/profiler.churnSite"
	largeSiteName = "github.com/leakhunt/profiler.largeSite"
	reallocName   = "github.com/leakhunt/profiler.reallocSite"
)

// sizeClass is count allocations of size bytes each.
type sizeClass struct{ size, count int }

// htSigma returns the standard deviations of the Horvitz–Thompson estimates
// of the object count and the bytes of class c at the given rate, with p
// computed independently of the sampler under test.
func htSigma(c sizeClass, rate int) (objects, bytes float64) {
	p := 1 - math.Exp(-float64(c.size)/float64(rate))
	n, s := float64(c.count), float64(c.size)
	return math.Sqrt(n * (1 - p) / p), math.Sqrt(n * s * s * (1 - p) / p)
}

// checkEstimate fails the test unless |got-want| ≤ 5·sigma + slack, slack
// being the rounding of the writer (half a unit per profile sample summed),
// and logs the measured error.
func checkEstimate(t *testing.T, what string, got int64, want, sigma, slack float64) {
	t.Helper()
	diff := float64(got) - want
	bound := 5*sigma + slack
	rel := diff / want
	z := 0.0
	if sigma > 0 {
		z = diff / sigma
	}
	t.Logf("%-34s est %14d  truth %14.0f  rel.err %+.5f  z %+5.2f  bound ±%.5f", what, got, want, rel, z, bound/want)
	if math.Abs(diff) > bound {
		t.Errorf("%s: estimate %d, truth %.0f: error %+.0f (%+.3f%%) exceeds 5σ+rounding = %.1f (σ = %.1f)",
			what, got, want, diff, 100*rel, bound, sigma)
	}
}

func TestAccuracyLeakedMixedSizes(t *testing.T) {
	// Sizes from 16 B to 1 MiB at rate R = 1000: 16 and 100 B are rare
	// samples (p = 1.6 % and 9.5 %), 1000 B is p(R) = 63 %, 3000 B is 95 %,
	// and 40 kB and 1 MiB are ≥ 40R, where p rounds to exactly 1 in float64
	// and the estimate must be exact. Counts give k ≈ 10k expected samples
	// per class where sampling is random, so per class the bound is at most
	// 5/sqrt(10k) = 5 %; the totals mix the classes and use the summed HT
	// variance. About 770k Alloc calls and 42k samples: ~0.5 s under -race.
	const rate = 1000
	classes := []sizeClass{
		{16, 630_000},
		{100, 105_000},
		{1000, 16_000},
		{3000, 10_500},
		{40_000, 1000},
		{1 << 20, 1000},
	}
	p := startTestProfiler(t, WithSamplingRate(rate))

	// Shuffle the classes together, so that any dependence of a decision
	// on the previous ones (a countdown bug, a generator reused wrongly)
	// shows.
	var sizes []int
	for _, c := range classes {
		for range c.count {
			sizes = append(sizes, c.size)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(sizes), func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	for i, size := range sizes {
		leakSite(uintptr(i+1), size)
	}

	if st := p.Stats(); st.Dropped != 0 {
		t.Fatalf("Stats().Dropped = %d, want 0: the bounds assume every sample was kept", st.Dropped)
	}
	prof := writeParsed(t, p)
	bySize, groups := sumBySize(t, prof, defaultHeapName, leakSiteName)

	var wantObjects, wantBytes, varObjects, varBytes, slack float64
	var gotObjects, gotBytes int64
	for _, c := range classes {
		v := bySize[int64(c.size)]
		so, sb := checkLeaked(t, c, rate, v, groups[int64(c.size)])
		n := float64(groups[int64(c.size)])
		// Nothing was freed, so the cumulative figures are the live ones,
		// exactly: both are scaled from the same counts.
		if v.allocObjects != v.inuseObjects || v.allocSpace != v.inuseSpace {
			t.Errorf("size %d: alloc %d objects %d bytes, inuse %d objects %d bytes; want equal with no frees",
				c.size, v.allocObjects, v.allocSpace, v.inuseObjects, v.inuseSpace)
		}
		wantObjects += float64(c.count)
		wantBytes += float64(c.count * c.size)
		varObjects += so * so
		varBytes += sb * sb
		slack += n / 2
		gotObjects += v.inuseObjects
		gotBytes += v.inuseSpace
	}
	for size := range bySize {
		if groups[size] > 0 && !containsSize(classes, size) {
			t.Errorf("profile has samples of %d bytes at %s; the workload has no such size", size, leakSiteName)
		}
	}
	checkEstimate(t, "total inuse_objects", gotObjects, wantObjects, math.Sqrt(varObjects), slack)
	checkEstimate(t, "total inuse_space", gotBytes, wantBytes, math.Sqrt(varBytes), slack)
}

// TestAccuracyConcurrent runs the leak workload on many goroutines at
// once, each with its own keys, more goroutines than Ps, so that the per-P
// countdowns are shared as in a server and must not bias the estimates. Two
// sizes, 100 B (p = 9.5 %) and 600 B (p = 45 %) at R = 1000, 8 goroutines
// of 60k allocations: about 23k and 108k expected samples, bounds of 5σ of
// the Horvitz–Thompson variance (±3.1 % and ±1.1 %).
func TestAccuracyConcurrent(t *testing.T) {
	const rate, goroutines, each = 1000, 8, 60_000
	classes := []sizeClass{{100, goroutines * each / 2}, {600, goroutines * each / 2}}
	p := startTestProfiler(t, WithSamplingRate(rate), WithMaxLiveSamples(1<<20))
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				leakSite(uintptr(g*each+i+1), classes[i%2].size)
			}
		})
	}
	wg.Wait()
	if st := p.Stats(); st.Dropped != 0 {
		t.Fatalf("Stats().Dropped = %d, want 0: the bounds assume every sample was kept", st.Dropped)
	}
	bySize, groups := sumBySize(t, writeParsed(t, p), defaultHeapName, leakSiteName)
	for _, c := range classes {
		checkLeaked(t, c, rate, bySize[int64(c.size)], groups[int64(c.size)])
	}
}

// checkLeaked checks the in-use estimates of class c, all of it leaked,
// from v, the sum of its groups (profile samples), and returns the standard
// deviations it checked them against.
func checkLeaked(t *testing.T, c sizeClass, rate int, v values, groups int) (objects, bytes float64) {
	t.Helper()
	so, sb := htSigma(c, rate)
	slack := float64(groups) / 2
	checkEstimate(t, sizeName("inuse_objects", c.size), v.inuseObjects, float64(c.count), so, slack)
	checkEstimate(t, sizeName("inuse_space", c.size), v.inuseSpace, float64(c.count*c.size), sb, slack)
	return so, sb
}

func TestAccuracyChurn(t *testing.T) {
	// Every allocation is freed at once: the site must show nothing in use,
	// exactly, while its cumulative figures estimate all the allocations.
	// k ≈ 10k expected samples per size (p = 9.5 % and 86 % at R = 1000).
	const rate = 1000
	classes := []sizeClass{{100, 105_000}, {2000, 11_600}}
	p := startTestProfiler(t, WithSamplingRate(rate))

	// Distinct keys, so that a Free that failed to remove its record would
	// stay visible as in-use rather than be replaced by a later Alloc.
	key := uintptr(1 << 30)
	for i := range max(classes[0].count, classes[1].count) {
		for _, c := range classes {
			if i < c.count {
				churnSite(key, c.size)
				Free(key)
				key++
			}
		}
	}

	if st := p.Stats(); st.LiveSamples != 0 || st.Dropped != 0 {
		t.Errorf("Stats: LiveSamples %d, Dropped %d; want 0 and 0 after freeing everything", st.LiveSamples, st.Dropped)
	}
	prof := writeParsed(t, p)
	bySize, groups := sumBySize(t, prof, defaultHeapName, churnSiteName)
	var wantObjects, wantBytes, varObjects, varBytes, slack float64
	var gotObjects, gotBytes int64
	for _, c := range classes {
		v := bySize[int64(c.size)]
		if v.inuseObjects != 0 || v.inuseSpace != 0 {
			t.Errorf("size %d: inuse %d objects, %d bytes after every allocation was freed; want 0", c.size, v.inuseObjects, v.inuseSpace)
		}
		so, sb := htSigma(c, rate)
		n := float64(groups[int64(c.size)])
		checkEstimate(t, sizeName("alloc_objects", c.size), v.allocObjects, float64(c.count), so, n/2)
		checkEstimate(t, sizeName("alloc_space", c.size), v.allocSpace, float64(c.count*c.size), sb, n/2)
		wantObjects += float64(c.count)
		wantBytes += float64(c.count * c.size)
		varObjects += so * so
		varBytes += sb * sb
		slack += n / 2
		gotObjects += v.allocObjects
		gotBytes += v.allocSpace
	}
	checkEstimate(t, "total alloc_objects", gotObjects, wantObjects, math.Sqrt(varObjects), slack)
	checkEstimate(t, "total alloc_space", gotBytes, wantBytes, math.Sqrt(varBytes), slack)
}

// TestAccuracyReAllocWithoutFree: an Alloc on a live key means the old
// object was freed without a Free (DESIGN.md: replace it). The in-use
// figures must then estimate the objects of the last generation only. That
// holds only if every Alloc, sampled or not, ends the key's old record: if
// an unsampled Alloc leaves it, a key stays in use as soon as any of its
// generations was sampled, and the site reads (1-(1-p)^M)/p times its real
// size after M generations, here 3.5 times.
func TestAccuracyReAllocWithoutFree(t *testing.T) {
	// p(100 B) = 9.5 % at R = 1000: k ≈ 10k expected samples behind the
	// in-use figure (one generation), 40k behind the cumulative one.
	const rate, size, keys, generations = 1000, 100, 105_000, 4
	p := startTestProfiler(t, WithSamplingRate(rate))
	for range generations {
		for k := range uintptr(keys) {
			reallocSite(k, size)
		}
	}
	prof := writeParsed(t, p)
	bySize, groups := sumBySize(t, prof, defaultHeapName, reallocName)
	v, n := bySize[size], float64(groups[size])
	live := sizeClass{size, keys}
	so, sb := htSigma(live, rate)
	checkEstimate(t, "inuse_objects (last generation)", v.inuseObjects, keys, so, n/2)
	checkEstimate(t, "inuse_space (last generation)", v.inuseSpace, keys*size, sb, n/2)
	all := sizeClass{size, keys * generations}
	so, sb = htSigma(all, rate)
	checkEstimate(t, "alloc_objects (all generations)", v.allocObjects, keys*generations, so, n/2)
	checkEstimate(t, "alloc_space (all generations)", v.allocSpace, keys*generations*size, sb, n/2)
}

func TestAccuracyLargeAllocationsAlwaysSampled(t *testing.T) {
	// "Sizes ≥ R are always sampled with weight ≈ 1" holds for s ≫ R only:
	// the Poisson process samples s = R with p = 1-1/e = 63 % (checked
	// statistically, with its weight e/(e-1), by the 1000 B class of
	// TestAccuracyLeakedMixedSizes). From s ≥ 37R, exp(-s/R) < 2^-53 and
	// p is exactly 1 in float64: every such allocation must be sampled,
	// each with weight exactly 1, so the figures equal the truth exactly.
	const rate = 4096
	classes := []sizeClass{{40 * rate, 100}, {1 << 20, 100}, {1 << 26, 100}, {1 << 30, 100}}
	p := startTestProfiler(t, WithSamplingRate(rate))

	key := uintptr(1)
	allocs := 0
	for _, c := range classes {
		for range c.count {
			largeSite(key, c.size)
			key++
			allocs++
		}
	}
	// Free every other allocation: in-use must then be exactly half.
	for k := uintptr(1); k < key; k += 2 {
		Free(k)
	}

	st := p.Stats()
	if st.Samples != int64(allocs) {
		t.Errorf("Stats().Samples = %d, want %d: every allocation of ≥ 40×rate must be sampled", st.Samples, allocs)
	}
	if want := int64(allocs / 2); st.LiveSamples != want {
		t.Errorf("Stats().LiveSamples = %d, want %d", st.LiveSamples, want)
	}
	prof := writeParsed(t, p)
	bySize, _ := sumBySize(t, prof, defaultHeapName, largeSiteName)
	for _, c := range classes {
		got := bySize[int64(c.size)]
		n, s := int64(c.count), int64(c.size)
		want := values{allocObjects: n, allocSpace: n * s, inuseObjects: n / 2, inuseSpace: n / 2 * s}
		t.Logf("size %10d: got %+v, want %+v", c.size, got, want)
		if got != want {
			t.Errorf("size %d: got %+v, want exactly %+v (weight 1)", c.size, got, want)
		}
	}
}

// refProbability is p(s) = 1-exp(-x), x = s/R, computed independently of
// the sampler: by its series where 1-exp(-x) would cancel (the truncation
// error x^5/120 is below 1e-14 relative for x < 1e-3), and directly above,
// where the cancellation costs at most 1.1e-16/p ≤ 1.2e-13 relative.
func refProbability(size int64, rate int) float64 {
	x := float64(size) / float64(rate)
	if x < 1e-3 {
		return x - x*x/2 + x*x*x/6 - x*x*x*x/24
	}
	return 1 - math.Exp(-x)
}

func TestSamplerProbability(t *testing.T) {
	for _, rate := range []int64{2, 3, 1000, 4096, DefaultSamplingRate, maxSamplingRate} {
		if got := probability(0, rate); got != 0 {
			t.Errorf("rate %d: probability(0) = %v, want 0", rate, got)
		}
		if got, want := probability(float64(rate), rate), 1-1/math.E; math.Abs(got-want) > 1e-15 {
			t.Errorf("rate %d: probability(rate) = %.17g, want 1-1/e = %.17g", rate, got, want)
		}
		if got := probability(40*float64(rate), rate); got != 1 {
			t.Errorf("rate %d: probability(40·rate) = %.17g, want 1 (exp(-40) < 2^-53)", rate, got)
		}
		sizes := []int64{1, 2, 3, rate / 3, rate - 1, rate, rate + 1, 3 * rate, 1 << 40}
		slices.Sort(sizes)
		prev := 0.0
		for _, size := range slices.Compact(sizes) {
			if size <= 0 {
				continue
			}
			got := probability(float64(size), rate)
			if want := refProbability(size, int(rate)); math.Abs(got-want) > 1e-12*want {
				t.Errorf("rate %d: probability(%d) = %.17g, want %.17g (relative error %.2g)", rate, size, got, want, (got-want)/want)
			}
			if got < prev || got > 1 {
				t.Errorf("rate %d: probability(%d) = %.17g not in [p of the next smaller size = %.17g, 1]", rate, size, got, prev)
			}
			prev = got
		}
	}
	if probability(1, 1) != 1 || probability(1<<30, 1) != 1 {
		t.Errorf("rate 1: probability(1) = %v, probability(2^30) = %v; want 1", probability(1, 1), probability(1<<30, 1))
	}
}

func TestSamplerScale(t *testing.T) {
	if o, b := scale(0, 0, 1000); o != 0 || b != 0 {
		t.Errorf("scale(0, 0) = %d, %d; want 0, 0", o, b)
	}
	// p(1000) at rate 1000 is 1-1/e: 1000 samples of 1000 B stand for
	// 1000/(1-1/e) = 1581.9767 objects and 1581976.7 bytes.
	if o, b := scale(1000, 1000*1000, 1000); o != 1582 || b != 1581977 {
		t.Errorf("scale(1000, 1000·1000) at rate 1000 = %d, %d; want 1582, 1581977", o, b)
	}
	// One 16-byte sample at rate 1000 stands for 1/(1-exp(-0.016)).
	if o, b := scale(1, 16, 1000); o != 63 || b != 1008 {
		t.Errorf("scale(1, 16) at rate 1000 = %d, %d; want 63, 1008 (1/p = 63.0053)", o, b)
	}
	// At ≥ 40R the weight is exactly 1.
	for _, size := range []int64{40_000, 1 << 20, 1 << 30} {
		if o, b := scale(7, float64(7*size), 1000); o != 7 || b != 7*size {
			t.Errorf("scale(7, 7·%d) at rate 1000 = %d, %d; want 7, %d", size, o, b, 7*size)
		}
	}
	for _, c := range []struct{ count, size int64 }{{1, 1}, {3, 17}, {1000, 1 << 20}, {1 << 30, 1 << 20}} {
		if o, b := scale(c.count, float64(c.count*c.size), 1); o != c.count || b != c.count*c.size {
			t.Errorf("rate 1: scale(%d, %d) = %d, %d; want %d, %d", c.count, c.count*c.size, o, b, c.count, c.count*c.size)
		}
	}
	// unscale undoes scale's object count, which Stats relies on to count
	// the Go heap's samples from its scaled figures.
	for _, c := range []struct{ count, size, rate int64 }{{1, 16, 1000}, {1000, 1000, 1000}, {12345, 64, DefaultSamplingRate}, {7, 1 << 20, 4096}, {5, 8, 1}} {
		o, b := scale(c.count, float64(c.count*c.size), c.rate)
		if got := unscale(o, b, c.rate); math.Abs(float64(got-c.count)) > 1+float64(c.count)*1e-6 {
			t.Errorf("unscale(scale(%d samples of %d B at rate %d)) = %d", c.count, c.size, c.rate, got)
		}
	}
}

// newSampler returns a sampler of the given rate, outside any profiler,
// seeded for the test (see testSeed).
func newSampler(t testing.TB, rate int) *sampler {
	s := new(sampler)
	s.init(rate, testSeed(t))
	return s
}

// TestSamplerSampleFrequency checks the countdown against p(s) directly:
// the fraction of M draws sampled must be within five binomial sigmas of
// p. Sizes are chosen so that both M·p and M·(1-p) are in the thousands.
// Each size runs alone and then interleaved with allocations of other
// sizes on the same countdowns, whose presence must not change its rate.
func TestSamplerSampleFrequency(t *testing.T) {
	const rate, draws = 4096, 200_000
	s := newSampler(t, rate)
	for _, size := range []int{rate / 32, rate / 2, rate, 2 * rate} {
		for _, mixed := range []bool{false, true} {
			hits := 0
			for i := range draws {
				if mixed {
					s.sampled(1 + i%(3*rate)) // another site's allocation
				}
				if s.sampled(size) {
					hits++
				}
			}
			checkFraction(t, fmt.Sprintf("size %d (mixed %v)", size, mixed), hits, draws, size, rate)
		}
	}
}

// checkFraction fails the test unless hits of draws decisions of size
// bytes at rate is within five binomial sigmas of p(size): a spurious
// failure about once in 1.7 million checks.
func checkFraction(t *testing.T, what string, hits, draws, size, rate int) {
	t.Helper()
	p := 1 - math.Exp(-float64(size)/float64(rate))
	n := float64(draws)
	sigma := math.Sqrt(n * p * (1 - p))
	diff := float64(hits) - n*p
	t.Logf("%s: sampled %d of %d, expected %.0f, z %+.2f", what, hits, draws, n*p, diff/sigma)
	if math.Abs(diff) > 5*sigma {
		t.Errorf("%s at rate %d: sampled %d of %d, expected %.0f ± %.0f (5σ)", what, rate, hits, draws, n*p, 5*sigma)
	}
}

func TestSamplerRateOneSamplesEverything(t *testing.T) {
	s := newSampler(t, 1)
	for _, size := range []int{1, 2, 16, 1000, 1 << 30, math.MaxInt} {
		for range 3 {
			if !s.sampled(size) {
				t.Errorf("rate 1: size %d not sampled; rate 1 must record every allocation", size)
			}
		}
	}
	for _, size := range []int{0, -1} {
		if s.sampled(size) {
			t.Errorf("rate 1: size %d sampled; sizes ≤ 0 are ignored", size)
		}
	}
}

// countdownsLeft returns what every P's countdown has left.
func countdownsLeft(s *sampler) []int64 {
	var left []int64
	for _, c := range *s.counts.Load() {
		left = append(left, c.left.Load())
	}
	return left
}

// Sizes of zero or less are ignored and leave the countdowns as they were:
// a negative size must not push the next sample point further away.
func TestSamplerIgnoresNonPositiveSizes(t *testing.T) {
	s := newSampler(t, DefaultSamplingRate)
	before := countdownsLeft(s)
	for _, size := range []int{0, -1, -4096, math.MinInt} {
		if s.sampled(size) {
			t.Errorf("size %d sampled", size)
		}
		if after := countdownsLeft(s); !slices.Equal(before, after) {
			t.Fatalf("size %d moved the countdowns from %v to %v", size, before, after)
		}
	}
}

// Many more goroutines than Ps decide at once, so that goroutines are
// preempted and move between Ps mid-stream: the decisions on each P's
// countdown must still add up to the rate p, which they would not if a
// decision were split or an update lost.
func TestSamplerConcurrentRate(t *testing.T) {
	if sz := unsafe.Sizeof(countdown{}); sz != 64 {
		t.Errorf("countdown is %d bytes, want a 64-byte cache line", sz)
	}
	const rate, size, goroutines, each = 4096, 1024, 16, 100_000
	s := newSampler(t, rate)
	var hits atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			n := int64(0)
			for range each {
				if s.sampled(size) {
					n++
				}
			}
			hits.Add(n)
		})
	}
	wg.Wait()
	checkFraction(t, fmt.Sprintf("%d goroutines", goroutines), int(hits.Load()), goroutines*each, size, rate)
}

// Each P's countdown draws its own gaps, not another P's shifted: with a
// shared stream the Ps' counts rise and fall together, and the total
// strays from its expectation by up to GOMAXPROCS times as much. At rate
// 1<<30 the gaps are spread over a billion values, so two streams of 1000
// independent gaps share one by chance with probability about 1e-3.
func TestSamplerStreamsIndependent(t *testing.T) {
	s := new(sampler)
	s.init(1<<30, testSeed(t))
	s.grow(4)
	seen := make(map[int64]int) // gap -> stream
	for pid, c := range (*s.counts.Load())[:4] {
		for range 1000 {
			g := s.gap(c)
			if other, ok := seen[g]; ok && other != pid {
				t.Fatalf("streams %d and %d both drew the gap %d", other, pid, g)
			}
			seen[g] = pid
		}
	}
}

// A P beyond the countdowns made at Start (GOMAXPROCS raised since) gets
// its own, and the rate stays p.
func TestSamplerGrowsWithGOMAXPROCS(t *testing.T) {
	const rate, size, goroutines, each = 4096, 1024, 8, 50_000
	s := newSampler(t, rate)
	made := len(*s.counts.Load())
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(made + 2))
	var hits atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			n := int64(0)
			for range each {
				if s.sampled(size) {
					n++
				}
			}
			hits.Add(n)
		})
	}
	wg.Wait()
	t.Logf("countdowns: %d at Start, %d after GOMAXPROCS %d", made, len(*s.counts.Load()), made+2)
	checkFraction(t, "after GOMAXPROCS was raised", int(hits.Load()), goroutines*each, size, rate)
}

// The same seed gives the same decisions, so that a failing statistical
// run can be replayed with -seed; another seed gives others.
func TestSamplerSeedReplays(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one P: one countdown
	run := func(seed uint64) []bool {
		s := new(sampler)
		s.init(4096, seed)
		out := make([]bool, 20_000)
		for i := range out {
			out[i] = s.sampled(64 + i%1000)
		}
		return out
	}
	a, b, c := run(42), run(42), run(43)
	if !slices.Equal(a, b) {
		t.Errorf("two samplers seeded 42 decided differently")
	}
	if slices.Equal(a, c) {
		t.Errorf("samplers seeded 42 and 43 decided alike on %d allocations", len(a))
	}
}

var seedFlag = flag.Uint64("seed", 0, "seed of the sampler in the statistical tests; 0 draws one, which each test logs")

// testSeed returns the sampler seed for a test: -seed if given, else a
// fresh one. It logs the seed with the command that replays the test.
func testSeed(t testing.TB) uint64 {
	seed := *seedFlag
	if seed == 0 {
		seed = rand.Uint64() | 1
	}
	t.Logf("sampler seed %d (replay: go test -run '^%s$' -seed %d)", seed, t.Name(), seed)
	return seed
}

// Shared helpers for the tests of this package that read profiles back.

// startTestProfiler starts a profiler writing to a fresh directory and
// stops it when the test ends. The Go heap source is off: these tests check
// the hook, and the runtime's samples (at a MemProfileRate that a rate of 1
// would make record every Go allocation) would only add cost and samples to
// filter out.
func startTestProfiler(t testing.TB, opts ...Option) *Profiler {
	t.Helper()
	opts = append([]Option{WithOutputDir(t.TempDir()), WithGoHeap(false), withSeed(testSeed(t))}, opts...)
	p, err := Start(opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return p
}

// writeParsed writes p's current profile to memory and parses it back.
func writeParsed(t *testing.T, p *Profiler) *profile.Profile {
	t.Helper()
	var buf bytes.Buffer
	if err := p.WriteProfile(&buf); err != nil {
		t.Fatalf("WriteProfile: %v", err)
	}
	return parseChecked(t, buf.Bytes())
}

func parseChecked(t *testing.T, data []byte) *profile.Profile {
	t.Helper()
	prof, err := profile.ParseData(data)
	if err != nil {
		t.Fatalf("profile.Parse: %v", err)
	}
	if err := prof.CheckValid(); err != nil {
		t.Fatalf("CheckValid: %v", err)
	}
	return prof
}

// values are a profile sample's four figures, by sample type name.
type values struct{ allocObjects, allocSpace, inuseObjects, inuseSpace int64 }

func (v *values) add(w values) {
	v.allocObjects += w.allocObjects
	v.allocSpace += w.allocSpace
	v.inuseObjects += w.inuseObjects
	v.inuseSpace += w.inuseSpace
}

// valuesOf returns a function reading a sample's values by sample type
// name, so the tests do not depend on the order of the types.
func valuesOf(t *testing.T, prof *profile.Profile) func(*profile.Sample) values {
	t.Helper()
	idx := map[string]int{}
	for i, st := range prof.SampleType {
		idx[st.Type+"/"+st.Unit] = i
	}
	want := []string{"alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"}
	for _, w := range want {
		if _, ok := idx[w]; !ok {
			t.Fatalf("profile has no sample type %s (has %v)", w, prof.SampleType)
		}
	}
	return func(s *profile.Sample) values {
		return values{
			allocObjects: s.Value[idx[want[0]]],
			allocSpace:   s.Value[idx[want[1]]],
			inuseObjects: s.Value[idx[want[2]]],
			inuseSpace:   s.Value[idx[want[3]]],
		}
	}
}

// leafFunction returns the innermost function of a sample's stack.
func leafFunction(s *profile.Sample) string {
	if len(s.Location) == 0 || len(s.Location[0].Line) == 0 || s.Location[0].Line[0].Function == nil {
		return ""
	}
	return s.Location[0].Line[0].Function.Name
}

func heapLabel(s *profile.Sample) string {
	if h := s.Label["heap"]; len(h) == 1 {
		return h[0]
	}
	return ""
}

func sizeLabel(t *testing.T, s *profile.Sample) int64 {
	t.Helper()
	b := s.NumLabel["bytes"]
	if len(b) != 1 {
		t.Fatalf("sample %v has bytes label %v, want one value", s, b)
	}
	return b[0]
}

// sumBySize sums the values of the samples of heap whose leaf function is
// leaf, by their bytes label; it also counts the samples per size, each of
// which the writer rounded once.
func sumBySize(t *testing.T, prof *profile.Profile, heap, leaf string) (map[int64]values, map[int64]int) {
	t.Helper()
	read := valuesOf(t, prof)
	sums, counts := map[int64]values{}, map[int64]int{}
	for _, s := range prof.Sample {
		if heapLabel(s) != heap || leafFunction(s) != leaf {
			continue
		}
		size := sizeLabel(t, s)
		v := sums[size]
		v.add(read(s))
		sums[size] = v
		counts[size]++
	}
	if len(counts) == 0 {
		t.Fatalf("profile has no samples in heap %q with leaf %s", heap, leaf)
	}
	return sums, counts
}

func containsSize(classes []sizeClass, size int64) bool {
	for _, c := range classes {
		if int64(c.size) == size {
			return true
		}
	}
	return false
}

func sizeName(what string, size int) string {
	return fmt.Sprintf("%s @ %d B", what, size)
}
