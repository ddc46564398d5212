package profiler

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The watcher decides when memory calls for a profile of its own. A
// process killed for its memory, by the kernel at its cgroup's limit or by
// an orchestrator, is killed between two periodic profiles, with SIGKILL,
// at which nothing runs: the profile that would explain the kill is never
// written. So the background goroutine reads the process's memory every
// poll (WithMemoryPoll) and writes a profile
//
//   - when the usage of the effective limit (the cgroup's working set
//     against its memory limit, or the Go runtime's memory against
//     GOMEMLIMIT, whichever is the nearer) first rises past one of the
//     limit fractions (WithLimitFractions): the last profile before a kill
//     at the limit is at most one poll and one climb of a fraction away
//     from it; a fraction fires again only after usage fell 5 points below
//     it;
//   - when the process's memory (the larger of its resident set and the
//     Go runtime's memory) reaches a new peak, the peak margin
//     (WithPeakMargin) above the memory of the last peak profile, or of
//     Start, and at least minPeak: the largest the process ever was is
//     explained on disk within that margin. Below minPeak the periodic
//     profiles do that well enough, and a program's start, which climbs
//     by large ratios from a few MiB, writes no series of small profiles.
//
// Peak profiles are written at most one a second, since a climb without
// a limit has no end to wait for; a limit fraction fires once on its way
// up, however fast the climb, and the highest passed fires for all those
// below it. A garbage
// collection runs just before each, so that their Go heap figures describe
// the heap as it is, not as of two cycles before (see doc.go, Accuracy):
// near a kill the difference is the leak's last cycles, and a GC costs
// little next to the kill. Their file names carry a tag, -peak or
// -limit<percent>, retention keeps the newest of each tag, and their
// comments say what triggered them, with the memory figures.
type watcher struct {
	fractions []float64 // ascending
	margin    float64   // 0: no peak profiles
	armed     []bool    // per fraction: may fire
	peak      uint64    // memory at the last peak or limit profile, or at Start
	lastPeak  time.Time // of the last peak profile
}

const (
	// rearmBelow is how far below a fraction usage must fall before the
	// fraction fires again: a process that hovers at the fraction would
	// otherwise write a profile at every poll.
	rearmBelow = 0.05

	// minPeakGap spaces peak profiles.
	minPeakGap = time.Second

	// minPeak is the least memory at which a peak profile is written.
	minPeak = 64 << 20
)

func newWatcher(fractions []float64, margin float64, start memoryReading) *watcher {
	w := &watcher{fractions: fractions, margin: margin, armed: make([]bool, len(fractions)), peak: start.process()}
	for i := range w.armed {
		w.armed[i] = true
	}
	return w
}

// A trigger is a profile the watcher asks for, and why.
type trigger struct {
	tag    string // of the file name: "peak" or "limit<percent>"
	reason string // for the profile's comments and the log
}

// check takes one reading and reports the profile it calls for, if any.
func (w *watcher) check(m memoryReading, now time.Time) (trigger, bool) {
	ratio, limit, limited := m.fraction()
	if limited {
		for i, f := range w.fractions {
			if ratio < f-rearmBelow {
				w.armed[i] = true
			}
		}
	}
	if limited {
		// The highest fraction passed fires, once for all those below.
		fire := -1
		for i, f := range w.fractions {
			if ratio >= f && w.armed[i] {
				fire = i
			}
		}
		if fire >= 0 {
			for i, f := range w.fractions {
				if ratio >= f {
					w.armed[i] = false
				}
			}
			w.peak = max(w.peak, m.process())
			pct := strconv.FormatFloat(100*w.fractions[fire], 'f', -1, 64)
			return trigger{
				tag:    "limit" + strings.ReplaceAll(pct, ".", ""),
				reason: fmt.Sprintf("memory at %.1f%% of the %s limit, past %s%%", 100*ratio, limit, pct),
			}, true
		}
	}
	if mem := m.process(); w.margin > 0 && mem >= minPeak && float64(mem) >= float64(w.peak)*(1+w.margin) && now.Sub(w.lastPeak) >= minPeakGap {
		before := w.peak
		w.peak, w.lastPeak = mem, now
		return trigger{
			tag:    "peak",
			reason: fmt.Sprintf("new memory peak: %s, %.0f%% above the %s of the last peak profile (or of Start)", formatMiB(mem), 100*(float64(mem)/float64(before)-1), formatMiB(before)),
		}, true
	}
	return trigger{}, false
}

// process is the process's memory for peaks: the larger of its resident
// set, which counts memory the Go runtime does not see (C, mmap), and the
// Go runtime's memory, which counts heap not yet touched, and so not
// resident, that the heap profile shows all the same.
func (m memoryReading) process() uint64 {
	return max(m.resident, m.goTotal)
}

// describe states the figures of m for a profile's comments.
func (m memoryReading) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "memory: Go runtime %s (live heap %s), GOMEMLIMIT %s", formatMiB(m.goTotal), formatMiB(m.heapLive), limitText(m.goLimit))
	if m.resident > 0 {
		fmt.Fprintf(&b, ", resident %s", formatMiB(m.resident))
	}
	if m.cgroupUsage > 0 || m.cgroupLimit > 0 {
		fmt.Fprintf(&b, ", cgroup working set %s, limit %s", formatMiB(m.cgroupUsage), limitText(m.cgroupLimit))
	}
	return b.String()
}

func limitText(limit uint64) string {
	if limit == 0 {
		return "none"
	}
	return formatMiB(limit)
}

// formatMiB formats bytes in MiB, to a tenth.
func formatMiB(n uint64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}
