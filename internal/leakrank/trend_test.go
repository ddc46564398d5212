package leakrank

import (
	"math"
	"testing"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

func TestTrend(t *testing.T) {
	// 500 bytes an hour from 1000, exactly, over hours 0 to 3.
	x := []float64{0, 1, 2, 3}
	y := []float64{1000, 1500, 2000, 2500}
	tr := FitTrend(x, y)
	if tr.Growth != 1500 || tr.GrowthError != 0 || tr.GrowthPerHour != 500 || tr.Monotonicity != 0 {
		t.Errorf("FitTrend = %+v, want growth 1500 ± 0, 500 B/h, no monotonicity", tr)
	}
	tr.Monotonicity = Monotonicity(y)
	// Holding 2500 of 10000 bytes, all grown: 1 × min(1500, 2500) / 10000.
	if got := tr.Score(2500, 10000); got != 0.15 {
		t.Errorf("score %g, want 0.15", got)
	}
	for _, tc := range []struct {
		name  string
		trend Trend
		inuse int64
		total int64
		want  float64
	}{
		{"capped at what it holds", Trend{Growth: 1500, Monotonicity: 1}, 1000, 10000, 0.1},
		{"two standard errors off", Trend{Growth: 1500, GrowthError: 250, Monotonicity: 1}, 2500, 10000, 0.1},
		{"weighed by tau", Trend{Growth: 1500, Monotonicity: 0.5}, 2500, 10000, 0.075},
		{"within the noise", Trend{Growth: 1500, GrowthError: 750, Monotonicity: 1}, 2500, 10000, 0},
		{"falling", Trend{Growth: -1500, Monotonicity: -1}, 2500, 10000, 0},
		{"nothing in use", Trend{Growth: 1500, Monotonicity: 1}, 2500, 0, 0},
	} {
		if got := tc.trend.Score(tc.inuse, tc.total); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: score %g, want %g", tc.name, got, tc.want)
		}
	}
}

// Rank scores each site as Trend does over its history: the scoring a
// program that keeps its own figures shares.
func TestRankScoresAsTrend(t *testing.T) {
	snaps := snapshots(t, leakranktest.LeakSeries(12))
	r, err := Rank(snaps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Sites {
		x := positions(snaps, false, s.Heap)
		y := make([]float64, len(s.History))
		for i, v := range s.History {
			y[i] = float64(v)
		}
		want := FitTrend(x, y)
		want.Monotonicity = Monotonicity(y)
		if s.Trend != want || s.Score != want.Score(s.InUse, r.Last.InUse) {
			t.Errorf("%s: trend %+v, score %g; want %+v, %g", s.Function(), s.Trend, s.Score, want, want.Score(s.InUse, r.Last.InUse))
		}
	}
}
