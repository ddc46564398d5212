package main

import (
	"bytes"
	"encoding/json"
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

// leakhunt runs the command and returns its exit status and output.
func leakhunt(t *testing.T, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	status = run(args, &out, &errOut)
	return status, out.String(), errOut.String()
}

func leakDir(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	return dir, leakranktest.WriteSeries(t, dir, leakranktest.LeakSeries(n))
}

func TestRankTable(t *testing.T) {
	dir, _ := leakDir(t, 10)
	status, out, errOut := leakhunt(t, "rank", dir)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
	t.Logf("\n%s", out)
	lines := strings.Split(out, "\n")
	header := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "RANK") })
	if header < 0 {
		t.Fatalf("no table header in:\n%s", out)
	}
	for _, col := range []string{"SCORE", "IN USE", "GROWTH/H", "OLD>=1h", "HEAP", "SITE", "CALLED FROM"} {
		if !strings.Contains(lines[header], col) {
			t.Errorf("header %q lacks %s", lines[header], col)
		}
	}
	first := strings.Fields(lines[header+1])
	// 1  0.20%  640KiB  +3.75MiB/h  0%  default  app.(*SessionStore).Add  app.handleLogin < main.main
	if want := []string{"1", "0.20%", "640KiB", "+3.75MiB/h", "0%", "default", "app.(*SessionStore).Add", "app.handleLogin"}; !slices.Equal(first[:len(want)], want) {
		t.Errorf("first row %q, want it to start %q", first, want)
	}
	for _, l := range lines[header+1 : header+5] {
		if strings.Contains(l, "app.(*Queue).push") && !strings.Contains(l, " - ") {
			t.Errorf("Go heap site without ages shows an old share: %q", l)
		}
	}
	if !strings.Contains(out, "leakhunt diff "+filepath.Join(dir, "heap-20261126T060000")) {
		t.Errorf("no diff hint for the first and last profiles in:\n%s", out)
	}
}

func TestRankJSON(t *testing.T) {
	dir, _ := leakDir(t, 10)
	status, out, errOut := leakhunt(t, "rank", "-json", "-n", "3", "-old", "5m", dir)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
	var sites []map[string]any
	if err := json.Unmarshal([]byte(out), &sites); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	if len(sites) != 3 {
		t.Fatalf("%d sites, want 3 (-n 3)", len(sites))
	}
	for _, s := range sites {
		for _, field := range []string{"function", "stack", "heap", "inuse_bytes", "growth_bytes", "growth_bytes_per_hour", "monotonicity", "share", "old_share", "score", "inuse_history"} {
			if _, ok := s[field]; !ok {
				t.Errorf("site %v lacks %q", s["function"], field)
			}
		}
	}
	var typed []siteJSON
	if err := json.Unmarshal([]byte(out), &typed); err != nil {
		t.Fatal(err)
	}
	top := typed[0]
	if top.Function != leakranktest.GrowingStack[0] || !slices.Equal(top.Stack, leakranktest.GrowingStack) || top.Heap != "default" {
		t.Errorf("first site %s %v, want the growing one", top.Function, top.Stack)
	}
	if top.InUse != 640<<10 || top.Growth != 9*64<<10 || top.GrowthPerHour == nil || math.Abs(*top.GrowthPerHour-64<<10*60) > 1 {
		t.Errorf("in use %d, growth %d, per hour %v", top.InUse, top.Growth, top.GrowthPerHour)
	}
	if top.OldShare == nil || *top.OldShare != 0.5 || top.Monotonicity != 1 || len(top.History) != 10 {
		t.Errorf("old share %v, tau %g, history %v", top.OldShare, top.Monotonicity, top.History)
	}
	for i := 1; i < len(typed); i++ {
		if typed[i].Score > typed[i-1].Score {
			t.Errorf("score %g after %g", typed[i].Score, typed[i-1].Score)
		}
	}
}

// Files named one by one, in any order, rank like their directory.
func TestRankFiles(t *testing.T) {
	dir, paths := leakDir(t, 6)
	slices.Reverse(paths)
	_, fromDir, _ := leakhunt(t, "rank", "-json", dir)
	status, fromFiles, errOut := leakhunt(t, append([]string{"rank", "-json"}, paths...)...)
	if status != 0 || fromFiles != fromDir {
		t.Errorf("status %d, stderr %s; files gave\n%s\ndirectory gave\n%s", status, errOut, fromFiles, fromDir)
	}
}

