package leakrank

import (
	"bytes"
	"slices"
	"testing"

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
	d, err := DeltaProfile(series[1].Build(), series[4].Build())
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
	if _, err := DeltaProfile(a, b); err == nil {
		t.Error("no error subtracting a profile without a period type")
	}
}
