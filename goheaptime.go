package profiler

import (
	"runtime/debug"
	"time"
)

// goHeapFiguresAt returns the wall-clock time that the in-use figures of
// the runtime's heap profile, read just before, describe: the end of the
// mark termination of the GC cycle whose results the runtime has
// published. gcForced reports that the caller ran runtime.GC just before
// the read. The zero time means there is no such cycle yet: the figures
// are then as recent as the read itself.
//
// Why the cycle before the last. Mallocs happen in real time but frees
// only when the sweeper reaches a dead object after a GC, so the runtime
// delays both, to publish a consistent picture "as of mark termination"
// (the memRecord comment in runtime/mprof.go): mProf_Malloc counts an
// allocation toward heap profile cycle C+2, mProf_Free a sweep free toward
// C+1, and the mark termination of every GC advances C and folds the new
// cycle C into the published profile (mProf_NextCycle, mProf_Flush, called
// from gcMarkTermination in runtime/mgc.go). So after the mark termination
// of GC n the profile holds what was allocated before the mark termination
// of GC n-1, less what GC n-1 found dead: the heap as of GC n-1. GC n's
// picture waits for the next mark termination, when its sweep frees are
// surely all in. Only runtime.GC, which sweeps to the end before
// returning, publishes it at once (mProf_PostSweep): hence gcForced. This
// is the "up to two garbage collection cycles old" of runtime.MemProfile's
// doc: a leak's figures stop at GC n-1 while the program leaks on.
//
// debug.ReadGCStats gives the times: PauseEnd holds the wall-clock end of
// each cycle's mark termination, most recent first, recorded with the
// world stopped in the same pause that advances the profile cycle, so the
// count of cycles and the published one never disagree. It takes a lock,
// not a stop of the world as runtime.ReadMemStats does; runtime/metrics
// counts cycles but has no time for them.
//
// Until two cycles have ended the profile is not yet shaped this way:
// while nothing is published, runtime.MemProfile folds in every cycle,
// the latest allocations included (the empty case of memProfileInternal),
// so the time of the read is the best there is; zero says to use it.
//
// Limits. A cycle that ends between the read of the profile and this call
// makes the time a cycle too late: call it right after the read. If the
// program itself calls runtime.GC (or debug.FreeOSMemory), the figures are
// a cycle newer than the time returned until the next GC: nothing public
// tells whether a forced cycle has been published early. So are they under
// GODEBUG=gcstoptheworld=2, whose sweep runs with the world stopped and
// publishes each cycle at once (gcSweep in runtime/mgc.go).
func goHeapFiguresAt(gcForced bool) time.Time {
	var s debug.GCStats
	debug.ReadGCStats(&s)
	back := 1 // the cycle before the last
	if gcForced {
		back = 0
	}
	if len(s.PauseEnd) <= back {
		return time.Time{}
	}
	return s.PauseEnd[back]
}