// After a restart, in-use memory starts again from nothing: only the
// latest run is ranked, and stderr says so.
func TestRankRestart(t *testing.T) {
	dir := t.TempDir()
	series := leakranktest.LeakSeries(8)
	for i := range series[4:] {
		series[4+i].Duration = time.Duration(i+1) * time.Minute // restarted
	}
	leakranktest.WriteSeries(t, dir, series)
	status, out, errOut := leakhunt(t, "rank", "-json", dir)
	if status != 0 || !strings.Contains(errOut, "leakhunt: note: the profiles come from 2 runs") || !strings.Contains(errOut, "ranking the latest, 4 profiles") {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
	var sites []siteJSON
	if err := json.Unmarshal([]byte(out), &sites); err != nil {
		t.Fatal(err)
	}
	if len(sites[0].History) != 4 {
		t.Errorf("history %v, want the 4 profiles of the latest run", sites[0].History)
	}
}

// All profiles at the same instant: ranked by their order, growth per
// profile, growth per hour unknown.
func TestRankSameTime(t *testing.T) {
	dir := t.TempDir()
	series := leakranktest.LeakSeries(5)
	for i := range series {
		series[i].Time = leakranktest.Start
		series[i].Duration = 0
		if err := os.WriteFile(filepath.Join(dir, "heap-"+string(rune('a'+i))+".pb.gz"), series[i].Encode(t), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	status, out, errOut := leakhunt(t, "rank", dir)
	if status != 0 || !strings.Contains(out, "GROWTH/PROFILE") || !strings.Contains(out, "+64.0KiB") || !strings.Contains(out, "same time") {
		t.Errorf("status %d, stderr %q, stdout:\n%s", status, errOut, out)
	}
	_, out, _ = leakhunt(t, "rank", "-json", dir)
	var sites []map[string]any
	if err := json.Unmarshal([]byte(out), &sites); err != nil {
		t.Fatal(err)
	}
	if sites[0]["function"] != leakranktest.GrowingStack[0] || sites[0]["growth_bytes_per_hour"] != nil {
		t.Errorf("first site %v with growth per hour %v; want the growing one, null", sites[0]["function"], sites[0]["growth_bytes_per_hour"])
	}
}

func TestDiff(t *testing.T) {
	_, paths := leakDir(t, 5)
	oldPath, newPath := paths[0], paths[4]
	delta := filepath.Join(t.TempDir(), "delta.pb.gz")
	status, out, errOut := leakhunt(t, "diff", "-o", delta, oldPath, newPath)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		"go tool pprof -diff_base " + oldPath + " " + newPath + "\n",
		"go tool pprof -top -diff_base " + oldPath + " " + newPath + "\n",
		"go tool pprof -http=: -diff_base " + oldPath + " " + newPath + "\n",
		"go tool pprof -top " + delta,
		"change: -2.69MiB in 4m0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	grew := out[strings.Index(out, "grew most:"):strings.Index(out, "shrank most:")]
	if !hasRow(grew, "+256KiB", "64.0KiB", "320KiB", "default", "app.(*SessionStore).Add", "app.handleLogin") || strings.Contains(grew, "app.loadCache") {
		t.Errorf("grew section:\n%s", grew)
	}
	shrank := out[strings.Index(out, "shrank most:"):strings.Index(out, "the same view")]
	if !strings.Contains(shrank, "-4.00MiB") || !strings.Contains(shrank, "app.(*Queue).push") {
		t.Errorf("shrank section:\n%s", shrank)
	}

	data, err := os.ReadFile(delta)
	if err != nil {
		t.Fatal(err)
	}
	d, err := profile.ParseData(data)
	if err != nil {
		t.Fatalf("delta profile: %v", err)
	}
	var sum int64
	for _, s := range d.Sample {
		sum += s.Value[3]
	}
	var before, after int64
	for _, s := range leakranktest.LeakSeries(5)[0].Samples {
		before += s.InUse
	}
	for _, s := range leakranktest.LeakSeries(5)[4].Samples {
		after += s.InUse
	}
	if sum != after-before {
		t.Errorf("delta profile sums to %d in-use bytes, want %d", sum, after-before)
	}
}

func TestDiffJSON(t *testing.T) {
	_, paths := leakDir(t, 3)
	status, out, errOut := leakhunt(t, "diff", "-json", paths[0], paths[2])
	if status != 0 {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
	var d diffJSON
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if d.Old.Path != paths[0] || d.New.Path != paths[2] || len(d.Pprof) != 3 || len(d.Grew) != 1 || len(d.Shrank) != 2 {
		t.Errorf("%+v", d)
	}
	if g := d.Grew[0]; g.Function != leakranktest.GrowingStack[0] || g.Delta != 128<<10 || g.Old != 64<<10 || g.New != 192<<10 {
		t.Errorf("growing site %+v", g)
	}
	if s := d.Shrank[0]; s.Function != leakranktest.ShrinkingStack[0] || s.Delta != -2<<20 {
		t.Errorf("first shrinking site %+v, want the queue", s)
	}
	if !d.New.Time.Equal(leakranktest.Start.Add(2 * time.Minute)) {
		t.Errorf("new profile's time %v", d.New.Time)
	}
}

// Every bad input gets a message that names the problem (and the file),
// prefixed "leakhunt: ", and a non-zero status: 2 for usage, 1 for input.
func TestBadInput(t *testing.T) {
	dir, paths := leakDir(t, 2)
	empty := t.TempDir()
	junk := filepath.Join(t.TempDir(), "heap-junk.pb.gz")
	if err := os.WriteFile(junk, []byte("this is not a profile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cpu := filepath.Join(t.TempDir(), "cpu.pb.gz")
	writeCPUProfile(t, cpu)
	otherDir := t.TempDir()
	other := leakranktest.LeakSeries(2)[1]
	other.BuildID = "0therb1d"
	otherPath := other.Write(t, otherDir)
	oneDir := t.TempDir()
	one := leakranktest.LeakSeries(1)[0].Write(t, oneDir)

	for _, tc := range []struct {
		name   string
		args   []string
		status int
		want   []string
	}{
		{"nothing", nil, 2, []string{"usage:", "leakhunt rank"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{`leakhunt: unknown command "frobnicate"`, "usage:"}},
		{"rank no files", []string{"rank"}, 2, []string{"leakhunt: rank: name a directory or profile files", "usage: leakhunt rank"}},
		{"rank bad flag", []string{"rank", "-bogus", dir}, 2, []string{"leakhunt: rank: flag provided but not defined: -bogus", "-old AGE"}},
		{"rank flag after file", []string{"rank", dir, "-json"}, 2, []string{"leakhunt: rank: flag -json after a file"}},
		{"rank negative n", []string{"rank", "-n", "-1", dir}, 2, []string{"leakhunt: rank: -n -1"}},
		{"rank zero old", []string{"rank", "-old", "0s", dir}, 2, []string{"leakhunt: rank: -old 0s: must be positive"}},
		{"rank bad old", []string{"rank", "-old", "an hour", dir}, 2, []string{`leakhunt: rank: invalid value "an hour" for flag -old`}},
		{"rank empty dir", []string{"rank", empty}, 1, []string{"leakhunt: no profiles in " + empty}},
		{"rank missing", []string{"rank", filepath.Join(empty, "gone.pb.gz")}, 1, []string{"leakhunt: ", "gone.pb.gz", "no such file"}},
		{"rank junk", []string{"rank", paths[0], junk}, 1, []string{"leakhunt: " + junk + ": not a pprof profile"}},
		{"rank cpu profile", []string{"rank", paths[0], cpu}, 1, []string{"leakhunt: " + cpu + ": not a heap profile", "cpu/nanoseconds"}},
		{"rank two programs", []string{"rank", dir, otherDir}, 1, []string{"leakhunt: profiles from different programs", paths[0], otherPath, "0therb1d"}},
		{"rank one profile", []string{"rank", oneDir}, 1, []string{"leakhunt: only one profile (" + one + "): growth needs at least two"}},
		{"diff one file", []string{"diff", paths[0]}, 2, []string{"leakhunt: diff: name two profiles, OLD and NEW (got 1)", "usage: leakhunt diff"}},
		{"diff junk", []string{"diff", paths[0], junk}, 1, []string{"leakhunt: " + junk + ": not a pprof profile"}},
		{"diff two programs", []string{"diff", paths[0], otherPath}, 1, []string{"leakhunt: profiles from different programs"}},
		{"diff overwrite input", []string{"diff", "-o", paths[1], paths[0], paths[1]}, 1, []string{"leakhunt: -o " + paths[1] + ": would overwrite the input"}},
		{"diff directory", []string{"diff", dir, paths[0]}, 1, []string{"leakhunt: " + dir + ": not a regular file (a directory)"}},
	} {
		status, out, errOut := leakhunt(t, tc.args...)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d; stderr:\n%s", tc.name, status, tc.status, errOut)
		}
		if out != "" {
			t.Errorf("%s: output on stdout:\n%s", tc.name, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, errOut)
			}
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}} {
		if status, out, _ := leakhunt(t, args...); status != 0 || !strings.Contains(out, "leakhunt diff") {
			t.Errorf("%v: status %d, output:\n%s", args, status, out)
		}
	}
	for _, cmd := range []string{"rank", "diff"} {
		if status, _, errOut := leakhunt(t, cmd, "-h"); status != 0 || !strings.Contains(errOut, "-json") {
			t.Errorf("%s -h: status %d, stderr:\n%s", cmd, status, errOut)
		}
	}
}

// hasRow reports whether a line of table starts with the fields.
func hasRow(table string, fields ...string) bool {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}

func writeCPUProfile(t *testing.T, path string) {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		TimeNanos:  1,
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}
