package leakrank

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// The Go heap's in-use figures are not those of the moment a profile is
// written. The runtime publishes its heap profile as of the mark
// termination of a past GC cycle, the one before the last unless
// runtime.GC has just run (see the memRecord comment in runtime/mprof.go),
// and cycles grow further apart as the heap grows. Fitted against the
// profiles' own times, a Go heap leak's growth per hour comes out too low,
// the more so the longer it leaks. So the profiler
// writes, in a comment, the time its Go heap figures describe, and the
// ranking measures the Go heap's sites against that time.

// GoHeap is the heap label of the samples read from the Go runtime.
const GoHeap = "go"

// goHeapTimePrefix starts the comment of GoHeapTimeComment.
const goHeapTimePrefix = "go heap figures as of "

// GoHeapTimeComment returns the comment by which a profile says that its
// Go heap samples (those labelled heap=go) describe the heap as of t, the
// end of the mark termination of the GC cycle whose results the runtime
// had published when the profile was read. It is written for a person
// reading `go tool pprof -raw` as much as for GoHeapTime:
//
//	go heap figures as of 2026-12-02T17:30:00.123456789Z (the last GC whose results the runtime published)
//
// t is printed in UTC to the nanosecond. A profile whose time for them is
// unknown (no GC has ended yet) has no such comment: the figures are then
// as of the profile's own time.
func GoHeapTimeComment(t time.Time) string {
	return goHeapTimePrefix + t.UTC().Format(time.RFC3339Nano) + " (the last GC whose results the runtime published)"
}

// GoHeapTime returns the time of p's Go heap figures from its comment (see
// GoHeapTimeComment), and whether it has one. A comment that starts like
// one but whose time does not parse, or is the zero time, is ignored; so
// are comments that disagree, as in a merge of several profiles, whose Go
// heap figures are of several times.
func GoHeapTime(p *profile.Profile) (time.Time, bool) {
	var found time.Time
	for _, c := range p.Comments {
		rest, ok := strings.CutPrefix(c, goHeapTimePrefix)
		if !ok {
			continue
		}
		stamp, _, _ := strings.Cut(rest, " ")
		t, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil || t.IsZero() {
			continue
		}
		if !found.IsZero() && !found.Equal(t) {
			return time.Time{}, false
		}
		found = t.UTC()
	}
	return found, !found.IsZero()
}

// withoutGoHeapTime returns comments without those that start like
// GoHeapTimeComment's, whether their time parses or not.
func withoutGoHeapTime(comments []string) []string {
	return slices.DeleteFunc(comments, func(c string) bool { return strings.HasPrefix(c, goHeapTimePrefix) })
}

// goHeapChangeComment says, in a delta profile, over which times the Go
// heap's figures changed. GoHeapTime does not take it for the time of
// figures.
func goHeapChangeComment(since, at time.Time) string {
	return fmt.Sprintf("go heap figures changed from %s to %s (the GCs whose results the runtime had published)",
		since.UTC().Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano))
}
