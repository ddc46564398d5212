package profiler

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank"
	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// The detector's tests feed it series of synthetic profiles, shaped like
// the profiler's by leakranktest, in which each site's in-use bytes follow
// a known course, and check what it warns about and when.

const (
	oneKiB = 1 << 10
	oneMiB = 1 << 20
)

// The leaf functions of the sites of the synthetic series.
const (
	leakFunc  = "app.(*Sessions).add"
	cacheFunc = "app.loadCache"
	churnFunc = "app.newBuffer"
	warmFunc  = "app.(*Pool).grow"
)

// detectorSite returns a sample of the site with leaf function leaf on heap,
// holding inuse bytes (none if not positive), having allocated alloc.
func detectorSite(heap, leaf string, inuse, alloc int64) leakranktest.Sample {
	return leakranktest.Sample{Heap: heap, Stack: []string{leaf, "app.serve", "main.main"}, InUse: max(inuse, 0), Alloc: alloc, Age: -1}
}

// detectorSeries is a synthetic run of a program: its i-th profile is
// taken at leakranktest.Start plus i intervals, and holds the samples of
// sites(i), which a series that is fed more than once (see checkRankScore)
// must return alike at every call.
type detectorSeries struct {
	interval time.Duration
	sites    func(i int) []leakranktest.Sample
	comments func(i int) []string // nil for none
}

func (s detectorSeries) at(i int) time.Time {
	return leakranktest.Start.Add(time.Duration(i) * s.interval)
}

// path is the file name of the i-th profile, for Suspect.Profile.
func (s detectorSeries) path(i int) string { return fmt.Sprintf("heap-%05d.pb.gz", i) }

func (s detectorSeries) profile(i int) leakranktest.Profile {
	p := leakranktest.Profile{Time: s.at(i), Duration: time.Duration(i+1) * s.interval, File: "/bin/app", BuildID: "b00c1d", Samples: s.sites(i)}
	if s.comments != nil {
		p.Comments = s.comments(i)
	}
	return p
}

// feed gives d the profiles from to to (excluded) and returns the
// warnings of each, indexed by profile.
func (s detectorSeries) feed(d *leakDetector, from, to int) map[int][]Suspect {
	out := make(map[int][]Suspect)
	for i := from; i < to; i++ {
		if w := d.observe(s.profile(i).Build(), s.at(i), s.path(i)); len(w) > 0 {
			out[i] = w
		}
	}
	return out
}

// firstWarning returns the index of the first profile at which a warning
// names the function leaf, and that warning; -1 if none does.
func firstWarning(warnings map[int][]Suspect, leaf string) (int, Suspect) {
	first, found := -1, Suspect{}
	for i, ws := range warnings {
		for _, w := range ws {
			if w.Function == leaf && (first < 0 || i < first) {
				first, found = i, w
			}
		}
	}
	return first, found
}

// leakSeries is a run with a leak that starts at profile leakStart and
// grows by step a profile, with noise of up to noise bytes, beside a large
// cache filled once, churn, the profiler's own memory growing as steadily
// as the leak, and a warm-up that grows for 10 profiles and levels off.
func leakSeries(seed uint64, interval time.Duration, leakStart int, step, noise int64) detectorSeries {
	return detectorSeries{interval: interval, sites: func(i int) []leakranktest.Sample {
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		var leak int64
		if i >= leakStart {
			leak = int64(i-leakStart+1)*step + rng.Int64N(noise+1)
		}
		return []leakranktest.Sample{
			detectorSite("default", leakFunc, leak, leak),
			detectorSite("default", cacheFunc, 512*oneMiB, 512*oneMiB),
			detectorSite(leakrank.GoHeap, churnFunc, 64*oneMiB+rng.Int64N(64*oneMiB), int64(i+1)<<30),
			detectorSite(leakrank.GoHeap, warmFunc, int64(min(i+1, 10))*8*oneMiB+rng.Int64N(oneMiB), int64(i+1)<<30),
			{Heap: leakrank.GoHeap, Stack: []string{leakrank.OwnFrame}, InUse: int64(i+1) * oneMiB, Age: -1},
		}
	}}
}

