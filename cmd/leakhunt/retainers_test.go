package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// goLeakSeries is leakranktest.LeakSeries with the growing site in the Go
// heap, whose objects a retainers profile has, without ages as the Go
// heap's samples are.
func goLeakSeries(n int) []leakranktest.Profile {
	series := leakranktest.LeakSeries(n)
	for i := range series {
		for j, s := range series[i].Samples {
			if reflect.DeepEqual(s.Stack, leakranktest.GrowingStack) {
				series[i].Samples[j].Heap, series[i].Samples[j].Age = "go", -1
			}
		}
	}
	return series
}

// The chains of the growing site: three quarters of its bytes held
// through a map by a global, a quarter by a goroutine's frame.
var (
	sessionsChain = []string{"[48 B object] +16", "[map] map[string]*app.Session", "[held by] app.sessions"}
	evictChain    = []string{"[held by] app.(*SessionStore).evict (goroutine 7, chan receive)"}
)

// goLeakRetainers is a retainers profile of the growing site of
// goLeakSeries, taken at the given time.
func goLeakRetainers(at time.Time) leakranktest.Retainers {
	return leakranktest.Retainers{
		Time: at,
		Samples: []leakranktest.Retained{
			{Heap: "go", Stack: leakranktest.GrowingStack, Chain: sessionsChain, Bytes: 320 << 10},
			{Heap: "go", Stack: leakranktest.GrowingStack, Chain: sessionsChain[1:], Bytes: 160 << 10},
			{Heap: "go", Stack: leakranktest.GrowingStack, Chain: evictChain, Bytes: 160 << 10},
			// The same stack in a heap of tracked objects, which no site
			// of the series is in: not to be counted in the Go heap's.
			{Heap: "sessions", Stack: leakranktest.GrowingStack, Chain: evictChain, Bytes: 1 << 20},
		},
	}
}

// retainersDir writes goLeakSeries(n) into a directory and its retainers
// profile, taken half a minute after the last heap profile, into another;
// it returns both.
func retainersDir(t *testing.T, n int) (dir, retainers string) {
	t.Helper()
	dir = t.TempDir()
	leakranktest.WriteSeries(t, dir, goLeakSeries(n))
	at := leakranktest.Start.Add(time.Duration(n-1)*time.Minute + 30*time.Second)
	return dir, goLeakRetainers(at).Write(t, t.TempDir())
}

func TestRankRetainersTable(t *testing.T) {
	dir, retainers := retainersDir(t, 10)
	status, out, errOut := leakhunt(t, "rank", "-retainers", retainers, dir)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
	t.Logf("\n%s", out)
	// The table is as without -retainers; the sites whose objects the
	// retainers profile holds follow, by rank: the Go heap's queue, which
	// it does not hold, and the hand-allocated heaps, which it cannot,
	// are left out.
	_, plain, _ := leakhunt(t, "rank", dir)
	table := plain[:strings.Index(plain, "\nwhat changed")]
	want := table + `
what holds them, in the retainers profile of 2026-11-26 06:09:30.000 UTC:
  1  app.(*SessionStore).Add  held by app.sessions (75%), app.(*SessionStore).evict (goroutine 7, chan receive) (25%)
`
	if !strings.HasPrefix(out, want) {
		t.Errorf("output does not start with\n%s", want)
	}
	if !strings.Contains(table, "\n1     0.20%  640KiB   +3.75MiB/h  -        go       app.(*SessionStore).Add  app.handleLogin < main.main\n") {
		t.Errorf("the growing site is not first in the Go heap:\n%s", table)
	}
}

