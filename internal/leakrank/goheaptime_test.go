package leakrank

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

func TestGoHeapTimeComment(t *testing.T) {
	at := time.Date(2026, 12, 2, 18, 30, 0, 123456789, time.FixedZone("CET", 3600))
	c := GoHeapTimeComment(at)
	if want := "go heap figures as of 2026-12-02T17:30:00.123456789Z (the last GC whose results the runtime published)"; c != want {
		t.Errorf("comment %q, want %q", c, want)
	}
	// Through the file format, among the profiler's other comments.
	p := leakranktest.Profile{Time: leakranktest.Start, Comments: []string{"go heap: runtime.MemProfileRate 524288", c}}
	back, err := ParseProfile("p.pb.gz", p.Encode(t), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := GoHeapTime(back)
	if !ok || !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("GoHeapTime = %v, %v; want %v in UTC", got, ok, at)
	}
}

// A comment that does not parse is ignored; comments that disagree, as in
// a merge of profiles, say nothing.
func TestGoHeapTimeIgnores(t *testing.T) {
	at := leakranktest.Start.Add(-time.Minute)
	good := GoHeapTimeComment(at)
	for _, tc := range []struct {
		name     string
		comments []string
		want     time.Time // zero for none
	}{
		{"none", nil, time.Time{}},
		{"other comments", []string{"leakhunt heap profile", "go heap: in-use as of the last completed GC"}, time.Time{}},
		{"bare time", []string{"go heap figures as of"}, time.Time{}},
		{"empty time", []string{"go heap figures as of  (the last GC)"}, time.Time{}},
		{"not RFC 3339", []string{"go heap figures as of 17:29 yesterday"}, time.Time{}},
		{"no zone", []string{"go heap figures as of 2026-11-26T05:59:00"}, time.Time{}},
		{"zero time", []string{"go heap figures as of 0001-01-01T00:00:00Z (no GC yet)"}, time.Time{}},
		{"elsewhere in a comment", []string{"note: " + good}, time.Time{}},
		{"no tail", []string{"go heap figures as of 2026-11-26T05:59:00Z"}, at},
		{"bad then good", []string{"go heap figures as of then", good}, at},
		{"twice the same", []string{good, good}, at},
		{"two times", []string{good, GoHeapTimeComment(at.Add(time.Second))}, time.Time{}},
		{"delta profile", []string{goHeapChangeComment(at, at.Add(time.Minute))}, time.Time{}},
	} {
		got, ok := GoHeapTime(leakranktest.Profile{Comments: tc.comments}.Build())
		if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
			t.Errorf("%s: GoHeapTime = %v, %v; want %v", tc.name, got, ok, tc.want)
		}
	}
}

// goLagSeries returns n profiles a minute apart of a program that leaks
// goRate bytes an hour in the Go heap and hookRate in a hook heap, both
// from leakStart, with a GC cycle at each of gcs. As the runtime does, the
// Go heap's figures are those of the mark termination of the cycle before
// the last, and each profile says when that was; before two cycles have
// ended, the figures are of the profile's time, and it says nothing.
func goLagSeries(n int, leakStart time.Time, goRate, hookRate float64, gcs []time.Time) []leakranktest.Profile {
	ps := make([]leakranktest.Profile, n)
	for i := range ps {
		now := leakranktest.Start.Add(time.Duration(i) * time.Minute)
		ended := 0
		for ended < len(gcs) && gcs[ended].Before(now) {
			ended++
		}
		figures := now
		var comments []string
		if ended >= 2 {
			figures = gcs[ended-2]
			comments = []string{GoHeapTimeComment(figures)}
		}
		leaked := func(rate float64, at time.Time) int64 {
			return int64(math.Round(rate*at.Sub(leakStart).Hours()/leakranktest.ObjectSize)) * leakranktest.ObjectSize
		}
		ps[i] = leakranktest.Profile{
			Time:     now,
			Duration: now.Sub(leakStart),
			Comments: comments,
			Samples: []leakranktest.Sample{
				{Heap: "go", Stack: leakranktest.GrowingStack, InUse: leaked(goRate, figures), Age: -1},
				{Heap: "default", Stack: leakranktest.GrowingStack, InUse: leaked(hookRate, now), Age: 0},
				{Heap: "go", Stack: leakranktest.FlatStack, InUse: 64 << 20, Age: -1},
			},
		}
	}
	return ps
}

