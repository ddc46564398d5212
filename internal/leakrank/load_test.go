package leakrank

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	paths := leakranktest.WriteSeries(t, dir, leakranktest.LeakSeries(5))
	// Beside the profiles: a temporary file of the profiler, a delta
	// profile and a note, none of which are snapshots.
	for _, name := range []string{".heap-123.tmp", "delta.pb.gz", "README"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("not a profile"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snaps, err := Load([]string{dir}, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != len(paths) {
		t.Fatalf("loaded %d snapshots, want %d", len(snaps), len(paths))
	}
	for i, s := range snaps {
		if s.Path != paths[i] {
			t.Errorf("snapshot %d is %s, want %s", i, s.Path, paths[i])
		}
	}
}

// A directory without the profiler's file names stands for its *.pb.gz
// files.
func TestLoadDirectoryOtherNames(t *testing.T) {
	dir := t.TempDir()
	for i, p := range leakranktest.LeakSeries(3) {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("snap-%d.pb.gz", i)), p.Encode(t), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a profile"), 0o600); err != nil {
		t.Fatal(err)
	}
	snaps, err := Load([]string{dir}, ReadOptions{})
	if err != nil || len(snaps) != 3 {
		t.Fatalf("loaded %d snapshots, error %v; want 3", len(snaps), err)
	}
}

// The series is ordered by the time inside the profiles, not by the order
// or the names of the files.
func TestLoadOrdersByTime(t *testing.T) {
	dir := t.TempDir()
	series := leakranktest.LeakSeries(3)
	var args []string
	for i, p := range series {
		path := filepath.Join(dir, []string{"c.pb.gz", "a.pb.gz", "b.pb.gz"}[i])
		if err := os.WriteFile(path, p.Encode(t), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{path}, args...)
	}
	snaps, err := Load(args, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range snaps {
		if !s.Time.Equal(series[i].Time) {
			t.Errorf("snapshot %d (%s) taken at %v, want %v", i, s.Path, s.Time, series[i].Time)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	empty := t.TempDir()
	dir := t.TempDir()
	good := leakranktest.LeakSeries(1)[0].Write(t, dir)
	junk := filepath.Join(dir, "junk.pb.gz")
	if err := os.WriteFile(junk, []byte("\x1f\x8bnot gzip"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := leakranktest.LeakSeries(2)[1]
	other.BuildID = "0therb1d"
	otherPath := filepath.Join(dir, "other.pb.gz")
	if err := os.WriteFile(otherPath, other.Encode(t), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no args", nil, []string{"no profiles given"}},
		{"empty dir", []string{empty}, []string{"no profiles in " + empty, "heap-*.pb.gz or *.pb.gz"}},
		{"missing", []string{filepath.Join(dir, "nope")}, []string{"nope", "no such file"}},
		{"junk", []string{good, junk}, []string{junk + ": not a pprof profile"}},
		{"two programs", []string{good, otherPath}, []string{"different programs", good, otherPath, "b00c1d", "0therb1d"}},
	} {
		_, err := Load(tc.args, ReadOptions{})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

func TestRuns(t *testing.T) {
	at := func(min int, d time.Duration) *Snapshot {
		return &Snapshot{Path: time.Duration(min).String(), Time: leakranktest.Start.Add(time.Duration(min) * time.Minute), Duration: d}
	}
	// A run of three, a restart, a run of two; then profiles that do not
	// know their duration, which are never split.
	snaps := []*Snapshot{
		at(0, time.Hour), at(1, time.Hour+time.Minute), at(2, time.Hour+2*time.Minute),
		at(3, 30*time.Second), at(4, 90*time.Second),
		at(5, 0), at(6, 0),
	}
	runs := Runs(snaps)
	if len(runs) != 2 || len(runs[0]) != 3 || len(runs[1]) != 4 {
		t.Errorf("runs of %v, want runs of 3 and 4", lengths(runs))
	}
	if got := Runs(nil); len(got) != 0 {
		t.Errorf("Runs(nil) = %v", got)
	}
}

func lengths(runs [][]*Snapshot) []int {
	var out []int
	for _, r := range runs {
		out = append(out, len(r))
	}
	return out
}
