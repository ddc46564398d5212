package leakrank

// Runs splits snaps, ordered by time, into the runs of the program they
// come from, oldest first. The profiler keeps its files across restarts,
// so a directory often holds several runs, and in-use memory starts again
// from nothing at each: ranked as one series, a leak would look like a
// saw. A run ends where a profile's duration (time since the profiler
// started) is shorter than the one before it. Profiles without a duration,
// like runtime/pprof's, are never split.
func Runs(snaps []*Snapshot) [][]*Snapshot {
	var runs [][]*Snapshot
	start := 0
	for i := 1; i < len(snaps); i++ {
		if d := snaps[i].Duration; d > 0 && d < snaps[i-1].Duration {
			runs = append(runs, snaps[start:i])
			start = i
		}
	}
	if len(snaps) > 0 {
		runs = append(runs, snaps[start:])
	}
	return runs
}
