package leakrank

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

func TestNewSnapshotSites(t *testing.T) {
	stack := []string{"app.f", "main.main"}
	p := leakranktest.Profile{
		Time:     leakranktest.Start,
		Duration: time.Minute,
		File:     "/bin/app",
		BuildID:  "abc",
		Samples: []leakranktest.Sample{
			{Heap: "default", Stack: stack, InUse: 1 << 20, Age: 60},
			{Heap: "default", Stack: stack, InUse: 2 << 20, Age: 3600},
			// Same stack, other heap: another site (Track'd objects appear
			// in both, and must not be added up).
			{Heap: "go", Stack: stack, InUse: 4 << 20, Age: -1},
			{Heap: "default", Stack: []string{"app.g"}, InUse: 0, Age: -1}, // freed: no site
		},
	}
	s, err := NewSnapshot("p.pb.gz", p.Build())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Time.Equal(leakranktest.Start) || s.Duration != time.Minute {
		t.Errorf("time %v, duration %v; want %v, 1m", s.Time, s.Duration, leakranktest.Start)
	}
	if want := (Program{File: "/bin/app", BuildID: "abc"}); s.Program != want {
		t.Errorf("program %+v, want %+v", s.Program, want)
	}
	if s.InUse != 7<<20 {
		t.Errorf("total in use %d, want %d", s.InUse, 7<<20)
	}
	if len(s.Sites) != 2 {
		t.Fatalf("%d sites, want 2: %v", len(s.Sites), s.Sites)
	}
	for _, u := range s.Sites {
		if !slices.Equal(u.Site.Stack, stack) || u.Site.Function() != "app.f" {
			t.Errorf("site %+v, want stack %v", u.Site, stack)
		}
		switch u.Site.Heap {
		case "default":
			if u.InUse != 3<<20 || u.ByAge[60] != 1<<20 || u.ByAge[3600] != 2<<20 {
				t.Errorf("default heap: in use %d, by age %v", u.InUse, u.ByAge)
			}
		case "go":
			if u.InUse != 4<<20 || u.ByAge != nil {
				t.Errorf("go heap: in use %d, by age %v; want no ages", u.InUse, u.ByAge)
			}
		}
	}
}

// The profiler writes a size beyond an int64 as math.MaxInt64: two such
// samples add up to math.MaxInt64, not to a negative total.
func TestNewSnapshotSaturates(t *testing.T) {
	const huge = math.MaxInt64
	stack := []string{"app.f"}
	p := leakranktest.Profile{Samples: []leakranktest.Sample{
		{Heap: "h", Stack: stack, InUse: huge, Age: 60},
		{Heap: "h", Stack: stack, InUse: huge, Age: 60},
		{Heap: "h", Stack: []string{"app.g"}, InUse: 1000, Age: 60},
	}}.Build()
	s, err := NewSnapshot("p", p)
	if err != nil {
		t.Fatal(err)
	}
	if s.InUse != huge {
		t.Errorf("total in use %d, want %d", s.InUse, int64(huge))
	}
	for _, u := range s.Sites {
		want := int64(huge)
		if u.Site.Function() == "app.g" {
			want = 1000
		}
		if u.InUse != want || u.ByAge[60] != want {
			t.Errorf("%s: in use %d, by age %v; want %d", u.Site.Function(), u.InUse, u.ByAge, want)
		}
	}
}

// An inlined call is one Location with several Lines, innermost first; the
// stack lists them all, as pprof does. A location without lines is named by
// its address.
func TestNewSnapshotInlinedAndUnsymbolized(t *testing.T) {
	p := leakranktest.Profile{Samples: []leakranktest.Sample{{Heap: "h", Stack: []string{"leaf", "main.main"}, InUse: 1024, Age: -1}}}.Build()
	inner := &profile.Function{ID: 99, Name: "inlined.inner"}
	p.Function = append(p.Function, inner)
	leaf := p.Sample[0].Location[0]
	leaf.Line = append([]profile.Line{{Function: inner}}, leaf.Line...)
	p.Location = append(p.Location, &profile.Location{ID: 99, Address: 0x4abc})
	p.Sample[0].Location = append(p.Sample[0].Location, p.Location[len(p.Location)-1])

	s, err := NewSnapshot("p", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range s.Sites {
		if want := []string{"inlined.inner", "leaf", "main.main", "0x4abc"}; !slices.Equal(u.Site.Stack, want) {
			t.Errorf("stack %q, want %q", u.Site.Stack, want)
		}
	}
}

// Only an age in seconds is an age: pprof matches -tagfocus=age=1hr only
// against the unit the label was written in.
func TestNewSnapshotAgeUnit(t *testing.T) {
	p := leakranktest.Profile{Samples: []leakranktest.Sample{{Heap: "h", Stack: []string{"f"}, InUse: 1024, Age: 10}}}.Build()
	p.Sample[0].NumUnit["age"] = []string{"minutes"}
	s, err := NewSnapshot("p", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range s.Sites {
		if u.ByAge != nil {
			t.Errorf("age in minutes read as %v", u.ByAge)
		}
	}
}

func TestNewSnapshotRejects(t *testing.T) {
	cpu := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
	}
	delta := leakranktest.Profile{Samples: []leakranktest.Sample{{Heap: "h", Stack: []string{"f"}, InUse: -1024, Age: -1}}}.Build()
	for _, tc := range []struct {
		name string
		p    *profile.Profile
		want string
	}{
		{"cpu.pb.gz", cpu, "cpu.pb.gz: not a heap profile: it has no inuse_space/bytes values (its sample types: samples/count, cpu/nanoseconds)"},
		{"delta.pb.gz", delta, "delta.pb.gz: negative in-use bytes"},
	} {
		_, err := NewSnapshot(tc.name, tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestParseProfileRejects(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("hello, world\n"), {0x1f, 0x8b, 0, 1, 2}} {
		_, err := ParseProfile("junk.txt", data, ReadOptions{})
		if err == nil || !strings.HasPrefix(err.Error(), "junk.txt: not a pprof profile") {
			t.Errorf("ParseProfile(%q): error %v, want one naming junk.txt", data, err)
		}
	}
}

func TestProgramSame(t *testing.T) {
	for _, tc := range []struct {
		a, b Program
		want bool
	}{
		{Program{"/bin/app", "1"}, Program{"/bin/app", "1"}, true},
		{Program{"/bin/app", "1"}, Program{"/bin/app", "2"}, false},  // rebuilt
		{Program{"/bin/app", "1"}, Program{"/opt/other", "1"}, true}, // moved
		{Program{"/bin/app", ""}, Program{"/opt/app", ""}, true},
		{Program{"/bin/app", ""}, Program{"/bin/other", ""}, false},
		{Program{`C:\bin\app.exe`, ""}, Program{"/tmp/app.exe", "9"}, true},
		{Program{"/bin/app", "1"}, Program{}, true}, // says nothing
	} {
		if got := tc.a.Same(tc.b); got != tc.want {
			t.Errorf("%v.Same(%v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