func TestRankRetainersJSON(t *testing.T) {
	dir, retainers := retainersDir(t, 10)
	status, out, errOut := leakhunt(t, "rank", "-json", "-retainers", retainers, dir)
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
	const grow = `    "held_bytes": 655360,
    "held_by": [
      {
        "root": "app.sessions",
        "bytes": 491520,
        "chain": [
          "[held by] app.sessions",
          "[map] map[string]*app.Session",
          "[48 B object] +16"
        ]
      },
      {
        "root": "app.(*SessionStore).evict (goroutine 7, chan receive)",
        "bytes": 163840,
        "chain": [
          "[held by] app.(*SessionStore).evict (goroutine 7, chan receive)"
        ]
      }
    ]
  },
`
	if !strings.Contains(out, `"inuse_history": [`) || !strings.Contains(out, grow) {
		t.Errorf("output lacks\n%s\nin\n%s", grow, out)
	}
	var sites []siteJSON
	if err := json.Unmarshal([]byte(out), &sites); err != nil {
		t.Fatal(err)
	}
	// Every site of the Go heap has the fields, [] if none of its
	// objects is in the retainers profile; no site of the hand-allocated
	// heap, which it cannot have, has.
	for _, s := range sites {
		switch {
		case s.Function == leakranktest.GrowingStack[0]:
			if len(s.HeldBy) != 2 || *s.HeldBytes != 640<<10 {
				t.Errorf("growing site: held by %+v", s.HeldBy)
			}
		case s.Heap == "go":
			if s.HeldBytes == nil || *s.HeldBytes != 0 || s.HeldBy == nil || len(s.HeldBy) != 0 {
				t.Errorf("%s: held bytes %v, held by %#v; want 0 and []", s.Function, s.HeldBytes, s.HeldBy)
			}
		default:
			if s.HeldBytes != nil || s.HeldBy != nil {
				t.Errorf("%s in heap %s: held bytes %v, held by %+v; want neither", s.Function, s.Heap, s.HeldBytes, s.HeldBy)
			}
		}
	}
	if !strings.Contains(out, "\n    \"held_bytes\": 0,\n    \"held_by\": []\n") {
		t.Errorf("no site with \"held_by\": [] in\n%s", out)
	}

	// Without -retainers, the JSON is as it was.
	_, out, _ = leakhunt(t, "rank", "-json", dir)
	if strings.Contains(out, `"held_`) {
		t.Errorf("held-by fields without -retainers:\n%s", out)
	}
}

// A site shown holds more roots than are shown: the rest are counted.
func TestRankRetainersMoreRoots(t *testing.T) {
	dir, _ := retainersDir(t, 4)
	r := goLeakRetainers(leakranktest.Start.Add(3 * time.Minute))
	for i, b := range []int64{40, 30, 20, 6, 3, 1} {
		root := "[held by] app.worker (goroutine " + string(rune('1'+i)) + ", select)"
		r.Samples = append(r.Samples, leakranktest.Retained{Heap: "go", Stack: leakranktest.ShrinkingStack, Chain: []string{root}, Bytes: b << 10})
	}
	retainers := r.Write(t, t.TempDir())
	status, out, errOut := leakhunt(t, "rank", "-retainers", retainers, dir)
	if status != 0 {
		t.Fatalf("status %d, stderr:\n%s", status, errOut)
	}
	held := out[strings.Index(out, "what holds them"):]
	want := `what holds them, in the retainers profile of 2026-11-26 06:03:00.000 UTC:
  1  app.(*SessionStore).Add  held by app.sessions (75%), app.(*SessionStore).evict (goroutine 7, chan receive) (25%)
  3  app.(*Queue).push        held by app.worker (goroutine 1, select) (40%), app.worker (goroutine 2, select) (30%), app.worker (goroutine 3, select) (20%) and 3 more (10%)
`
	if !strings.HasPrefix(held, want) {
		t.Errorf("got\n%s\nwant it to start\n%s", held, want)
	}
}

