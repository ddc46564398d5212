package leakrank

import (
	"cmp"
	"math"
)

// fitLine returns the least-squares slope of y against x and the slope's
// standard error, estimated from the residuals; both are 0 when x does not
// vary (there is no line to fit), and the error is 0 for two points, which
// any line fits. The sums are taken around the means, the numerically
// stable form, and the residuals are summed directly rather than as
// Syy - slope*Sxy, which cancels to noise when the fit is exact.
func fitLine(x, y []float64) (slope, stderr float64) {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i] / n
		my += y[i] / n
	}
	var sxy, sxx float64
	for i := range x {
		dx := x[i] - mx
		sxy += dx * (y[i] - my)
		sxx += dx * dx
	}
	if sxx == 0 {
		return 0, 0
	}
	slope = sxy / sxx
	if len(x) <= 2 {
		return slope, 0
	}
	var rss float64
	for i := range x {
		r := y[i] - my - slope*(x[i]-mx)
		rss += r * r
	}
	return slope, math.Sqrt(rss / (n - 2) / sxx)
}

// kendallTau returns Kendall's tau-a of y against its index: the share of
// pairs i < j with y[j] > y[i] minus the share with y[j] < y[i]. It is 1
// for a series that rises at every step, -1 for one that always falls, and
// near 0 for noise or a flat line, whatever the size of the steps; unlike
// counting consecutive increases it shrugs off the sampling noise of a few
// snapshots, because every pair of snapshots votes. Ties count as neither,
// so a site that appears halfway through a series and then grows scores
// below one that grows throughout. O(n²) in the number of snapshots, which
// the profiler bounds (100 files by default).
func kendallTau(y []float64) float64 {
	n := len(y)
	if n < 2 {
		return 0
	}
	var sum int
	for i := range n {
		for j := i + 1; j < n; j++ {
			sum += cmp.Compare(y[j], y[i])
		}
	}
	return float64(sum) / float64(n*(n-1)/2)
}

// saturatingAdd returns a+b, or the int64 nearest to it if it does not
// fit. In-use bytes add up with it: the profiler writes a size beyond an
// int64 as math.MaxInt64, and two of them would otherwise wrap around to
// -2, a negative figure that reads as a shrink.
func saturatingAdd(a, b int64) int64 {
	s := a + b
	// Adding b moves a in b's direction unless the sum wrapped around.
	if (s > a) != (b > 0) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

// saturatingSub returns a-b, or the int64 nearest to it if it does not
// fit.
func saturatingSub(a, b int64) int64 {
	d := a - b
	// Subtracting b moves a against b's direction unless the difference
	// wrapped around.
	if (d < a) != (b > 0) {
		if b > 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return d
}
