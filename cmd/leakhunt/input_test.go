package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// A gzip bomb, a file of 300 KiB that decompresses to 300 MiB, fails at
// the size limit, quickly and without taking the memory it claims: rank and
// diff allocate less than 16 MiB for it in all, a sixteenth of the default
// limit, where keeping what was decompressed would take all 256 MiB of it.
// The bound on time is loose, for -race on a busy machine; the one on
// memory is the tight check.
func TestGzipBomb(t *testing.T) {
	dir, paths := leakDir(t, 2)
	bomb := filepath.Join(dir, "heap-20261202T000000.000000000Z-1.pb.gz")
	if err := os.WriteFile(bomb, leakranktest.GzipBomb(t, 300<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"rank", []string{"rank", paths[0], bomb}, []string{"leakhunt: " + bomb + ": profile too large: more than 256MiB decompressed", "-max-profile-size"}},
		{"diff", []string{"diff", bomb, paths[0]}, []string{"leakhunt: " + bomb + ": profile too large: more than 256MiB decompressed"}},
		{"rank lower limit", []string{"rank", "-max-profile-size", "1MiB", dir}, []string{"leakhunt: " + bomb + ": profile too large: more than 1MiB decompressed"}},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		status, _, errOut := leakhunt(t, tc.args...)
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		t.Logf("%s: %v, %d bytes allocated", tc.name, elapsed, after.TotalAlloc-before.TotalAlloc)
		if status != exitBadInput {
			t.Errorf("%s: status %d, want %d; stderr:\n%s", tc.name, status, exitBadInput, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, errOut)
			}
		}
		if elapsed > 10*time.Second {
			t.Errorf("%s: took %v", tc.name, elapsed)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: %d bytes allocated, want less than 16 MiB", tc.name, alloc)
		}
	}
}

// The limit applies to the file on disk too, and -max-profile-size raises
// or lowers it.
func TestMaxProfileSize(t *testing.T) {
	dir, paths := leakDir(t, 3)
	info, err := os.Stat(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	small := info.Size() - 1
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"raised", []string{"rank", "-max-profile-size", "1GiB", dir}, 0, ""},
		{"bytes", []string{"rank", "-max-profile-size", "1048576", dir}, 0, ""},
		{"below the file", []string{"diff", "-max-profile-size", strconv.FormatInt(small, 10), paths[0], paths[1]}, 1,
			"leakhunt: " + paths[0] + ": profile too large: " + strconv.FormatInt(info.Size(), 10) + "B on disk, more than " + strconv.FormatInt(small, 10) + "B"},
		{"zero", []string{"rank", "-max-profile-size", "0", dir}, 2, "leakhunt: rank: -max-profile-size 0B: must be positive"},
		{"bad unit", []string{"diff", "-max-profile-size", "1MB", paths[0], paths[1]}, 2, `leakhunt: diff: invalid value "1MB" for flag -max-profile-size`},
		{"overflow", []string{"rank", "-max-profile-size", "9999999999EiB", dir}, 2, `leakhunt: rank: invalid value "9999999999EiB" for flag -max-profile-size`},
	} {
		status, _, errOut := leakhunt(t, tc.args...)
		if status != tc.status || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: status %d, stderr %q; want %d and %q", tc.name, status, errOut, tc.status, tc.want)
		}
	}
}

