package pyroscope_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/pyroscope"
)

//go:noinline
func allocSmall(h *profiler.Heap, key uintptr, size int) { h.Alloc(key, size) }

//go:noinline
func allocLarge(h *profiler.Heap, key uintptr, size int) { h.Alloc(key, size) }

//go:noinline
func allocLate(h *profiler.Heap, key uintptr, size int) { h.Alloc(key, size) }

// startProfiler starts the process's profiler at rate 1, where every
// allocation is sampled and the profile's values are exact, with the Go
// heap off so that only the test's allocations show. Only one runs per
// process: tests that call it must not run in parallel.
func startProfiler(t *testing.T) *profiler.Profiler {
	t.Helper()
	p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithGoHeap(false),
		profiler.WithOutputDir(t.TempDir()), profiler.WithFlushInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// snapshot returns the profiler's current profile as the profiler hands
// it to an exporter.
func snapshot(t *testing.T, p *profiler.Profiler) profiler.Profile {
	t.Helper()
	var buf bytes.Buffer
	if err := p.WriteProfile(&buf); err != nil {
		t.Fatal(err)
	}
	parsed, err := profile.ParseData(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return profiler.Profile{Data: buf.Bytes(), Time: time.Unix(0, parsed.TimeNanos)}
}

// byFunction returns the values of p's samples by the first of names in
// each one's stack, summed; samples with none of them are under "".
func byFunction(p *profile.Profile, names ...string) map[string][4]int64 {
	out := map[string][4]int64{}
	for _, s := range p.Sample {
		k := ""
	stack:
		for _, l := range s.Location {
			for _, line := range l.Line {
				for _, n := range names {
					if strings.HasSuffix(line.Function.Name, "."+n) {
						k = n
						break stack
					}
				}
			}
		}
		v := out[k]
		for i := range v {
			v[i] += s.Value[i]
		}
		out[k] = v
	}
	return out
}

// Three pushes of the real profiler's profiles, the second failing: each
// push carries the in-use snapshot and what was allocated since the last
// successful push, so the failed push's allocations arrive with the third,
// and the alloc_space pushed adds up to everything allocated.
func TestAllocDeltasAcrossPushes(t *testing.T) {
	srv := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 2 {
			connectError(w, http.StatusBadRequest, "invalid_argument", "profile rejected for the test")
			return
		}
		ok(w)
	})
	exp, err := pyroscope.New(pyroscope.Config{URL: srv.URL, ServiceName: "deltas"})
	if err != nil {
		t.Fatal(err)
	}
	p := startProfiler(t)
	h := profiler.NewHeap("deltas")
	funcs := []string{"allocSmall", "allocLarge", "allocLate"}

	// Round 1: two sizes at one site (two groups in the profile, one
	// site pushed), two of them freed.
	for k := uintptr(1); k <= 10; k++ {
		size := 1000
		if k > 8 {
			size = 2000
		}
		allocSmall(h, k, size)
	}
	h.Free(1)
	h.Free(2)
	for k := uintptr(100); k < 105; k++ {
		allocLarge(h, k, 3000)
	}
	first := snapshot(t, p)
	if err := exp.Export(context.Background(), first); err != nil {
		t.Fatal(err)
	}

	// Round 2, pushed and rejected.
	for k := uintptr(11); k <= 14; k++ {
		allocSmall(h, k, 1000)
	}
	h.Free(3)
	allocLate(h, 200, 500)
	allocLate(h, 201, 500)
	if err := exp.Export(context.Background(), snapshot(t, p)); err == nil || !strings.Contains(err.Error(), "400 Bad Request: invalid_argument: profile rejected for the test") {
		t.Fatalf("second push: error %v; want the server's 400", err)
	}

	// Round 3.
	allocLarge(h, 105, 3000)
	h.Free(100)
	third := snapshot(t, p)
	if err := exp.Export(context.Background(), third); err != nil {
		t.Fatal(err)
	}

	got := srv.requests()
	if len(got) != 3 {
		t.Fatalf("server got %d requests, want 3", len(got))
	}
	want := []map[string][4]int64{
		{ // everything so far
			"allocSmall": {10, 12000, 8, 10000},
			"allocLarge": {5, 15000, 5, 15000},
		},
		{ // rejected: allocations since push 1
			"allocSmall": {4, 4000, 11, 13000},
			"allocLarge": {0, 0, 5, 15000},
			"allocLate":  {2, 1000, 2, 1000},
		},
		{ // allocations since push 1, the rejected push's included
			"allocSmall": {4, 4000, 11, 13000},
			"allocLarge": {1, 3000, 5, 15000},
			"allocLate":  {2, 1000, 2, 1000},
		},
	}
	var allocated int64
	for i, r := range got {
		prof := r.profile(t)
		values := byFunction(prof, funcs...)
		if len(values) != len(want[i]) {
			t.Errorf("push %d: sites %v, want %v", i+1, values, want[i])
		}
		for site, w := range want[i] {
			if values[site] != w {
				t.Errorf("push %d: %s pushed %v, want %v", i+1, site, values[site], w)
			}
		}
		// In the first profile each function allocates from one line:
		// one sample each, the two sizes of allocSmall merged.
		if i == 0 && len(prof.Sample) != 2 {
			t.Errorf("push 1: %d samples, want one per site, 2", len(prof.Sample))
		}
		if i != 1 {
			for _, v := range values {
				allocated += v[1]
			}
		}
	}
	if allocated != 12000+15000+4000+1000+3000 {
		t.Errorf("alloc_space pushed successfully adds up to %d, want every byte allocated, %d", allocated, 35000)
	}

	p1, p3 := got[0].profile(t), got[2].profile(t)
	in1, err := profile.ParseData(first.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(in1.Sample) < 3 {
		t.Errorf("the first profile has %d samples; want allocSmall's two sizes apart, for the push to merge", len(in1.Sample))
	}
	if p1.TimeNanos != first.Time.UnixNano() || p1.DurationNanos != in1.DurationNanos {
		t.Errorf("push 1: time %d, duration %d; want the profile's, %d and %d", p1.TimeNanos, p1.DurationNanos, first.Time.UnixNano(), in1.DurationNanos)
	}
	if p3.TimeNanos != third.Time.UnixNano() || p3.DurationNanos != third.Time.Sub(first.Time).Nanoseconds() {
		t.Errorf("push 3: time %d, duration %d; want %d and the time since push 1, %d",
			p3.TimeNanos, p3.DurationNanos, third.Time.UnixNano(), third.Time.Sub(first.Time).Nanoseconds())
	}
}

// Sites are matched across profiles by what their locations are, not by
// their ids; a site whose allocations shrink pushes zero, and a site with
// nothing to push is left out.
func TestDeltaMatchesSitesNotIDs(t *testing.T) {
	srv := newPushServer(t, nil)
	exp, err := pyroscope.New(pyroscope.Config{URL: srv.URL, ServiceName: "ids"})
	if err != nil {
		t.Fatal(err)
	}
	a := []frame{fn("main.a"), fn("main.main")}
	b := []frame{fn("main.b"), fn("main.main")}
	c := []frame{fn("main.c"), fn("main.main")}
	t0 := time.Now()
	// The objects of a age from one bucket to the next: the site is the
	// same, its total unchanged.
	push := func(at time.Time, idBase uint64, samples ...synthSample) {
		t.Helper()
		if err := exp.Export(context.Background(), heapProfile(t, at, idBase, samples...)); err != nil {
			t.Fatal(err)
		}
	}
	push(t0, 1,
		synthSample{stack: a, heap: "h", age: 0, values: [4]int64{10, 1000, 10, 1000}},
		synthSample{stack: b, heap: "h", age: -1, values: [4]int64{7, 700, 0, 0}},
		synthSample{stack: c, heap: "h", age: -1, values: [4]int64{5, 500, 0, 0}},
	)
	push(t0.Add(time.Minute), 1001,
		synthSample{stack: a, heap: "h", age: 60, values: [4]int64{6, 600, 6, 600}},
		synthSample{stack: a, heap: "h", age: 0, values: [4]int64{6, 600, 6, 600}},
		synthSample{stack: b, heap: "h", age: -1, values: [4]int64{7, 700, 0, 0}}, // nothing new: left out
		synthSample{stack: c, heap: "h", age: -1, values: [4]int64{3, 300, 0, 0}}, // shrank: zero, left out
	)
	got := srv.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	values := siteValues(got[1].profile(t))
	if want := map[string][4]int64{"main.a@h": {2, 200, 12, 1200}}; len(values) != 1 || values["main.a@h"] != want["main.a@h"] {
		t.Errorf("second push %v, want %v", values, want)
	}

	// A profile with nothing to push sends nothing and moves the
	// baseline.
	push(t0.Add(2*time.Minute), 7,
		synthSample{stack: c, heap: "h", age: -1, values: [4]int64{3, 300, 0, 0}},
	)
	if n := len(srv.requests()); n != 2 {
		t.Errorf("a profile with nothing to push made request %d", n)
	}
	push(t0.Add(3*time.Minute), 9,
		synthSample{stack: c, heap: "h", age: -1, values: [4]int64{4, 400, 0, 0}},
	)
	got = srv.requests()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	last := got[2].profile(t)
	if values := siteValues(last); len(values) != 1 || values["main.c@h"] != [4]int64{1, 100, 0, 0} {
		t.Errorf("fourth push %v, want main.c@h [1 100 0 0]", values)
	}
	if last.DurationNanos != int64(time.Minute) {
		t.Errorf("fourth push covers %v; want the minute since the third profile, which had nothing to push", time.Duration(last.DurationNanos))
	}
}
