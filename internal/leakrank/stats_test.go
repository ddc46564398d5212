package leakrank

import (
	"math"
	"testing"
)

func TestFitLine(t *testing.T) {
	for _, tc := range []struct {
		name      string
		x, y      []float64
		slope, se float64
	}{
		{"line", []float64{0, 1, 2, 3}, []float64{5, 7, 9, 11}, 2, 0},
		{"uneven x", []float64{0, 0.5, 2, 10}, []float64{1, 0, -3, -19}, -2, 0},
		{"flat", []float64{0, 1, 2}, []float64{4, 4, 4}, 0, 0},
		{"x does not vary", []float64{3, 3, 3}, []float64{1, 2, 3}, 0, 0},
		{"two points", []float64{0, 1}, []float64{0, 5}, 5, 0},
		{"tiny x span", []float64{0, 1e-12, 2e-12}, []float64{0, 1, 2}, 1e12, 0},
		{"huge values", []float64{0, 1}, []float64{1 << 62, 1<<62 + 1<<40}, 1 << 40, 0},
		// Fit 1/3 + x; residuals -1/3, 2/3, -1/3: rss 2/3, over n-2 = 1,
		// over Sxx = 2.
		{"noisy", []float64{0, 1, 2}, []float64{0, 2, 2}, 1, math.Sqrt(1.0 / 3)},
	} {
		m, se := fitLine(tc.x, tc.y)
		if math.Abs(m-tc.slope) > 1e-9*math.Max(1, math.Abs(tc.slope)) {
			t.Errorf("%s: slope = %g, want %g", tc.name, m, tc.slope)
		}
		if math.Abs(se-tc.se) > 1e-9*math.Max(1, math.Abs(tc.slope)) {
			t.Errorf("%s: standard error = %g, want %g", tc.name, se, tc.se)
		}
	}
}

func TestKendallTau(t *testing.T) {
	for _, tc := range []struct {
		name string
		y    []float64
		want float64
	}{
		{"rising", []float64{1, 2, 3, 4}, 1},
		{"falling", []float64{4, 3, 2, 1}, -1},
		{"flat", []float64{7, 7, 7, 7}, 0},
		{"single", []float64{7}, 0},
		// 6 pairs: (1,3)+ (1,2)+ (1,4)+ (3,2)- (3,4)+ (2,4)+ → 4/6
		{"one dip", []float64{1, 3, 2, 4}, 4.0 / 6},
		// Starts halfway: the ties among the leading zeros count as neither.
		{"late start", []float64{0, 0, 1, 2}, 5.0 / 6},
	} {
		if got := kendallTau(tc.y); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: tau = %g, want %g", tc.name, got, tc.want)
		}
	}
}
