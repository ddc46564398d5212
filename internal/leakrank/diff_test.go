package leakrank

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

func TestDiff(t *testing.T) {
	series := leakranktest.LeakSeries(5)
	snaps := snapshots(t, []leakranktest.Profile{series[0], series[4]})
	changes := Diff(snaps[0], snaps[1])
	// Grew: the leak by 4 × 64 KiB, maybe the churn; shrank: the queue by
	// 4 MiB, last. The flat cache did not change and is left out.
	if len(changes) < 2 || len(changes) > 3 {
		t.Fatalf("%d changes, want 2 or 3: %+v", len(changes), changes)
	}
	for _, c := range changes {
		if slices.Equal(c.Stack, leakranktest.FlatStack) {
			t.Errorf("unchanged site listed: %+v", c)
		}
		if slices.Equal(c.Stack, leakranktest.GrowingStack) && (c.Old != 64<<10 || c.New != 5*64<<10 || c.Delta() != 4*64<<10) {
			t.Errorf("growing site: %+v", c)
		}
	}
	last := changes[len(changes)-1]
	if !slices.Equal(last.Stack, leakranktest.ShrinkingStack) || last.Delta() != -4<<20 {
		t.Errorf("last change %v %d, want the shrinking site at -4 MiB", last.Stack, last.Delta())
	}
	for i := 1; i < len(changes); i++ {
		if changes[i-1].Delta() < changes[i].Delta() {
			t.Errorf("changes not ordered by delta: %d before %d", changes[i-1].Delta(), changes[i].Delta())
		}
	}

	// A site that appears or disappears counts from or to zero.
	gone := Diff(snaps[1], &Snapshot{Sites: map[string]*Usage{}})
	if len(gone) != 4 || gone[0].New != 0 || gone[0].Delta() >= 0 {
		t.Errorf("diff to an empty snapshot: %+v", gone)
	}
}

// The delta profile is after minus before, what pprof -diff_base shows:
// sites that did not change cancel out, ages included, and pprof reads the
// result back.
func TestDeltaProfile(t *testing.T) {
	series := leakranktest.LeakSeries(5)
	d, err := DeltaProfile(series[1].Build(), series[4].Build(), "before.pb.gz", "after.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := profile.ParseData(buf.Bytes())
	if err != nil {
		t.Fatalf("pprof cannot read the delta profile: %v", err)
	}
	if back.TimeNanos != series[4].Time.UnixNano() || back.DurationNanos != 3*60e9 {
		t.Errorf("time %d, duration %d; want the later profile's time and 3 minutes", back.TimeNanos, back.DurationNanos)
	}
	inuse := make(map[string]int64)
	for _, s := range back.Sample {
		if _, ok := s.NumLabel["age"]; ok {
			t.Errorf("age label left in the delta: %v", s.NumLabel)
		}
		inuse[s.Location[0].Line[0].Function.Name] += s.Value[3]
	}
	if got := inuse[leakranktest.GrowingStack[0]]; got != 3*64<<10 {
		t.Errorf("growing site delta %d, want %d", got, 3*64<<10)
	}
	if got := inuse[leakranktest.ShrinkingStack[0]]; got != -3<<20 {
		t.Errorf("shrinking site delta %d, want %d", got, -3<<20)
	}
	if got, ok := inuse[leakranktest.FlatStack[0]]; ok {
		t.Errorf("flat site in the delta with %d bytes; it should cancel out", got)
	}
}

func TestDeltaProfileNoPeriodType(t *testing.T) {
	a := leakranktest.LeakSeries(1)[0].Build()
	b := leakranktest.LeakSeries(1)[0].Build()
	b.PeriodType = nil
	if _, err := DeltaProfile(a, b, "before.pb.gz", "after.pb.gz"); err == nil {
		t.Error("no error subtracting a profile without a period type")
	}
}

// Sizes that add up beyond an int64 are math.MaxInt64, so what grew shows
// as growth and what shrank as a shrink.
func TestDiffSaturates(t *testing.T) {
	const huge = math.MaxInt64
	shrinks, grows := []string{"app.shrinks"}, []string{"app.grows"}
	sample := func(stack []string, inuse int64) leakranktest.Sample {
		return leakranktest.Sample{Heap: "h", Stack: stack, InUse: inuse, Age: -1}
	}
	snaps := snapshots(t, []leakranktest.Profile{
		{Time: leakranktest.Start, Samples: []leakranktest.Sample{sample(shrinks, huge), sample(shrinks, huge), sample(grows, 1000)}},
		{Time: leakranktest.Start.Add(time.Minute), Samples: []leakranktest.Sample{sample(shrinks, 998), sample(grows, huge), sample(grows, huge)}},
	})
	changes := Diff(snaps[0], snaps[1])
	if len(changes) != 2 {
		t.Fatalf("changes %+v, want 2", changes)
	}
	if c := changes[0]; c.Function() != "app.grows" || c.Old != 1000 || c.New != huge || c.Delta() != huge-1000 {
		t.Errorf("first change %+v, delta %d; want app.grows from 1000 to %d", c, c.Delta(), int64(huge))
	}
	if c := changes[1]; c.Function() != "app.shrinks" || c.Old != huge || c.New != 998 || c.Delta() != 998-huge {
		t.Errorf("last change %+v, delta %d; want app.shrinks from %d to 998", c, c.Delta(), int64(huge))
	}
}

// A delta profile of two profiles between which everything grew has no
// negative value to give it away; its comment does, and it is refused as a
// snapshot, by name, whether read alone or with others from a directory.
func TestDeltaProfileIsNoSnapshot(t *testing.T) {
	series := leakranktest.LeakSeries(3)[1:] // every site present in both
	for i := range series {
		for j := range series[i].Samples {
			series[i].Samples[j].InUse = int64(i+1) << 20 // and every site grew
		}
	}
	d, err := DeltaProfile(series[0].Build(), series[1].Build(), "before.pb.gz", "after.pb.gz")
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
	for _, s := range back.Sample {
		if s.Value[3] <= 0 {
			t.Fatalf("delta profile holds %d in-use bytes: want only growth", s.Value[3])
		}
	}
	if _, err := NewSnapshot("delta.pb.gz", back); err == nil || !strings.HasPrefix(err.Error(), "delta.pb.gz: a delta profile") {
		t.Errorf("NewSnapshot: error %v, want one that names delta.pb.gz as a delta profile", err)
	}

	dir := t.TempDir()
	paths := leakranktest.WriteSeries(t, dir, series)
	delta := filepath.Join(dir, "heap-20261126T070000.000000000Z-4242.pb.gz")
	if err := os.WriteFile(delta, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{dir}, {paths[0], delta, paths[1]}} {
		if _, err := Load(args, ReadOptions{}); err == nil || !strings.HasPrefix(err.Error(), delta+": a delta profile") {
			t.Errorf("Load(%q): error %v, want one that names %s as a delta profile", args, err, delta)
		}
	}
}