// A steady leak is reported within 30 profiles, at a 1 s flush interval
// and at 1 min, with what `leakhunt rank` says of the same profiles;
// nothing else in the run ever is.
func TestDetectorSteadyLeak(t *testing.T) {
	const leakStart = 5
	for _, tc := range []struct {
		name     string
		interval time.Duration
		step     int64
	}{
		{"1s", time.Second, 1 * oneMiB},
		{"1m", time.Minute, 64 * oneKiB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(20) {
				s := leakSeries(seed, tc.interval, leakStart, tc.step, tc.step) // noise as large as the step
				d := newLeakDetector()
				warnings := s.feed(d, 0, 200)
				i, w := firstWarning(warnings, leakFunc)
				if i < 0 || i-leakStart+1 > 30 {
					t.Fatalf("seed %d: leak first reported at profile %d of its own, want within 30", seed, i-leakStart+1)
				}
				for j, ws := range warnings {
					for _, w := range ws {
						if w.Function != leakFunc {
							t.Errorf("seed %d: profile %d: warned about %+v", seed, j, w)
						}
					}
				}
				if seed > 0 {
					continue
				}
				t.Logf("reported at the leak's profile %d: %+v", i-leakStart+1, w)
				if w.Heap != "default" || w.Profile != s.path(i) || w.InuseBytes != s.profile(i).Samples[0].InUse {
					t.Errorf("warning %+v: want heap default, profile %s, in use %d", w, s.path(i), s.profile(i).Samples[0].InUse)
				}
				if want := float64(tc.step) * float64(time.Hour/tc.interval); math.Abs(w.GrowthBytesPerHour-want) > 0.1*want {
					t.Errorf("growth %.0f B/h, want %.0f", w.GrowthBytesPerHour, want)
				}
				if !w.Since.Equal(s.at(leakStart)) {
					t.Errorf("since %v, want the leak's first profile, %v", w.Since, s.at(leakStart))
				}
				checkRankScore(t, s, w, i)
			}
		})
	}
}

// checkRankScore checks that w, warned at profile last of s, has the
// score and growth that leakrank.Rank gives its site over the profiles
// from w.Since to last: the detector scores as `leakhunt rank` does.
func checkRankScore(t *testing.T, s detectorSeries, w Suspect, last int) {
	t.Helper()
	var snaps []*leakrank.Snapshot
	for i := 0; i <= last; i++ {
		if s.at(i).Before(w.Since) {
			continue
		}
		snap, err := leakrank.NewSnapshot(s.path(i), s.profile(i).Build())
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, snap)
	}
	r, err := leakrank.Rank(snaps, leakrank.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sr := range r.Sites {
		if sr.Function() == w.Function && sr.Heap == w.Heap {
			if math.Abs(sr.Score-w.Score) > 1e-9*sr.Score || math.Abs(sr.GrowthPerHour-w.GrowthBytesPerHour) > 1e-9*sr.GrowthPerHour {
				t.Errorf("score %g, growth %g B/h; leakhunt rank over the same %d profiles: %g, %g B/h",
					w.Score, w.GrowthBytesPerHour, len(snaps), sr.Score, sr.GrowthPerHour)
			}
			return
		}
	}
	t.Errorf("leakhunt rank has no site %s", w.Function)
}