// The profiler writes a size too large for an int64 as math.MaxInt64; two
// such samples must not add up to a negative figure anywhere.
func TestSaturatedSizes(t *testing.T) {
	const huge = math.MaxInt64
	shrinks, grows := []string{"app.shrinks", "main.main"}, []string{"app.grows", "main.main"}
	sample := func(stack []string, inuse int64) leakranktest.Sample {
		return leakranktest.Sample{Heap: "default", Stack: stack, InUse: inuse, Age: -1}
	}
	paths := leakranktest.WriteSeries(t, t.TempDir(), []leakranktest.Profile{
		{Time: leakranktest.Start, Samples: []leakranktest.Sample{sample(shrinks, huge), sample(shrinks, huge), sample(grows, 1000)}},
		{Time: leakranktest.Start.Add(time.Minute), Samples: []leakranktest.Sample{sample(shrinks, 998), sample(grows, huge), sample(grows, huge)}},
	})

	status, out, errOut := leakhunt(t, append([]string{"rank", "-json"}, paths...)...)
	if status != 0 {
		t.Fatalf("rank: status %d, stderr:\n%s", status, errOut)
	}
	var sites []siteJSON
	if err := json.Unmarshal([]byte(out), &sites); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string][]int64{"app.shrinks": {huge, 998}, "app.grows": {1000, huge}}
	for _, s := range sites {
		if !slices.Equal(s.History, want[s.Function]) || s.InUse < 0 || (s.Growth < 0) != (s.Function == "app.shrinks") {
			t.Errorf("%s: history %v, in use %d, growth %d; want history %v", s.Function, s.History, s.InUse, s.Growth, want[s.Function])
		}
	}
	if len(sites) != 2 || sites[0].Function != "app.grows" {
		t.Errorf("ranking %+v, want app.grows first of two", sites)
	}

	status, out, errOut = leakhunt(t, "diff", "-json", paths[0], paths[1])
	if status != 0 {
		t.Fatalf("diff: status %d, stderr:\n%s", status, errOut)
	}
	var d diffJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d.Old.InUse != huge || d.New.InUse != huge {
		t.Errorf("in use %d then %d, want %d both", d.Old.InUse, d.New.InUse, int64(huge))
	}
	if len(d.Grew) != 1 || d.Grew[0].Function != "app.grows" || d.Grew[0].Old != 1000 || d.Grew[0].New != huge || d.Grew[0].Delta != huge-1000 {
		t.Errorf("grew %+v, want app.grows from 1000 to %d", d.Grew, int64(huge))
	}
	if len(d.Shrank) != 1 || d.Shrank[0].Function != "app.shrinks" || d.Shrank[0].Old != huge || d.Shrank[0].New != 998 || d.Shrank[0].Delta != 998-huge {
		t.Errorf("shrank %+v, want app.shrinks from %d to 998", d.Shrank, int64(huge))
	}
}

// A delta profile that holds only growth has no negative value to give it
// away, and still is no snapshot: rank and diff refuse it, by name,
// whether named or found in a directory under a snapshot's name.
func TestDeltaRefused(t *testing.T) {
	dir := t.TempDir()
	ps := leakranktest.LeakSeries(3)[1:] // every site present in both
	for i := range ps {
		for j := range ps[i].Samples {
			ps[i].Samples[j].InUse = int64(i+1) << 20 // and every site grew
		}
	}
	paths := leakranktest.WriteSeries(t, dir, ps)
	delta := filepath.Join(dir, "heap-20261126T070000.000000000Z-4242.pb.gz")
	if status, _, errOut := leakhunt(t, "diff", "-o", delta, paths[0], paths[1]); status != 0 {
		t.Fatalf("diff -o: status %d, stderr:\n%s", status, errOut)
	}
	data, err := os.ReadFile(delta)
	if err != nil {
		t.Fatal(err)
	}
	d, err := profile.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range d.Sample {
		if s.Value[3] <= 0 {
			t.Fatalf("delta profile holds %d in-use bytes: want only growth", s.Value[3])
		}
	}
	if mark := "leakhunt delta profile: " + paths[1] + " minus " + paths[0]; !slices.Contains(d.Comments, mark) {
		t.Errorf("delta profile's comments %q lack %q", d.Comments, mark)
	}
	for _, args := range [][]string{
		{"rank", paths[0], paths[1], delta},
		{"rank", dir},
		{"diff", paths[0], delta},
		{"diff", delta, paths[1]},
		{"diff", "-o", filepath.Join(t.TempDir(), "d.pb.gz"), delta, paths[1]},
	} {
		status, out, errOut := leakhunt(t, args...)
		if want := "leakhunt: " + delta + ": a delta profile"; status != exitBadInput || !strings.Contains(errOut, want) {
			t.Errorf("%q: status %d, stderr %q; want %d and %q\nstdout:\n%s", args, status, errOut, exitBadInput, want, out)
		}
	}
}
