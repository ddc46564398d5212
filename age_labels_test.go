package profiler_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/internal/pproftest"
)

//go:noinline
func allocOld(key uintptr) { profiler.Alloc(key, 4096) }

//go:noinline
func allocNew(key uintptr) { profiler.Alloc(key, 4096) }

// Ages round-trip through go tool pprof: objects two hours old carry
// age=7200 seconds and -tagfocus=age=1hr: keeps them alone; objects made
// just before the snapshot carry age 0. The bubble's fake clock stands in
// for the two hours.
func TestAgeLabelWithPprofTagfocus(t *testing.T) {
	var path string
	dir := t.TempDir() // outside the bubble, whose own TempDir ends with it
	synctest.Test(t, func(t *testing.T) {
		p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithGoHeap(false),
			profiler.WithOutputDir(dir), profiler.WithFlushInterval(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		for i := range 10 {
			allocOld(uintptr(i))
		}
		time.Sleep(2*time.Hour + 30*time.Minute)
		for i := range 5 {
			allocNew(uintptr(100 + i))
		}
		if path, err = p.Flush(); err != nil {
			t.Fatal(err)
		}
	})

	ages := map[string][]int64{}
	for _, s := range pproftest.Parse(t, path).Sample {
		if s.Value[3] == 0 {
			continue
		}
		leaf := s.Location[0].Line[0].Function.Name
		ages[leaf] = append(ages[leaf], s.NumLabel["age"]...)
		if u := s.NumUnit["age"]; len(u) != 1 || u[0] != "seconds" {
			t.Errorf("%s: age unit %q, want seconds", leaf, u)
		}
	}
	// 2h30m rounds down to the 7200 s boundary.
	if got := ages["github.com/leakhunt/profiler_test.allocOld"]; len(got) != 1 || got[0] != 7200 {
		t.Errorf("old objects have ages %v, want [7200]", got)
	}
	if got := ages["github.com/leakhunt/profiler_test.allocNew"]; len(got) != 1 || got[0] != 0 {
		t.Errorf("new objects have ages %v, want [0]", got)
	}

	cases := []struct{ filter, shows, hides string }{
		{"-tagfocus=age=1hr:", "allocOld", "allocNew"},
		{"-tagfocus=age=7200s:", "allocOld", "allocNew"},
		{"-tagignore=age=1hr:", "allocNew", "allocOld"},
		{"-tagfocus=age=:10s", "allocNew", "allocOld"},
	}
	var runs [][]string
	for _, tc := range cases {
		runs = append(runs, []string{"-top", tc.filter, path})
	}
	outs := pproftest.RunAll(t, runs...)
	for i, tc := range cases {
		if out := outs[i]; !strings.Contains(out, tc.shows) || strings.Contains(out, tc.hides) {
			t.Errorf("go tool pprof -top %s: want %s and not %s:\n%s", tc.filter, tc.shows, tc.hides, out)
		}
	}
	// 10 objects of 4 KiB are old: the in-use total under the filter.
	if !strings.Contains(outs[0], "40kB") {
		t.Errorf("go tool pprof -top -tagfocus=age=1hr: does not total 40kB:\n%s", outs[0])
	}
}

//go:noinline
func allocForTenant(ctx context.Context, h *profiler.Heap, key uintptr, size int) {
	h.AllocContext(ctx, key, size)
}

//go:noinline
func trackForTenant(ctx context.Context, obj *[1024]byte) {
	profiler.TrackIn(ctx, nil, obj, int(unsafe.Sizeof(*obj)))
}

//go:noinline
func trackSizedForTenant(ctx context.Context, h *profiler.Heap, obj *[1024]byte) {
	profiler.TrackIn(ctx, h, obj, 2000)
}

// pprof labels in the context reach the profile as string labels and
// -tagfocus selects them, for Alloc and Track alike.
func TestContextLabelsWithPprofTagfocus(t *testing.T) {
	p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithGoHeap(false), profiler.WithOutputDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	h := profiler.NewHeap("tenants")
	kept := make([]*[1024]byte, 0, 6)
	for i, tenant := range []string{"acme", "acme", "globex"} {
		pprof.Do(context.Background(), pprof.Labels("tenant", tenant, "endpoint", "/upload"), func(ctx context.Context) {
			allocForTenant(ctx, h, uintptr(i), 1000*(i+1))
			obj := new([1024]byte)
			kept = append(kept, obj)
			trackForTenant(ctx, obj)
			sized := new([1024]byte)
			kept = append(kept, sized)
			trackSizedForTenant(ctx, h, sized)
		})
	}
	allocForTenant(context.Background(), h, 99, 5) // no labels at all
	path, err := p.Flush()
	if err != nil {
		t.Fatal(err)
	}

	var acme, globex, none int64
	for _, s := range pproftest.Parse(t, path).Sample {
		if s.Label["heap"][0] != "tenants" {
			continue
		}
		switch tenant := s.Label["tenant"]; {
		case len(tenant) == 0:
			none += s.Value[3]
		case tenant[0] == "acme":
			acme += s.Value[3]
		case tenant[0] == "globex":
			globex += s.Value[3]
		}
		// The leaf is the function that called the *Context hook.
		switch leaf := s.Location[0].Line[0].Function.Name; strings.TrimPrefix(leaf, "github.com/leakhunt/profiler_test.") {
		case "allocForTenant", "trackForTenant", "trackSizedForTenant":
		default:
			t.Errorf("sample %v has leaf %s, want the hook's caller", s.Value, leaf)
		}
		if len(s.Label["tenant"]) == 1 && (len(s.Label["endpoint"]) != 1 || s.Label["endpoint"][0] != "/upload") {
			t.Errorf("sample %v lacks endpoint=/upload: %v", s.Value, s.Label)
		}
	}
	// Through the hook: 1000+2000 for acme, 3000 for globex; plus one
	// 2000-byte TrackIn object per request.
	if acme != 3000+2*2000 || globex != 3000+2000 || none != 5 {
		t.Errorf("in use by tenant: acme %d, globex %d, unlabelled %d; want 7000, 5000, 5", acme, globex, none)
	}

	out := pproftest.Run(t, "-top", "-tagfocus=tenant=globex", path)
	if !strings.Contains(out, "allocForTenant") || !strings.Contains(out, "trackForTenant") {
		t.Errorf("-tagfocus=tenant=globex lacks the tenant's sites:\n%s", out)
	}
	if !strings.Contains(out, "5.88kB") { // 3000 B through the hook + a 1 KiB and a 2000 B tracked object = 6024 B
		t.Errorf("-tagfocus=tenant=globex does not total 5.88kB:\n%s", out)
	}
	if st := p.Stats(); st.LabelSets != 2 || st.LabelSetsDropped != 0 {
		t.Errorf("Stats: %d label sets, %d dropped; want 2 and 0", st.LabelSets, st.LabelSetsDropped)
	}
	_ = kept
}

// A scraper that subtracts successive profiles sample by sample, keyed by
// stack and every label (Grafana Alloy does so for memory profiles, and
// Pyroscope drops a sample with a negative value), must find alloc_*
// values that only grow, though objects move from one age to the next
// between the profiles; and the differences must add up to what was
// allocated in between.
func TestAllocValuesOnlyGrowPerSample(t *testing.T) {
	var before, after []byte
	synctest.Test(t, func(t *testing.T) {
		p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithGoHeap(false),
			profiler.WithoutFiles(), profiler.WithFlushInterval(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		for i := range 10 {
			allocOld(uintptr(i))
		}
		var buf bytes.Buffer
		if err := p.WriteProfile(&buf); err != nil {
			t.Fatal(err)
		}
		before = bytes.Clone(buf.Bytes())
		time.Sleep(2 * time.Minute) // every old object moves to an older age
		for i := range 3 {
			profiler.Free(uintptr(i))
			allocNew(uintptr(100 + i))
		}
		buf.Reset()
		if err := p.WriteProfile(&buf); err != nil {
			t.Fatal(err)
		}
		after = buf.Bytes()
	})
	key := func(s *profile.Sample) string {
		k := fmt.Sprint(s.Label, s.NumLabel)
		for _, l := range s.Location {
			k += fmt.Sprintf(" %#x", l.Address)
			for _, line := range l.Line {
				k += " " + line.Function.Name
			}
		}
		return k
	}
	b, err := profile.ParseData(before)
	if err != nil {
		t.Fatal(err)
	}
	a, err := profile.ParseData(after)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string][2]int64{}
	for _, s := range b.Sample {
		v := old[key(s)]
		old[key(s)] = [2]int64{v[0] + s.Value[0], v[1] + s.Value[1]}
	}
	cur := map[string][2]int64{}
	for _, s := range a.Sample {
		v := cur[key(s)]
		cur[key(s)] = [2]int64{v[0] + s.Value[0], v[1] + s.Value[1]}
	}
	var grew [2]int64
	for k, v := range cur {
		d := [2]int64{v[0] - old[k][0], v[1] - old[k][1]}
		if d[0] < 0 || d[1] < 0 {
			t.Errorf("sample %s: alloc values fell by %v", k, d)
		}
		grew[0] += d[0]
		grew[1] += d[1]
	}
	for k, v := range old {
		if _, ok := cur[k]; !ok && (v[0] != 0 || v[1] != 0) {
			t.Errorf("sample %s with allocations %v is gone from the later profile", k, v)
		}
	}
	if grew != [2]int64{3, 3 * 4096} {
		t.Errorf("alloc values grew by %v between the profiles, want [3 %d], what was allocated", grew, 3*4096)
	}
}
