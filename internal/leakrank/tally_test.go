package leakrank

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// tallyProfiles are profiles whose sites a Tally must tell apart exactly as
// a Snapshot does.
func tallyProfiles() []*profile.Profile {
	out := []*profile.Profile{}
	for _, p := range leakranktest.LeakSeries(3) {
		out = append(out, p.Build())
	}
	stack := []string{"app.f", "main.main"}
	p := leakranktest.Profile{Time: leakranktest.Start, Samples: []leakranktest.Sample{
		{Heap: "default", Stack: stack, InUse: 1 << 20, Age: 60},
		{Heap: "default", Stack: stack, InUse: 2 << 20, Age: 3600}, // same site, other age
		{Heap: "go", Stack: stack, InUse: 4 << 20, Age: -1},        // same stack, other heap
		{Heap: "default", Stack: []string{"app.g"}, InUse: 0, Age: -1},
		{Heap: "default", Stack: []string{"app.f"}, InUse: 8 << 20, Age: -1}, // a prefix of stack
		{Heap: "go", Stack: []string{OwnFrame}, InUse: 16 << 20, Age: -1},
	}}.Build()
	// An inlined call, and a location without lines. The same names split
	// over locations otherwise (app.h inlined into app.f, or not) are one
	// site, as in a Snapshot.
	inner := &profile.Function{ID: 99, Name: "app.h"}
	p.Function = append(p.Function, inner)
	f := p.Sample[4].Location[0]
	inlined := &profile.Location{ID: 100, Line: append([]profile.Line{{Function: inner}}, f.Line...)}
	h := &profile.Location{ID: 101, Line: []profile.Line{{Function: inner}}}
	bare := &profile.Location{ID: 102, Address: 0x4abc}
	p.Location = append(p.Location, inlined, h, bare)
	p.Sample = append(p.Sample,
		&profile.Sample{Location: []*profile.Location{inlined, bare}, Value: []int64{1, 1024, 1, 1024}, Label: map[string][]string{"heap": {"default"}}},
		&profile.Sample{Location: []*profile.Location{h, f, bare}, Value: []int64{1, 2048, 1, 2048}, Label: map[string][]string{"heap": {"default"}}},
	)
	out = append(out, p)
	// Sparse location IDs, which the Tally does not index.
	q := leakranktest.Profile{Time: leakranktest.Start, Samples: []leakranktest.Sample{{Heap: "default", Stack: stack, InUse: 1 << 20, Age: -1}}}.Build()
	for i, l := range q.Location {
		l.ID = uint64(i+1) << 40
	}
	return append(out, q)
}

// A Tally has the sites, in-use bytes and totals of the Snapshot of the
// same profile, and names each site as NewSite does; its IDs stay the same
// from one profile to the next.
func TestTallyMatchesSnapshot(t *testing.T) {
	var tally Tally
	ids := make(map[string]SiteID) // by Snapshot key
	for n, p := range tallyProfiles() {
		s, err := NewSnapshot("p", p)
		if err != nil {
			t.Fatal(err)
		}
		if err := tally.Read("p", p); err != nil {
			t.Fatal(err)
		}
		if tally.InUse != s.InUse || !tally.Time.Equal(s.Time) || len(tally.Sites) != len(s.Sites) {
			t.Fatalf("profile %d: tally of %d sites, %d bytes at %v; snapshot of %d sites, %d bytes at %v",
				n, len(tally.Sites), tally.InUse, tally.Time, len(s.Sites), s.InUse, s.Time)
		}
		for id, u := range tally.Sites {
			site := NewSite(p.Sample[u.Sample])
			var key strings.Builder
			writeSiteKey(&key, p.Sample[u.Sample])
			su := s.Sites[key.String()]
			if su == nil || su.InUse != u.InUse {
				t.Errorf("profile %d: site %v: tally has %d bytes, snapshot %+v", n, site, u.InUse, su)
				continue
			}
			if prev, ok := ids[key.String()]; ok && prev != id {
				t.Errorf("profile %d: site %v changed ID", n, site)
			}
			ids[key.String()] = id
			name := NameSite(p.Sample[u.Sample])
			if want := (SiteName{Heap: site.Heap, Function: site.Function(), Own: site.ProfilerOwn()}); name != want {
				t.Errorf("NameSite = %+v, want %+v", name, want)
			}
		}
	}
	if got := slices.Collect(maps.Values(ids)); len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(ids) {
		t.Errorf("%d sites share %d IDs", len(ids), len(slices.Compact(slices.Sorted(slices.Values(got)))))
	}
}

// A Tally refuses what NewSnapshot refuses, and then holds no sites.
func TestTallyRejects(t *testing.T) {
	good := leakranktest.LeakSeries(1)[0].Build()
	negative := leakranktest.LeakSeries(1)[0].Build()
	negative.Sample[1].Value[3] = -5
	delta := leakranktest.Profile{Comments: []string{deltaPrefix + "x"}}.Build()
	cpu := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
	var tally Tally
	for _, p := range []*profile.Profile{negative, delta, cpu} {
		if err := tally.Read("p", good); err != nil {
			t.Fatal(err)
		}
		_, want := NewSnapshot("p", p)
		if err := tally.Read("p", p); err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("Read: %v; NewSnapshot: %v", err, want)
		}
		if len(tally.Sites) != 0 || tally.InUse != 0 {
			t.Errorf("after an error, %d sites and %d bytes", len(tally.Sites), tally.InUse)
		}
	}
}

// A Tally knows the time of the Go heap's figures.
func TestTallyFiguresTime(t *testing.T) {
	gc := leakranktest.Start.Add(-3 * time.Second)
	p := leakranktest.Profile{Time: leakranktest.Start, Comments: []string{GoHeapTimeComment(gc)}}.Build()
	var tally Tally
	if err := tally.Read("p", p); err != nil {
		t.Fatal(err)
	}
	if !tally.FiguresTime(GoHeap).Equal(gc) || !tally.FiguresTime("default").Equal(leakranktest.Start) {
		t.Errorf("figures of the Go heap as of %v, of another as of %v", tally.FiguresTime(GoHeap), tally.FiguresTime("default"))
	}
}