// Nothing is reported in 300 profiles, nor ever a suspect, for a cache
// filled once, churn of any size, warm-ups that level off, or the
// profiler's own memory, however steadily it grows; with noise, at both
// intervals.
func TestDetectorNoFalseSuspects(t *testing.T) {
	shapes := []struct {
		name string
		heap string
		leaf string
		// inuse is the site's in-use bytes at profile i; alloc its
		// allocated bytes, 0 for inuse.
		inuse func(rng *rand.Rand, i int) int64
		alloc func(i int) int64
	}{
		{"cache filled at once", "default", cacheFunc, func(_ *rand.Rand, i int) int64 {
			if i < 10 {
				return 0
			}
			return 512 * oneMiB
		}, nil},
		{"cache filled in four steps, then turned over", "default", cacheFunc, func(rng *rand.Rand, i int) int64 {
			return int64(min(i/3+1, 4))*64*oneMiB + rng.Int64N(4*oneMiB)
		}, nil},
		{"churn, large", leakrank.GoHeap, churnFunc, func(rng *rand.Rand, _ int) int64 {
			return 256*oneMiB + rng.Int64N(256*oneMiB)
		}, func(i int) int64 { return int64(i+1) << 34 }},
		{"churn, small", "default", churnFunc, func(rng *rand.Rand, _ int) int64 {
			return rng.Int64N(4 * oneMiB)
		}, func(i int) int64 { return int64(i+1) << 30 }},
		{"churn, objects living about a profile", "default", churnFunc, inFlight(0.5, 200),
			func(i int) int64 { return int64(i+1) << 30 }},
		{"warm-up, linear for 12 profiles", "default", warmFunc, func(rng *rand.Rand, i int) int64 {
			return int64(min(i+1, 12))*8*oneMiB + rng.Int64N(2*oneMiB)
		}, nil},
		{"warm-up, concave", "default", warmFunc, func(rng *rand.Rand, i int) int64 {
			return int64(256*oneMiB*(1-math.Exp(-float64(i)/4))) + rng.Int64N(2*oneMiB)
		}, nil},
		{"the profiler's own memory", leakrank.GoHeap, leakrank.OwnFrame, func(_ *rand.Rand, i int) int64 {
			return int64(i+1) * oneMiB
		}, nil},
	}
	for _, interval := range []time.Duration{time.Second, time.Minute} {
		for _, sh := range shapes {
			t.Run(fmt.Sprintf("%s/%v", sh.name, interval), func(t *testing.T) {
				for seed := range uint64(20) {
					rng := rand.New(rand.NewPCG(seed, 2))
					inuse := sh.inuse(rng, 0)
					s := detectorSeries{interval: interval, sites: func(i int) []leakranktest.Sample {
						if i > 0 {
							inuse = sh.inuse(rng, i)
						}
						alloc := inuse
						if sh.alloc != nil {
							alloc = sh.alloc(i)
						}
						stack := []string{sh.leaf, "app.serve", "main.main"}
						if sh.leaf == leakrank.OwnFrame {
							stack = stack[:1]
						}
						return []leakranktest.Sample{
							{Heap: sh.heap, Stack: stack, InUse: inuse, Alloc: alloc, Age: -1},
							detectorSite("default", "app.rest", 32*oneMiB, 32*oneMiB),
						}
					}}
					d := newLeakDetector()
					for i := range 300 {
						if w := d.observe(s.profile(i).Build(), s.at(i), s.path(i)); len(w) > 0 {
							t.Fatalf("seed %d, profile %d: warned about %+v", seed, i, w)
						}
						if sus := d.suspects(); len(sus) > 0 {
							t.Fatalf("seed %d, profile %d: suspects %+v", seed, i, sus)
						}
					}
				}
			})
		}
	}
}

// inFlight returns the in-use bytes of objects of 512 KiB allocated at a
// steady rate, each living from one profile to the next with probability
// survive, about mean of them in use.
func inFlight(survive float64, mean int) func(*rand.Rand, int) int64 {
	live := mean
	return func(rng *rand.Rand, _ int) int64 {
		kept := 0
		for range live {
			if rng.Float64() < survive {
				kept++
			}
		}
		live = kept + poissonDraw(rng, float64(mean)*(1-survive))
		return int64(live) * 512 * oneKiB
	}
}

// poissonDraw draws from a Poisson distribution of the given mean (Knuth's
// method, fine for small means).
func poissonDraw(rng *rand.Rand, mean float64) int {
	limit, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p < limit {
			return k
		}
		k++
	}
}

