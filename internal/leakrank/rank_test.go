package leakrank

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

func snapshots(t *testing.T, ps []leakranktest.Profile) []*Snapshot {
	t.Helper()
	out := make([]*Snapshot, len(ps))
	for i, p := range ps {
		s, err := NewSnapshot(p.Time.String(), p.Build())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

func rankOf(t *testing.T, r *Ranking, stack []string) (int, SiteRank) {
	t.Helper()
	for i, s := range r.Sites {
		if slices.Equal(s.Stack, stack) {
			return i, s
		}
	}
	t.Fatalf("no site with stack %v", stack)
	return 0, SiteRank{}
}

// The small growing site ranks first; the large flat one and the shrinking
// one score 0 however large; the churning one scores far below the leak.
func TestRankLeakSeries(t *testing.T) {
	r, err := Rank(snapshots(t, leakranktest.LeakSeries(10)), Options{OldAge: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sites) != 4 || r.Count != 10 || r.Span != 9*time.Minute || r.ByIndex {
		t.Fatalf("%d sites, %d snapshots over %v (by index %v); want 4, 10, 9m0s, false", len(r.Sites), r.Count, r.Span, r.ByIndex)
	}
	i, grow := rankOf(t, r, leakranktest.GrowingStack)
	if i != 0 {
		t.Errorf("growing site ranked %d, want first; ranking:\n%s", i+1, describe(r))
	}
	// 64 KiB a minute, exactly, and steadily.
	if want := float64(64<<10) * 60; math.Abs(grow.GrowthPerHour-want) > 1e-6*want {
		t.Errorf("growth %g B/h, want %g", grow.GrowthPerHour, want)
	}
	if want := float64(9 * 64 << 10); math.Abs(grow.Growth-want) > 1e-6*want {
		t.Errorf("growth over the series %g B, want %g", grow.Growth, want)
	}
	if grow.Monotonicity != 1 || grow.InUse != 10*64<<10 || grow.Function() != "app.(*SessionStore).Add" || grow.Heap != "default" {
		t.Errorf("growing site: %+v", grow)
	}
	// Ages 0..9 minutes rounded down to steps: 5..9 minutes are 300s.
	if !grow.HasAge || grow.OldShare != 0.5 {
		t.Errorf("old share %v (has age %v), want 0.5", grow.OldShare, grow.HasAge)
	}
	wantShare := float64(grow.InUse) / float64(r.Last.InUse)
	if math.Abs(grow.Share-wantShare) > 1e-12 || math.Abs(grow.Score-wantShare*0.9) > 1e-9 {
		t.Errorf("share %g, score %g; want %g and growth/total = 0.9 × share", grow.Share, grow.Score, wantShare)
	}

	_, flat := rankOf(t, r, leakranktest.FlatStack)
	_, shrink := rankOf(t, r, leakranktest.ShrinkingStack)
	_, churn := rankOf(t, r, leakranktest.ChurningStack)
	if flat.Score != 0 || shrink.Score != 0 {
		t.Errorf("flat score %g, shrinking score %g; want 0", flat.Score, shrink.Score)
	}
	if flat.Monotonicity != 0 || shrink.Monotonicity != -1 || shrink.GrowthPerHour >= 0 {
		t.Errorf("flat tau %g, shrinking tau %g and growth %g", flat.Monotonicity, shrink.Monotonicity, shrink.GrowthPerHour)
	}
	if churn.Score > grow.Score/10 {
		t.Errorf("churning site scores %g, more than a tenth of the leak's %g", churn.Score, grow.Score)
	}
	if shrink.HasAge || flat.OldShare != 1 {
		t.Errorf("shrinking site (Go heap) has ages %v; flat old share %v, want 1", shrink.HasAge, flat.OldShare)
	}
}

// The score does not depend on the unit of time: a series written within
// a few milliseconds (Flush in a test) ranks like one a minute apart, and
// one whose snapshots all share a time falls back to their order.
func TestRankTimeScale(t *testing.T) {
	minutes := leakranktest.LeakSeries(6)
	want, err := Rank(snapshots(t, minutes), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		step time.Duration
	}{{"milliseconds", time.Millisecond}, {"nanoseconds", time.Nanosecond}, {"same time", 0}} {
		ps := slices.Clone(minutes)
		for i := range ps {
			ps[i].Time = leakranktest.Start.Add(time.Duration(i) * tc.step)
		}
		got, err := Rank(snapshots(t, ps), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got.ByIndex != (tc.step == 0) {
			t.Errorf("%s: by index %v", tc.name, got.ByIndex)
		}
		for i := range want.Sites {
			w, g := want.Sites[i], got.Sites[i]
			if !slices.Equal(w.Stack, g.Stack) || math.Abs(w.Score-g.Score) > 1e-9 || math.Abs(w.Growth-g.Growth) > 1e-6*math.Abs(w.Growth)+1e-6 {
				t.Errorf("%s: site %d is %v score %g growth %g, want %v score %g growth %g",
					tc.name, i, g.Stack, g.Score, g.Growth, w.Stack, w.Score, w.Growth)
			}
		}
		if _, g := rankOf(t, got, leakranktest.GrowingStack); (g.GrowthPerHour == 0) != (tc.step == 0) {
			t.Errorf("%s: growth per hour %g", tc.name, g.GrowthPerHour)
		}
	}
}

// A site that grew and then gave its memory back is no leak.
func TestRankGrewThenFreed(t *testing.T) {
	ps := leakranktest.LeakSeries(5)
	for i, v := range []int64{1, 2, 3, 4, 0} {
		ps[i].Samples = append(ps[i].Samples, leakranktest.Sample{Heap: "default", Stack: []string{"app.batch"}, InUse: v << 20, Age: -1})
	}
	r, err := Rank(snapshots(t, ps), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, s := rankOf(t, r, []string{"app.batch"}); s.Score != 0 || s.InUse != 0 {
		t.Errorf("freed site: score %g, in use %d; want 0, 0", s.Score, s.InUse)
	}
	if i, _ := rankOf(t, r, leakranktest.GrowingStack); i != 0 {
		t.Errorf("growing site ranked %d:\n%s", i+1, describe(r))
	}
}

func TestRankTooFew(t *testing.T) {
	if _, err := Rank(nil, Options{}); err == nil {
		t.Error("no error ranking nothing")
	}
	one := snapshots(t, leakranktest.LeakSeries(1))
	one[0].Path = "only.pb.gz"
	_, err := Rank(one, Options{})
	if err == nil || !strings.Contains(err.Error(), "only one profile (only.pb.gz)") {
		t.Errorf("error %v, want one naming the only file", err)
	}
}

func describe(r *Ranking) string {
	var b strings.Builder
	for _, s := range r.Sites {
		b.WriteString(strings.Join(s.Stack, " < "))
		b.WriteString("\n")
	}
	return b.String()
}

// A steady leak ranks first beside churn several times its step, with
// sampling noise of its own. The bound is statistical: two standard errors
// leave a chance tilt of churn a hundred times the leak's step ahead of it
// about 1% of the time with 10 snapshots, and none with 30, which the
// cases below stay within.
func TestRankChurnNoise(t *testing.T) {
	const step = 64 << 10 // the leak's growth per snapshot
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		n    int
		loud int64
	}{{5, 1}, {5, 10}, {10, 1}, {10, 10}, {30, 10}, {30, 100}} {
		for trial := range 50 {
			ps := make([]leakranktest.Profile, tc.n)
			for i := range ps {
				leak := int64(i+1)*step + rng.Int64N(step/2)
				ps[i] = leakranktest.Profile{
					Time: leakranktest.Start.Add(time.Duration(i) * time.Minute),
					Samples: []leakranktest.Sample{
						{Heap: "default", Stack: leakranktest.GrowingStack, InUse: leak, Age: -1},
						{Heap: "default", Stack: leakranktest.ChurningStack, InUse: tc.loud*step + rng.Int64N(tc.loud*step), Age: -1},
						{Heap: "default", Stack: leakranktest.FlatStack, InUse: 1000 * step, Age: -1},
					},
				}
			}
			r, err := Rank(snapshots(t, ps), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if i, grow := rankOf(t, r, leakranktest.GrowingStack); i != 0 || grow.Score <= 0 {
				t.Errorf("%d snapshots, churn %d× the step, trial %d: leak ranked %d with score %g:\n%s",
					tc.n, tc.loud, trial, i+1, grow.Score, describe(r))
			}
		}
	}
}

// The profiler's own memory is listed but scores nothing, however it grew:
// here it grows faster and more steadily than the leak.
func TestRankSkipsProfilerOwnMemory(t *testing.T) {
	series := leakranktest.LeakSeries(10)
	own := []string{OwnFrame}
	for i := range series {
		series[i].Samples = append(series[i].Samples, leakranktest.Sample{
			Heap: "go", Stack: own, InUse: int64(i+1) << 20, Age: -1,
		})
	}
	r, err := Rank(snapshots(t, series), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if i, s := rankOf(t, r, own); s.Score != 0 || i == 0 {
		t.Errorf("the profiler's own memory ranks %d with score %v, want a score of 0", i+1, s.Score)
	}
	if i, _ := rankOf(t, r, leakranktest.GrowingStack); i != 0 {
		t.Errorf("the leak ranks %d, want first", i+1)
	}
}

// Sizes of math.MaxInt64, which the profiler writes for a size beyond an
// int64, add up to math.MaxInt64: no history, in-use figure or share is
// negative, and the site that grew ranks first.
func TestRankSaturates(t *testing.T) {
	const huge = math.MaxInt64
	shrinks, grows := []string{"app.shrinks"}, []string{"app.grows"}
	sample := func(stack []string, inuse int64) leakranktest.Sample {
		return leakranktest.Sample{Heap: "h", Stack: stack, InUse: inuse, Age: 7200}
	}
	r, err := Rank(snapshots(t, []leakranktest.Profile{
		{Time: leakranktest.Start, Samples: []leakranktest.Sample{sample(shrinks, huge), sample(shrinks, huge), sample(grows, 1000)}},
		{Time: leakranktest.Start.Add(time.Minute), Samples: []leakranktest.Sample{sample(shrinks, 998), sample(grows, huge), sample(grows, huge)}},
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.First.InUse != huge || r.Last.InUse != huge {
		t.Errorf("in use %d then %d, want %d both", r.First.InUse, r.Last.InUse, int64(huge))
	}
	if i, s := rankOf(t, r, grows); i != 0 || !slices.Equal(s.History, []int64{1000, huge}) || s.Score <= 0 || s.OldShare != 1 {
		t.Errorf("growing site ranked %d, history %v, score %g, old share %g", i+1, s.History, s.Score, s.OldShare)
	}
	if _, s := rankOf(t, r, shrinks); !slices.Equal(s.History, []int64{huge, 998}) || s.Share < 0 || s.Growth >= 0 {
		t.Errorf("shrinking site: history %v, share %g, growth %g", s.History, s.Share, s.Growth)
	}
}
