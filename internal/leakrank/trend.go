package leakrank

import (
	"math"
	"slices"
	"time"
)

// A Trend is how a site's in-use bytes moved over a series of figures:
// what Rank scores for each site of a series of snapshots, and what a
// program watching its own profiles scores over the figures it keeps, so
// that both score a site alike.
type Trend struct {
	// Growth is the growth in bytes over the series of the least-squares
	// line through the figures: slope times the span of their times.
	// GrowthError is its standard error, from the scatter of the figures
	// about the line.
	Growth      float64
	GrowthError float64
	// GrowthPerHour is the slope in bytes per hour.
	GrowthPerHour float64
	Monotonicity  float64 // Kendall's tau of the figures against their order, -1 to 1
}

// FitTrend fits the least-squares line through the in-use bytes y at the
// times x, in hours from any origin, and returns every field of the Trend
// but Monotonicity, which costs O(n²) where the fit costs O(n): a caller
// that scores many series can leave it out of those whose growth is not
// significant, which score 0 whatever it is (see Score), and add it with
// Monotonicity for the others. Where x does not vary there is no line: the
// growth and its error are 0.
func FitTrend(x, y []float64) Trend {
	m, se := fitLine(x, y)
	width := slices.Max(x) - slices.Min(x)
	return Trend{Growth: m * width, GrowthError: se * width, GrowthPerHour: m}
}

// Monotonicity returns Kendall's tau of y against its order (see
// kendallTau): 1 for figures that rise at every step, -1 for figures that
// always fall, near 0 for noise or a flat line.
func Monotonicity(y []float64) float64 { return kendallTau(y) }

// HoursSince returns the time from origin to t in hours: where figures of
// time t lie on the x-axis of a fit.
func HoursSince(origin, t time.Time) float64 {
	// Subtract first: float64 of a UnixNano is only good to 256ns.
	return float64(t.Sub(origin)) / float64(time.Hour)
}

// Score returns the share of the latest in-use memory, total, that a
// site's steady growth accounts for, where the site holds inuse bytes now
// and its figures moved as t:
//
//	score = max(0, tau) × min(max(0, growth - 2×stderr), inuse) / total
//
// Each term has its reason:
//   - growth is the least-squares growth over the series, so a site that
//     stays flat or shrinks scores 0 however large it is;
//   - 2×stderr, two standard errors of that growth, takes off what the
//     scatter about the line could produce by chance: a churning site whose
//     line tilts up by luck keeps nothing, a steady leak keeps all of it;
//   - the cap at what the site holds now: memory given back was not leaked;
//   - tau, Kendall's against time, weighs it by how steadily it came: 1 for
//     a rise at every snapshot, less for one jump or a late start;
//   - dividing by the latest total in-use makes it a number between 0 and 1
//     that depends neither on the unit of time nor on the length of the
//     series: one written within milliseconds ranks like one a day long.
//
// Within one ranking the total is a constant, so sites are ordered by
// steady growth in bytes. The profiler's own memory (see OwnFrame) is not
// to be scored: Rank gives it 0.
func (t Trend) Score(inuse, total int64) float64 {
	sure := t.Growth - 2*t.GrowthError
	if total <= 0 || t.Monotonicity <= 0 || sure <= 0 {
		return 0
	}
	return t.Monotonicity * math.Min(sure, float64(inuse)) / float64(total)
}
