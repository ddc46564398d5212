package leakrank

import (
	"math"
	"math/big"
	"math/rand/v2"
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

func TestSaturatingAddSub(t *testing.T) {
	const hi, lo = math.MaxInt64, math.MinInt64
	for _, tc := range []struct{ a, b, sum, diff int64 }{
		{1, 2, 3, -1},
		{hi, hi, hi, 0},
		{hi, 1, hi, hi - 1},
		{hi, -1, hi - 1, hi},
		{lo, lo, lo, 0},
		{lo, -1, lo, lo + 1},
		{lo, 1, lo + 1, lo},
		{0, lo, lo, hi},
		{-1, lo, lo, hi},
		{-2, hi, hi - 2, lo},
		{hi, lo, -1, hi},
		{lo, hi, -1, lo},
		{0, 0, 0, 0},
	} {
		if got := saturatingAdd(tc.a, tc.b); got != tc.sum {
			t.Errorf("saturatingAdd(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.sum)
		}
		if got := saturatingSub(tc.a, tc.b); got != tc.diff {
			t.Errorf("saturatingSub(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.diff)
		}
	}
	// Against exact arithmetic, clamped, on values that mostly overflow.
	clamp := func(x *big.Int) int64 {
		switch {
		case x.Cmp(big.NewInt(hi)) > 0:
			return hi
		case x.Cmp(big.NewInt(lo)) < 0:
			return lo
		}
		return x.Int64()
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 10000 {
		a, b := int64(rng.Uint64()), int64(rng.Uint64())
		if want := clamp(new(big.Int).Add(big.NewInt(a), big.NewInt(b))); saturatingAdd(a, b) != want {
			t.Fatalf("saturatingAdd(%d, %d) = %d, want %d", a, b, saturatingAdd(a, b), want)
		}
		if want := clamp(new(big.Int).Sub(big.NewInt(a), big.NewInt(b))); saturatingSub(a, b) != want {
			t.Fatalf("saturatingSub(%d, %d) = %d, want %d", a, b, saturatingSub(a, b), want)
		}
	}
}