// A suspect is warned about when established, then again only when it
// holds half as much again as at its last warning; not when it stops
// growing, nor when it starts again below that.
func TestDetectorRewarn(t *testing.T) {
	// 1 MiB a profile for 200 profiles, flat for 100, then growing again.
	inuse := func(i int) int64 {
		switch {
		case i < 200:
			return int64(i+1) * oneMiB
		case i < 300:
			return 200 * oneMiB
		default:
			return int64(i-99) * oneMiB
		}
	}
	s := detectorSeries{interval: time.Second, sites: func(i int) []leakranktest.Sample {
		return []leakranktest.Sample{detectorSite("default", leakFunc, inuse(i), inuse(i)), detectorSite("default", cacheFunc, 64*oneMiB, 64*oneMiB)}
	}}
	d := newLeakDetector()
	warnings := s.feed(d, 0, 400)
	var at []int
	for i := range 400 {
		if len(warnings[i]) > 0 {
			at = append(at, i)
		}
	}
	if len(at) == 0 || at[0] >= 30 {
		t.Fatalf("warned at profiles %v, want a first within 30", at)
	}
	// Each later warning is at the first profile that holds half as much
	// again as the last warned.
	want := []int{at[0]}
	for last := at[0]; ; {
		next := -1
		for i := last + 1; i < 400; i++ {
			if float64(inuse(i)) >= 1.5*float64(inuse(last)) {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		want = append(want, next)
		last = next
	}
	if !slices.Equal(at, want) {
		t.Errorf("warned at profiles %v, want %v", at, want)
	}
	for _, i := range at {
		if w := warnings[i]; len(w) != 1 || w[0].Function != leakFunc || w[0].InuseBytes != inuse(i) {
			t.Errorf("profile %d: warnings %+v", i, w)
		}
	}
	// While flat it stops being a suspect; growing again, it is one again.
	d = newLeakDetector()
	s.feed(d, 0, 290)
	if sus := d.suspects(); len(sus) != 0 {
		t.Errorf("after 90 flat profiles, suspects %+v", sus)
	}
	s.feed(d, 290, 340)
	if sus := d.suspects(); len(sus) != 1 || sus[0].Function != leakFunc {
		t.Errorf("growing again, suspects %+v", sus)
	}
}

// suspects lists the current suspects, most suspicious first, each with
// the latest profile's path, in a slice of the caller's own.
func TestDetectorSuspectsOrder(t *testing.T) {
	leaves := []string{"app.slow", "app.fast", "app.medium"}
	steps := []int64{1 * oneMiB, 4 * oneMiB, 2 * oneMiB}
	s := detectorSeries{interval: time.Second, sites: func(i int) []leakranktest.Sample {
		out := []leakranktest.Sample{detectorSite("default", cacheFunc, 256*oneMiB, 256*oneMiB)}
		for j, leaf := range leaves {
			out = append(out, detectorSite("default", leaf, int64(i+1)*steps[j], int64(i+1)*steps[j]))
		}
		return out
	}}
	d := newLeakDetector()
	if sus := d.suspects(); sus != nil {
		t.Errorf("suspects before any profile: %+v", sus)
	}
	s.feed(d, 0, 40)
	sus := d.suspects()
	var got []string
	for _, x := range sus {
		got = append(got, x.Function)
		if x.Profile != s.path(39) || x.Heap != "default" {
			t.Errorf("suspect %+v: want profile %s, heap default", x, s.path(39))
		}
	}
	if want := []string{"app.fast", "app.medium", "app.slow"}; !slices.Equal(got, want) {
		t.Fatalf("suspects %v, want %v", got, want)
	}
	if !(sus[0].Score > sus[1].Score && sus[1].Score > sus[2].Score) {
		t.Errorf("scores %g, %g, %g: want decreasing", sus[0].Score, sus[1].Score, sus[2].Score)
	}
	sus[0].Function = "changed"
	if again := d.suspects(); again[0].Function != "app.fast" {
		t.Errorf("suspects shares its slice: %+v", again[0])
	}
}

// A Go heap leak is measured against the time of the GC its figures are
// from, as leakhunt rank measures it, and its evidence is counted in GC
// cycles, not in profiles that repeat the same figures.
func TestDetectorGoHeapFiguresTime(t *testing.T) {
	const rate = 2 * oneMiB // a second
	// A GC every 2 s; each profile's Go heap figures are as of the GC
	// before the last, as the runtime publishes them.
	gcBefore := func(i int) int { return max((i/2-1)*2, 0) }
	s := detectorSeries{interval: time.Second}
	s.sites = func(i int) []leakranktest.Sample {
		leak := int64(gcBefore(i)+1) * rate
		return []leakranktest.Sample{detectorSite(leakrank.GoHeap, leakFunc, leak, leak), detectorSite("default", cacheFunc, 64*oneMiB, 64*oneMiB)}
	}
	s.comments = func(i int) []string { return []string{leakrank.GoHeapTimeComment(s.at(gcBefore(i)))} }
	d := newLeakDetector()
	warnings := s.feed(d, 0, 60)
	i, w := firstWarning(warnings, leakFunc)
	if i < 0 {
		t.Fatal("Go heap leak not reported")
	}
	t.Logf("reported at profile %d: %+v", i+1, w)
	// The figures of 20 GCs, 2 s apart, take 40 profiles.
	if i+1 < 2*minEvidence {
		t.Errorf("reported at profile %d, with the figures of %d GCs; want at least %d", i+1, gcBefore(i)/2+1, minEvidence)
	}
	// Against the profiles' own times, the growth would come out a GC
	// interval short over the span.
	if want := float64(rate) * 3600; math.Abs(w.GrowthBytesPerHour-want) > 1e-6*want {
		t.Errorf("growth %.0f B/h, want %.0f", w.GrowthBytesPerHour, want)
	}
	checkRankScore(t, s, w, i)
}

// Over 10,000 profiles, with hundreds of churning sites coming and going,
// the detector stays within its bound, which a measure of the Go heap
// agrees with, and still finds a slow leak among them.
func TestDetectorBoundedMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("one goroutine's computation, slow under the race detector and with nothing for it to check: the run without -race covers it")
	}
	const (
		profiles = 10000
		alive    = 300 // churning sites at any time
	)
	rng := rand.New(rand.NewPCG(5, 6))
	type churner struct {
		leaf       string
		level, end int64
	}
	var churners []churner
	born := 0
	newChurner := func(i int) churner {
		born++
		return churner{
			leaf:  fmt.Sprintf("app.handler%d", born),
			level: (1 + rng.Int64N(64)) * oneMiB,
			end:   int64(i) + 5 + rng.Int64N(500),
		}
	}
	for range alive {
		churners = append(churners, newChurner(0))
	}
	const leakStart = 2000
	leak := func(i int) int64 { return int64(max(i-leakStart+1, 0)) * 256 * oneKiB }
	s := detectorSeries{interval: time.Second, sites: func(i int) []leakranktest.Sample {
		out := make([]leakranktest.Sample, 0, alive+2)
		for j := range churners {
			if churners[j].end <= int64(i) {
				churners[j] = newChurner(i)
			}
			c := churners[j]
			out = append(out, detectorSite("default", c.leaf, c.level/2+rng.Int64N(c.level), int64(i+1)*c.level))
		}
		out = append(out, detectorSite("default", leakFunc, leak(i), leak(i)))
		return out
	}}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	d := newLeakDetector()
	first, largest := -1, 0
	for i := range profiles {
		for _, w := range d.observe(s.profile(i).Build(), s.at(i), s.path(i)) {
			if w.Function != leakFunc {
				t.Fatalf("profile %d: warned about %+v", i, w)
			}
			if first < 0 {
				first = i
			}
		}
		largest = max(largest, d.size())
	}
	if first < 0 {
		t.Fatalf("the leak (256 KiB a profile from profile %d) was never reported", leakStart)
	}
	t.Logf("leak reported at profile %d, %d after it began; %d sites came and went", first, first-leakStart, born)
	if sus := d.suspects(); len(sus) != 1 || sus[0].Function != leakFunc {
		t.Errorf("suspects at the end: %+v", sus)
	}
	if largest > maxDetectorSize {
		t.Errorf("size reached %d bytes, over the bound of %d", largest, maxDetectorSize)
	}

	// The heap the detector keeps, measured: what a collection frees once
	// it is gone. Within 15 % of size, or size is not honest.
	runtime.GC()
	var with runtime.MemStats
	runtime.ReadMemStats(&with)
	size := d.size()
	runtime.KeepAlive(d)
	d = nil
	runtime.GC()
	var without runtime.MemStats
	runtime.ReadMemStats(&without)
	measured := int64(with.HeapAlloc) - int64(without.HeapAlloc)
	runtime.KeepAlive(s)
	t.Logf("size %d bytes (largest %d, bound %d); measured %d bytes", size, largest, maxDetectorSize, measured)
	if math.Abs(float64(measured-int64(size))) > 0.15*float64(size) {
		t.Errorf("size %d bytes, but the heap measures %d", size, measured)
	}
}

