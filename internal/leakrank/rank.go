package leakrank

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// DefaultOldAge is the age from which an object counts as old when
// Options.OldAge is zero.
const DefaultOldAge = time.Hour

// Options tune Rank. The zero value means the documented defaults.
type Options struct {
	// OldAge is the age from which a sampled object counts as old, zero
	// meaning DefaultOldAge. The profiler records ages rounded down to
	// fixed steps (0s, 1s, 2s, 5s, ... 30m, 1h, 2h, 3h, 6h, 12h, 1d, ...),
	// so at a step the count is exact, and between two steps it counts
	// only the objects certainly older.
	OldAge time.Duration
}

// Ranking is the result of Rank.
type Ranking struct {
	Sites []SiteRank // every site that held memory in some snapshot, most suspicious first
	First *Snapshot
	Last  *Snapshot
	Count int           // snapshots in the series
	Span  time.Duration // from the first snapshot to the last
	// ByIndex reports that all snapshots have the same time, so growth is
	// measured against the snapshot index and GrowthPerHour is unknown.
	ByIndex bool
}

// SiteRank is one site's place in a Ranking.
type SiteRank struct {
	Site
	History []int64 // in-use bytes in each snapshot, oldest first
	InUse   int64   // in-use bytes in the latest snapshot
	// Trend is the fit through History, whose figures are placed at the
	// time they describe: for the Go heap, the snapshots' GoHeapTime where
	// known, since the runtime's are a GC cycle or two old; for every
	// other heap, the snapshots' Time. GrowthPerHour is 0 if ByIndex.
	Trend
	Share float64 // InUse over the latest snapshot's in-use bytes
	// OldShare is the share of InUse in objects at least Options.OldAge
	// old; meaningful only if HasAge, which is false for sites whose
	// samples carry no age label, as the Go heap's.
	OldShare float64
	HasAge   bool
	Score    float64 // see Trend.Score
}

// Rank scores the sites of snaps, a time-ordered series of one program,
// by how steadily their in-use memory grows. It needs at least two
// snapshots.
func Rank(snaps []*Snapshot, opts Options) (*Ranking, error) {
	switch len(snaps) {
	case 0:
		return nil, fmt.Errorf("no profiles to rank")
	case 1:
		return nil, fmt.Errorf("only one profile (%s): growth needs at least two", snaps[0].Path)
	}
	if opts.OldAge == 0 {
		opts.OldAge = DefaultOldAge
	}
	first, last := snaps[0], snaps[len(snaps)-1]
	r := &Ranking{First: first, Last: last, Count: len(snaps), Span: last.Time.Sub(first.Time)}

	// x is hours since the first snapshot, at the time each snapshot's
	// figures describe: its own for most heaps, xGo for the Go heap's (see
	// Snapshot.GoHeapTime). A series whose snapshots share one time
	// (profiles without time stamps, or written in the same instant) still
	// has an order, so it falls back to the index: growth per snapshot
	// then, which the score does not mind (see Trend.Score).
	r.ByIndex = r.Span == 0
	x := positions(snaps, r.ByIndex, "")
	xGo := positions(snaps, r.ByIndex, GoHeap)

	histories := make(map[string][]int64)
	for i, s := range snaps {
		for k, u := range s.Sites {
			h := histories[k]
			if h == nil {
				h = make([]int64, len(snaps))
				histories[k] = h
			}
			h[i] = u.InUse
		}
	}

	y := make([]float64, len(snaps))
	oldSecs := int64((opts.OldAge + time.Second - 1) / time.Second) // ages are whole seconds
	for k, h := range histories {
		for i, v := range h {
			y[i] = float64(v)
		}
		site := siteOf(snaps, k)
		sx := x
		if site.Heap == GoHeap {
			sx = xGo
		}
		trend := FitTrend(sx, y)
		trend.Monotonicity = Monotonicity(y)
		if r.ByIndex {
			trend.GrowthPerHour = 0
		}
		sr := SiteRank{Site: site, History: h, InUse: h[len(h)-1], Trend: trend}
		if last.InUse > 0 {
			sr.Share = float64(sr.InUse) / float64(last.InUse)
		}
		if u := last.Sites[k]; u != nil && u.ByAge != nil {
			sr.OldShare, sr.HasAge = oldShare(u, oldSecs), true
		}
		if !sr.ProfilerOwn() {
			sr.Score = sr.Trend.Score(sr.InUse, last.InUse)
		}
		r.Sites = append(r.Sites, sr)
	}
	slices.SortFunc(r.Sites, compareRanks)
	return r, nil
}

// positions returns where each snapshot's figures for heap's sites lie on
// the x-axis of the fit: hours from the first snapshot's time to the time
// they describe, or the snapshot's index if byIndex.
func positions(snaps []*Snapshot, byIndex bool, heap string) []float64 {
	x := make([]float64, len(snaps))
	for i, s := range snaps {
		if byIndex {
			x[i] = float64(i)
		} else {
			x[i] = HoursSince(snaps[0].Time, s.figuresTime(heap))
		}
	}
	return x
}

// OwnFrame is the one frame of the stack under which the profiler writes
// its own Go memory (its tables and buffers), in place of the stack that
// allocated it.
const OwnFrame = "[leakhunt profiler]"

// ProfilerOwn reports whether s is the profiler's own memory. It is
// listed but never scored: it is bounded, and grows only while the
// profiler's tables fill in its first flushes, which in a short series
// would look like the steadiest growth of all.
func (s Site) ProfilerOwn() bool { return len(s.Stack) == 1 && s.Stack[0] == OwnFrame }

// oldShare returns the share of u's in-use bytes in samples at least
// oldSecs seconds old.
func oldShare(u *Usage, oldSecs int64) float64 {
	if u.InUse <= 0 {
		return 0 // nothing held, in a Usage made by hand
	}
	// Summed like InUse, saturating, so old <= InUse holds even where
	// both hit math.MaxInt64.
	var old int64
	for age, v := range u.ByAge {
		if age >= oldSecs {
			old = saturatingAdd(old, v)
		}
	}
	return float64(old) / float64(u.InUse)
}

// siteOf returns the site with key k from the latest snapshot that has it.
func siteOf(snaps []*Snapshot, k string) Site {
	for i := len(snaps) - 1; ; i-- {
		if u := snaps[i].Sites[k]; u != nil {
			return u.Site
		}
	}
}

// compareRanks orders by score, then by growth and size, then by site, so
// that the order is the same on every run.
func compareRanks(a, b SiteRank) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	// Among sites that score nothing, a fitted growth of ±1e-9 bytes on a
	// flat site is rounding, not a signal: the larger site comes first.
	if c := cmp.Compare(b.Growth, a.Growth); c != 0 && a.Score > 0 {
		return c
	}
	if c := cmp.Compare(b.InUse, a.InUse); c != 0 {
		return c
	}
	return compareSites(a.Site, b.Site)
}

func compareSites(a, b Site) int {
	if c := cmp.Compare(a.Heap, b.Heap); c != 0 {
		return c
	}
	return slices.Compare(a.Stack, b.Stack)
}
