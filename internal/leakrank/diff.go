package leakrank

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/google/pprof/profile"
)

// Change is the memory a site holds in two snapshots.
type Change struct {
	Site
	Old, New int64 // in-use bytes
}

// Delta returns the growth from Old to New, negative for a shrink; one
// beyond an int64 is math.MaxInt64 or math.MinInt64.
func (c Change) Delta() int64 { return saturatingSub(c.New, c.Old) }

// Diff returns the sites whose in-use bytes differ between before and
// after: the one that grew most first, the one that shrank most last. For
// the Go heap's sites, that is the change between the snapshots'
// GoHeapTime where known, not their Time.
func Diff(before, after *Snapshot) []Change {
	var out []Change
	for k, u := range after.Sites {
		c := Change{Site: u.Site, New: u.InUse}
		if o := before.Sites[k]; o != nil {
			c.Old = o.InUse
		}
		if c.Delta() != 0 {
			out = append(out, c)
		}
	}
	for k, o := range before.Sites {
		if after.Sites[k] == nil {
			out = append(out, Change{Site: o.Site, Old: o.InUse})
		}
	}
	slices.SortFunc(out, func(a, b Change) int {
		if c := cmp.Compare(b.Delta(), a.Delta()); c != 0 {
			return c
		}
		return compareSites(a.Site, b.Site)
	})
	return out
}

// DeltaProfile returns after minus before as one profile that pprof opens
// like any other, the way `go tool pprof -diff_base` computes it: before
// with its values negated, merged with after, so that samples present in
// both cancel out. Unlike -diff_base, the result does not mark the base
// samples, so it is a plain profile of the change. The age label is
// dropped from both first: objects age between two snapshots, and the same
// live objects would otherwise show as a removal in one age step and an
// addition in the next. Their comments of GoHeapTimeComment are dropped
// too, since the difference is not as of either time, and replaced by one
// that says over which times the Go heap's figures changed.
//
// The result is marked as a delta profile by a comment that names its
// inputs, "leakhunt delta profile: afterName minus beforeName", for the
// person reading it in pprof and for NewSnapshot, which refuses it: where
// every site grew, nothing else tells it from a snapshot.
//
// DeltaProfile uses up its arguments: it changes both.
func DeltaProfile(before, after *profile.Profile, beforeName, afterName string) (*profile.Profile, error) {
	// Merge compares period types and would dereference a missing one.
	if before.PeriodType == nil || after.PeriodType == nil {
		return nil, fmt.Errorf("cannot subtract profiles without a period type")
	}
	at, since := after.TimeNanos, before.TimeNanos
	goSince, stampedBefore := GoHeapTime(before)
	goAt, stampedAfter := GoHeapTime(after)
	if !stampedBefore {
		goSince = time.Unix(0, since)
	}
	if !stampedAfter {
		goAt = time.Unix(0, at)
	}
	before.Comments = withoutGoHeapTime(before.Comments)
	after.Comments = withoutGoHeapTime(after.Comments)
	before.RemoveNumLabel("age")
	after.RemoveNumLabel("age")
	before.Scale(-1)
	// after first: Merge takes the first profile's main mapping and
	// default sample type.
	d, err := profile.Merge([]*profile.Profile{after, before})
	if err != nil {
		return nil, fmt.Errorf("subtracting profiles: %w", err)
	}
	// Merge keeps the earliest time and adds the durations; the delta is a
	// view at after's time of what happened since before's.
	d.TimeNanos = at
	d.DurationNanos = max(at-since, 0)
	if stampedBefore || stampedAfter {
		d.Comments = append(d.Comments, goHeapChangeComment(goSince, goAt))
	}
	d.Comments = append(d.Comments, deltaPrefix+afterName+" minus "+beforeName)
	return d, nil
}