// maxDetectorSize is the bound on leakDetector.size: what size counts,
// at its largest: a full map of watched sites with names of maxNameLen
// bytes, the list of candidates at the largest kept from one profile to
// the next, and every watched site a suspect.
var maxDetectorSize = allocBytes(int(unsafe.Sizeof(leakDetector{}))) +
	mapBytes(maxWatched, int(unsafe.Sizeof(leakrank.SiteID(0))+unsafe.Sizeof((*watchedSite)(nil)))) +
	maxWatched*(allocBytes(int(unsafe.Sizeof(watchedSite{})))+allocBytes(historyLen*8)+2*allocBytes(maxNameLen)) +
	allocBytes(maxKeptCandidates*int(unsafe.Sizeof(rankedSite{}))) +
	allocBytes(int(unsafe.Sizeof([]Suspect(nil)))) + allocBytes(maxWatched*int(unsafe.Sizeof(Suspect{})))

// The real profiler's profiles, parsed as written: a hook site that leaks
// is reported within 30 profiles taken 1 s apart (in the detector's time),
// a flat one and a churning one never.
func TestDetectorRealProfiler(t *testing.T) {
	p, err := Start(WithSamplingRate(4096), WithOutputDir(t.TempDir()), WithGoHeap(false),
		WithFlushInterval(time.Hour), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	h := NewHeap("x")
	var keys detectorTestKeys
	detectorTestCache(h, &keys)
	d := newLeakDetector()
	start := time.Now()
	first := -1
	for i := range 60 {
		detectorTestLeak(h, &keys)
		detectorTestChurn(h, &keys)
		var buf bytes.Buffer
		if err := p.WriteProfile(&buf); err != nil {
			t.Fatal(err)
		}
		prof, err := profile.Parse(&buf)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range d.observe(prof, start.Add(time.Duration(i)*time.Second), "") {
			if !strings.HasSuffix(w.Function, ".detectorTestLeak") || w.Heap != "x" {
				t.Fatalf("profile %d: warned about %+v", i, w)
			}
			if first < 0 {
				first = i
				t.Logf("reported at profile %d: %+v", i+1, w)
			}
		}
	}
	if first < 0 || first >= 30 {
		t.Errorf("leak first reported at profile %d, want within 30", first+1)
	}
}

// detectorTestKeys hands out keys for the hook.
type detectorTestKeys struct {
	next  uintptr
	churn []uintptr
}

func (k *detectorTestKeys) new() uintptr {
	k.next++
	return k.next
}

// detectorTestCache fills a 1 MiB cache, once.
//
//go:noinline
func detectorTestCache(h *Heap, k *detectorTestKeys) {
	for range 256 {
		h.Alloc(k.new(), 4096)
	}
}

// detectorTestLeak leaks 64 KiB.
//
//go:noinline
func detectorTestLeak(h *Heap, k *detectorTestKeys) {
	for range 64 {
		h.Alloc(k.new(), 1024)
	}
}

// detectorTestChurn frees what it allocated last time and allocates as
// much again: about 256 KiB in use, and 256 KiB more allocated each time.
//
//go:noinline
func detectorTestChurn(h *Heap, k *detectorTestKeys) {
	for _, key := range k.churn {
		h.Free(key)
	}
	k.churn = k.churn[:0]
	for range 256 {
		key := k.new()
		h.Alloc(key, 1024)
		k.churn = append(k.churn, key)
	}
}

// realisticSeries returns n profiles of a service, each of about 3,000
// samples: 1,500 Go heap sites of one sample each and 300 hook sites of
// five ages each, their stacks 24 frames deep drawn from 400 functions of
// realistic names; their in-use bytes churn about their levels, and one
// site in fifty leaks.
func realisticSeries(n int) []*profile.Profile {
	rng := rand.New(rand.NewPCG(9, 9))
	funcs := make([]string, 400)
	for i := range funcs {
		funcs[i] = fmt.Sprintf("github.com/acme/service/internal/pkg%d.(*Handler%d).serveRequest", i%37, i)
	}
	type siteSpec struct {
		heap  string
		stack []string
		level int64
		ages  int
	}
	var specs []siteSpec
	for i := range 1800 {
		stack := []string{fmt.Sprintf("github.com/acme/service/internal/store.(*Table).insert%d", i)}
		for range 22 {
			stack = append(stack, funcs[rng.IntN(len(funcs))])
		}
		stack = append(stack, "main.main")
		spec := siteSpec{heap: leakrank.GoHeap, stack: stack, level: (1 + rng.Int64N(64)) * 512 * oneKiB, ages: 1}
		if i >= 1500 {
			spec.heap, spec.ages = "default", 5
		}
		specs = append(specs, spec)
	}
	out := make([]*profile.Profile, n)
	for i := range out {
		p := leakranktest.Profile{Time: leakranktest.Start.Add(time.Duration(i) * time.Second), File: "/bin/service", BuildID: "abc"}
		for j, sp := range specs {
			inuse := sp.level/2 + rng.Int64N(sp.level)
			if j%50 == 0 {
				inuse = sp.level + int64(i)*sp.level/8
			}
			for a := range sp.ages {
				age := int64(-1)
				if sp.heap != leakrank.GoHeap {
					age = leakranktest.AgeStep(int64(a) * 600)
				}
				p.Samples = append(p.Samples, leakranktest.Sample{Heap: sp.heap, Stack: sp.stack, InUse: inuse / int64(sp.ages), Alloc: int64(i+1) * sp.level, Age: age})
			}
		}
		out[i] = p.Build()
	}
	return out
}

// BenchmarkDetectorObserve measures observe on profiles of about 3,000
// samples and 1,800 sites, after a warm-up that fills the history, beside
// what the profile costs anyway: reading it as leakhunt rank does
// (leakrank.NewSnapshot), and parsing the gzipped bytes the profiler
// writes (profile.ParseData), which the profiler must do to hand it to
// observe.
func BenchmarkDetectorObserve(b *testing.B) {
	profs := realisticSeries(64)
	samples := len(profs[0].Sample)
	b.Run("observe", func(b *testing.B) {
		d := newLeakDetector()
		for i, p := range profs {
			d.observe(p, leakranktest.Start.Add(time.Duration(i)*time.Second), "heap.pb.gz")
		}
		b.ReportAllocs()
		i := len(profs)
		for b.Loop() {
			d.observe(profs[i%len(profs)], leakranktest.Start.Add(time.Duration(i)*time.Second), "heap.pb.gz")
			i++
		}
		b.ReportMetric(float64(samples), "samples")
		b.ReportMetric(float64(d.size()), "detector-bytes")
	})
	b.Run("baseline=NewSnapshot", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := leakrank.NewSnapshot("heap.pb.gz", profs[i%len(profs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("baseline=ParseData", func(b *testing.B) {
		var buf bytes.Buffer
		if err := profs[0].Write(&buf); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := profile.ParseData(buf.Bytes()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "gzipped-bytes")
	})
}

// suspects and size may be called while observe runs (run with -race).
func TestDetectorConcurrentReads(t *testing.T) {
	s := leakSeries(1, time.Second, 0, oneMiB, oneMiB)
	d := newLeakDetector()
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				for _, x := range d.suspects() {
					if x.Function != leakFunc {
						t.Errorf("suspect %+v", x)
					}
				}
				if d.size() <= 0 {
					t.Error("size not positive")
				}
			}
		})
	}
	s.feed(d, 0, 100)
	close(done)
	readers.Wait()
	if sus := d.suspects(); len(sus) != 1 {
		t.Errorf("suspects %+v, want the leak", sus)
	}
}