// A retainers profile is refused where a snapshot is needed, and anything
// else after -retainers, each with a message that says what to do.
func TestRankRetainersBadInput(t *testing.T) {
	dir, retainers := retainersDir(t, 3)
	paths, err := filepath.Glob(filepath.Join(dir, "heap-*.pb.gz"))
	if err != nil || len(paths) != 3 {
		t.Fatalf("%d profiles, %v", len(paths), err)
	}
	onlyRetainers := filepath.Dir(retainers)
	missing := filepath.Join(t.TempDir(), "gone.pb.gz")
	for _, tc := range []struct {
		name string
		args []string
		want string // all of stderr
	}{
		{"heap profile as -retainers", []string{"rank", "-retainers", paths[0], dir},
			"leakhunt: -retainers: " + paths[0] + `: not a retainers profile: none of its comments starts with "leakhunt retainers profile:", as WriteRetainers writes them` + "\n"},
		{"retainers profile to rank", []string{"rank", paths[0], paths[1], retainers},
			"leakhunt: " + retainers + ": a retainers profile (what keeps objects alive), not a heap snapshot (rank -retainers FILE reads it)\n"},
		{"retainers profile to diff", []string{"diff", paths[0], retainers},
			"leakhunt: " + retainers + ": a retainers profile (what keeps objects alive), not a heap snapshot (rank -retainers FILE reads it)\n"},
		{"directory of retainers profiles", []string{"rank", onlyRetainers},
			"leakhunt: no heap profiles in " + onlyRetainers + ", only retainers profiles (retainers-*.pb.gz), which are no snapshots\n"},
		{"directory as -retainers", []string{"rank", "-retainers", onlyRetainers, dir},
			"leakhunt: -retainers: " + onlyRetainers + ": not a regular file (a directory)\n"},
		{"missing -retainers", []string{"rank", "-retainers", missing, dir},
			"leakhunt: -retainers: stat " + missing + ": no such file or directory\n"},
	} {
		status, out, errOut := leakhunt(t, tc.args...)
		if status != exitBadInput || errOut != tc.want || out != "" {
			t.Errorf("%s: status %d, stderr\n%q\nwant %d and\n%q\nstdout:\n%s", tc.name, status, errOut, exitBadInput, tc.want, out)
		}
	}
}

// A retainers profile in the directory ranked, under the name the
// profiler would give it, changes nothing but a note on stderr that says
// how to use it; whether the directory's profiles have the profiler's
// names or others.
func TestRankDirWithRetainers(t *testing.T) {
	for _, names := range []string{"profiler's", "other"} {
		t.Run(names, func(t *testing.T) {
			dir := t.TempDir()
			for i, p := range goLeakSeries(5) {
				if names == "profiler's" {
					p.Write(t, dir)
				} else if err := os.WriteFile(filepath.Join(dir, "snap-"+string(rune('a'+i))+".pb.gz"), p.Encode(t), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, before, _ := leakhunt(t, "rank", "-json", dir)
			older := goLeakRetainers(leakranktest.Start.Add(time.Minute)).Write(t, dir)
			newer := goLeakRetainers(leakranktest.Start.Add(4*time.Minute)).Write(t, dir)

			status, after, errOut := leakhunt(t, "rank", "-json", dir)
			if want := "leakhunt: note: " + newer + " is a retainers profile: -retainers " + newer + " shows what holds each site's objects\n"; status != 0 || errOut != want {
				t.Errorf("status %d, stderr\n%q\nwant 0 and\n%q", status, errOut, want)
			}
			if after != before {
				t.Errorf("with retainers profiles in the directory:\n%s\nwithout:\n%s", after, before)
			}
			status, out, errOut := leakhunt(t, "rank", "-retainers", older, dir)
			if status != 0 || errOut != "" || !strings.Contains(out, "held by app.sessions (75%)") {
				t.Errorf("-retainers: status %d, stderr %q, stdout:\n%s", status, errOut, out)
			}
		})
	}
}

// A retainers profile taken before the run ranked began is of another
// run: it is used, with a note.
func TestRankRetainersEarlierRun(t *testing.T) {
	dir, _ := retainersDir(t, 3) // the run began a minute before its first profile
	retainers := goLeakRetainers(leakranktest.Start.Add(-2*time.Minute)).Write(t, t.TempDir())
	status, out, errOut := leakhunt(t, "rank", "-retainers", retainers, dir)
	want := "leakhunt: note: the retainers profile was taken at 2026-11-26 05:58:00.000 UTC, before the run ranked began (2026-11-26 05:59:00.000 UTC): what it shows held the objects of an earlier run\n"
	if status != 0 || errOut != want || !strings.Contains(out, "held by app.sessions") {
		t.Errorf("status %d, stderr\n%q\nwant 0 and\n%q\nstdout:\n%s", status, errOut, want, out)
	}
}
