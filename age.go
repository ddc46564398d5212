package profiler

import "sort"

// Object age. Each live hook sample records when it was allocated, and
// profiles carry its age as the numeric label `age` in seconds, so that
// `go tool pprof -tagfocus=age=1hr: FILE` keeps only objects alive for an
// hour or more: memory that stays is what a leak is made of.
//
// Ages are rounded down to the boundaries below rather than written to the
// second, which would make every sample of a steady allocation site
// distinct and profiles grow with the age spread of the live set. The
// boundaries are the round durations people filter on, so a filter such as
// age=1hr: or age=300s: is exact: an object shows as 3600 s only once it is
// an hour old. (pprof's time units are ns, us, ms, s and hr, and a filter
// value without a unit never matches a labelled one: write age=300s:, not
// age=300: and not age=5m:, which matches nothing.)
var ageBuckets = [...]uint32{
	0, 1, 2, 5, 10, 15, 30, // seconds
	60, 120, 300, 600, 900, 1800, // minutes
	3600, 7200, 10800, 21600, 43200, // hours
	86400, 172800, 345600, 604800, 1209600, 2592000, // days
}

// ageBits holds a bucket index (len(ageBuckets) ≤ 1<<ageBits); a group id
// shifted by it still fits 32 bits (maxGroups ≤ 1<<(32-ageBits)).
const ageBits = 5

// ageBucket returns the index of the largest boundary not above age. Ages
// under a minute, the most common, are looked up in a table.
func ageBucket(age uint32) int {
	if age < uint32(len(youngBuckets)) {
		return int(youngBuckets[age])
	}
	return sort.Search(len(ageBuckets), func(i int) bool { return ageBuckets[i] > age }) - 1
}

var youngBuckets = func() (t [60]uint8) {
	for age := range t {
		for i, b := range ageBuckets {
			if b <= uint32(age) {
				t[age] = uint8(i)
			}
		}
	}
	return t
}()
