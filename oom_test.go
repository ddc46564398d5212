package profiler_test

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/leakhunt/profiler/internal/pproftest"
)

// A process that leaks toward its GOMEMLIMIT and is killed with SIGKILL
// near it leaves, with the profiler at its defaults, a profile taken near
// the limit in which the leak holds most of the in-use memory, with in-use
// figures close to the memory at the time.
func TestKilledNearLimitLeavesProfile(t *testing.T) {
	dir := runOOMChild(t, "GOMEMLIMIT=256MiB")
	files, _ := filepath.Glob(filepath.Join(dir, "heap-*-limit*.pb.gz"))
	if len(files) == 0 {
		all, _ := filepath.Glob(filepath.Join(dir, "*"))
		t.Fatalf("no limit profile among %q", all)
	}
	// The profile of the highest fraction passed, the newest of it.
	last := files[0]
	for _, f := range files {
		if limitPercent(f) > limitPercent(last) || limitPercent(f) == limitPercent(last) && f > last {
			last = f
		}
	}
	leakInuse, allInuse, comment := leakInProfile(t, last)
	trigger := regexp.MustCompile(`leakhunt trigger: memory at ([\d.]+)% of the GOMEMLIMIT limit.*Go runtime ([\d.]+) MiB`).FindStringSubmatch(comment)
	if trigger == nil {
		t.Fatalf("%s: no trigger comment with the memory figures:\n%s", last, comment)
	}
	atPct, _ := strconv.ParseFloat(trigger[1], 64)
	goMiB, _ := strconv.ParseFloat(trigger[2], 64)
	t.Logf("%s: taken at %.1f%% of GOMEMLIMIT, Go runtime memory %.1f MiB; main.leak in use %.1f MiB of %.1f MiB in all",
		filepath.Base(last), atPct, goMiB, float64(leakInuse)/(1<<20), float64(allInuse)/(1<<20))

	// The leak holds most of the memory: 1 MiB objects at the default
	// rate are each sampled with probability 1-exp(-2) = 0.86, so 200 of
	// them estimate their total within 3 % (one standard error); 10 %
	// is more than three of those.
	if leakInuse < allInuse*9/10 {
		t.Errorf("main.leak holds %d of %d in-use bytes, want at least 90%%", leakInuse, allInuse)
	}
	if atPct < 70 {
		t.Errorf("the last limit profile was taken at %.1f%% of the limit", atPct)
	}
	// In use close to the memory then: within the sampling error of the
	// Go runtime's figure, which also counts its own overhead.
	if mem := goMiB * (1 << 20); float64(leakInuse) < 0.8*mem || float64(leakInuse) > 1.1*mem {
		t.Errorf("main.leak in use %.1f MiB, Go runtime memory at the profile %.1f MiB: want within [80%%, 110%%]", float64(leakInuse)/(1<<20), goMiB)
	}
}

// With no limit, the newest peak profile describes the heap as it was
// when it was taken: the GC before it makes the Go heap's figures current,
// where without it they lag behind a growing heap by up to two cycles.
func TestPeakProfileIsCurrent(t *testing.T) {
	dir := runOOMChild(t, "OOMCHILD_KILL_AT=200", "GOMEMLIMIT=off")
	files, _ := filepath.Glob(filepath.Join(dir, "heap-*-peak.pb.gz"))
	if len(files) == 0 {
		t.Fatal("no peak profile")
	}
	last := files[len(files)-1]
	leakInuse, _, comment := leakInProfile(t, last)
	m := regexp.MustCompile(`Go runtime ([\d.]+) MiB`).FindStringSubmatch(comment)
	if m == nil {
		t.Fatalf("%s: no memory figures in the comments:\n%s", last, comment)
	}
	goMiB, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("%s: %d peak profiles; the newest: Go runtime memory %.1f MiB, main.leak in use %.1f MiB", filepath.Base(last), len(files), goMiB, float64(leakInuse)/(1<<20))
	// The Go runtime's memory was read before the GC, and holds the
	// garbage of the last cycle besides the leak: in use is at most
	// that, and at least half of it (GOGC=100).
	if mem := goMiB * (1 << 20); float64(leakInuse) < 0.5*mem || float64(leakInuse) > 1.1*mem {
		t.Errorf("main.leak in use %.1f MiB, Go runtime memory at the profile %.1f MiB: want within [50%%, 110%%]", float64(leakInuse)/(1<<20), goMiB)
	}
}

// runOOMChild builds and runs testdata/oomchild with env, checks that it
// was killed, logs what it said and returns its profile directory.
func runOOMChild(t *testing.T, env ...string) string {
	bin := filepath.Join(t.TempDir(), "oomchild")
	if out, err := exec.Command(pproftest.GoTool(), "build", "-o", bin, "./testdata/oomchild").CombinedOutput(); err != nil {
		t.Fatalf("building testdata/oomchild: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "profiles")
	cmd := exec.Command(bin, dir)
	cmd.Env = append(cmd.Environ(), append(env, "GOGC=100")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Exited() {
		t.Fatalf("child ended with %v, want killed; stderr: %s", err, stderr.String())
	}
	var leaked, total, live, unGCed int64
	if _, err := fmt.Sscanf(stdout.String(), "leaked %d go_total %d live_heap %d profiled_inuse_without_gc %d",
		&leaked, &total, &live, &unGCed); err != nil {
		t.Fatalf("child said %q: %v", stdout.String(), err)
	}
	t.Logf("%v at the kill: leaked %d MiB, Go runtime memory %d MiB, live heap (as of the last GC) %d MiB, runtime heap profile in use without a GC %d MiB (%.0f%% of the leak)",
		env, leaked>>20, total>>20, live>>20, unGCed>>20, 100*float64(unGCed)/float64(leaked))
	return dir
}

// leakInProfile returns the in-use bytes of main.leak and of all samples
// in a profile file, and its comments.
func leakInProfile(t *testing.T, path string) (leak, all int64, comments string) {
	prof := pproftest.Parse(t, path)
	for _, s := range prof.Sample {
		all += s.Value[3]
		if sampleLeaf(s) == "main.leak" {
			leak += s.Value[3]
		}
	}
	return leak, all, strings.Join(prof.Comments, "\n")
}

// limitPercent is the N of a -limitN profile file's name.
func limitPercent(path string) int {
	m := regexp.MustCompile(`-limit(\d+)\.pb\.gz$`).FindStringSubmatch(path)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