// GC cycles that grow further apart as the leaked heap grows, as with
// GOGC: the Go heap's figures fall further and further behind.
var growingGCs = func() []time.Time {
	var out []time.Time
	at, gap := leakranktest.Start.Add(10*time.Second), 10*time.Second
	for range 12 {
		out = append(out, at)
		at, gap = at.Add(gap), gap*3/2
	}
	return out
}()

// The Go heap's growth is measured against the time its figures describe,
// and comes out right; against the profiles' times, it would come out far
// too low. Every other heap is measured against the profiles' times.
func TestRankGoHeapFiguresTime(t *testing.T) {
	const goRate, hookRate = 3 << 30, 1 << 30 // bytes an hour
	leakStart := leakranktest.Start.Add(-time.Minute)
	ps := goLagSeries(12, leakStart, goRate, hookRate, growingGCs)
	if len(ps[0].Comments) != 0 || len(ps[11].Comments) != 1 {
		t.Fatalf("the series should start unstamped and end stamped")
	}
	snaps := snapshots(t, ps)
	if !snaps[0].GoHeapTime.IsZero() || snaps[11].GoHeapTime.IsZero() || !snaps[11].GoHeapTime.Before(snaps[11].Time) {
		t.Fatalf("Go heap times %v ... %v", snaps[0].GoHeapTime, snaps[11].GoHeapTime)
	}
	r, err := Rank(snaps, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var goLeak, hookLeak SiteRank
	for _, s := range r.Sites {
		if slices.Equal(s.Stack, leakranktest.GrowingStack) {
			if s.Heap == "go" {
				goLeak = s
			} else {
				hookLeak = s
			}
		}
	}
	// Rounding to whole objects leaves a few bytes an hour.
	if math.Abs(goLeak.GrowthPerHour-goRate) > 1e-6*goRate {
		t.Errorf("Go heap leak grows %.4g B/h, want %.4g", goLeak.GrowthPerHour, float64(goRate))
	}
	if math.Abs(hookLeak.GrowthPerHour-hookRate) > 1e-6*hookRate {
		t.Errorf("hook heap leak grows %.4g B/h, want %.4g", hookLeak.GrowthPerHour, float64(hookRate))
	}
	span := snaps[11].GoHeapTime.Sub(snaps[0].Time).Hours()
	if want := goRate * span; math.Abs(goLeak.Growth-want) > 1e-6*want {
		t.Errorf("Go heap leak grew %.4g B over the series, want %.4g", goLeak.Growth, want)
	}
	if goLeak.Score <= hookLeak.Score || r.Sites[0].Heap != "go" {
		t.Errorf("Go heap leak scores %g, hook leak %g; want the faster leak first", goLeak.Score, hookLeak.Score)
	}

	// Against the profiles' times, the same figures give a slope far too
	// low: the lag this corrects is not a detail.
	x, y := make([]float64, len(snaps)), make([]float64, len(snaps))
	for i, s := range snaps {
		x[i] = s.Time.Sub(snaps[0].Time).Hours()
		y[i] = float64(goLeak.History[i])
	}
	if naive, _ := fitLine(x, y); naive > 0.8*goRate {
		t.Errorf("the series does not lag: %.4g B/h against the profiles' times", naive)
	}

	// A comment that does not parse is ignored, and the profile's time is
	// taken; so it is for a profile that has none.
	ps[1].Comments = []string{"go heap figures as of yesterday"}
	snaps = snapshots(t, ps)
	if !snaps[1].GoHeapTime.IsZero() {
		t.Errorf("Go heap time %v from a comment that does not parse", snaps[1].GoHeapTime)
	}
}

// Without the comment, as in profiles written before it, the Go heap is
// measured against the profiles' times, as every heap is.
func TestRankGoHeapWithoutFiguresTime(t *testing.T) {
	ps := goLagSeries(12, leakranktest.Start.Add(-time.Minute), 3<<30, 1<<30, growingGCs)
	stamped, err := Rank(snapshots(t, ps), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		ps[i].Comments = nil
	}
	plain, err := Rank(snapshots(t, ps), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range plain.Sites {
		if s.Heap != "go" && s.GrowthPerHour != stamped.Sites[i].GrowthPerHour {
			t.Errorf("%s heap: %g B/h with the Go heap's times, %g without", s.Heap, stamped.Sites[i].GrowthPerHour, s.GrowthPerHour)
		}
		if s.Heap == "go" && slices.Equal(s.Stack, leakranktest.GrowingStack) {
			x, y := make([]float64, len(ps)), make([]float64, len(ps))
			for j, p := range ps {
				x[j] = p.Time.Sub(ps[0].Time).Hours()
				y[j] = float64(s.History[j])
			}
			if want, _ := fitLine(x, y); math.Abs(s.GrowthPerHour-want) > 1e-9*want {
				t.Errorf("Go heap leak without times: %g B/h, want %g against the profiles' times", s.GrowthPerHour, want)
			}
		}
	}
}

// The Go heap's figures of a program that stopped collecting (GOGC=off
// after a while) stay those of one cycle: no growth can be seen, and none
// is reported, even though the profiles' times move on.
func TestRankGoHeapFiguresFrozen(t *testing.T) {
	ps := goLagSeries(5, leakranktest.Start.Add(-time.Minute), 3<<30, 1<<30, growingGCs[:3])
	r, err := Rank(snapshots(t, ps[2:]), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Sites {
		if s.Heap == "go" && (s.Growth != 0 || s.GrowthPerHour != 0 || s.Score != 0) {
			t.Errorf("frozen Go heap site %v: growth %g, %g/h, score %g", s.Stack, s.Growth, s.GrowthPerHour, s.Score)
		}
	}
}

// A delta profile is not as of either profile's Go heap time: it says
// over which times the Go heap changed instead.
func TestDeltaProfileGoHeapTime(t *testing.T) {
	ps := goLagSeries(12, leakranktest.Start.Add(-time.Minute), 3<<30, 1<<30, growingGCs)
	for _, tc := range []struct {
		name          string
		before, after leakranktest.Profile
		want          string
	}{
		{"both", ps[5], ps[11], goHeapChangeComment(must(GoHeapTime(ps[5].Build())), must(GoHeapTime(ps[11].Build())))},
		{"after only", ps[0], ps[11], goHeapChangeComment(ps[0].Time, must(GoHeapTime(ps[11].Build())))},
		{"neither", ps[0], ps[0], ""},
	} {
		d, err := DeltaProfile(tc.before.Build(), tc.after.Build(), "before.pb.gz", "after.pb.gz")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := d.Write(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ParseProfile("delta.pb.gz", buf.Bytes(), ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if at, ok := GoHeapTime(back); ok {
			t.Errorf("%s: the delta profile claims Go heap figures as of %v", tc.name, at)
		}
		var changed []string
		for _, c := range back.Comments {
			if strings.HasPrefix(c, "go heap figures") {
				changed = append(changed, c)
			}
		}
		if tc.want == "" && len(changed) != 0 || tc.want != "" && (len(changed) != 1 || changed[0] != tc.want) {
			t.Errorf("%s: Go heap comments %q, want %q", tc.name, changed, tc.want)
		}
	}
}

func must(t time.Time, ok bool) time.Time {
	if !ok {
		panic("no Go heap time")
	}
	return t
}
