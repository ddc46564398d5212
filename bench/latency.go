package bench

import (
	"math/bits"
	"time"
)

// latencyHistogram counts durations in log-linear buckets: 2^subBits
// buckets per power of two, so a quantile read from it is within
// 1/2^subBits (3 %) of the true value. It has a fixed size and records
// without allocating, so a benchmark can time every request without
// knowing b.N in advance. The zero value is an empty histogram.
type latencyHistogram struct {
	counts [64 << subBits]uint64
	n      uint64
}

const subBits = 5

func (h *latencyHistogram) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.n++
}

// bucketOf returns the bucket of v: values below 2^subBits have a bucket
// each; above, the bucket is the power of two and the subBits bits below
// the leading one.
func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - 1 - subBits // shift that leaves subBits+1 bits
	return (e+1)<<subBits | int(v>>e)&(1<<subBits-1)
}

// lowerBound is the smallest value in bucket i.
func lowerBound(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	e := i>>subBits - 1
	return (1<<subBits | uint64(i)&(1<<subBits-1)) << e
}

// quantile returns the q-quantile (0 < q ≤ 1) of the recorded durations,
// as the middle of its bucket, or 0 if none was recorded.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := lowerBound(i), lowerBound(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return time.Duration(lowerBound(len(h.counts) - 1))
}
