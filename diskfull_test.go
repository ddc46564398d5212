package profiler_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leakhunt/profiler"
)

// ownProfile writes a file named like a profile of process 1 taken ago
// before now, size bytes long, and returns its path.
func ownProfile(t *testing.T, dir string, ago time.Duration, size int64) string {
	t.Helper()
	path := filepath.Join(dir, "heap-"+time.Now().UTC().Add(-ago).Format(testFileTime)+"Z-1.pb.gz")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// Truncate leaves a sparse file where the file system allows it, so
	// large sizes cost no disk.
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Without WithMaxBytes the files are held to the default budget of
// 256 MiB: three profiles of 100 MiB, well within WithMaxFiles and
// WithRetention, lose the oldest once a new one is written.
func TestMaxBytesDefault(t *testing.T) {
	dir := t.TempDir()
	var old []string
	for _, ago := range []time.Duration{30 * time.Minute, 20 * time.Minute, 10 * time.Minute} {
		old = append(old, ownProfile(t, dir, ago, 100*mib))
	}
	p, _ := startProfiler(t, profiler.WithOutputDir(dir), profiler.WithGoHeap(false))
	path := flushOK(t, p)
	want := []string{old[1], old[2], path}
	if got := profilePaths(t, dir); !slices.Equal(got, want) {
		t.Errorf("with 300 MiB of profiles and the default budget, kept %q; want the newest two and the new one %q", got, want)
	}
}

// WithMaxBytes(n) keeps the newest profiles whose sizes add up to n bytes
// at most; files not named like a profile neither count nor are deleted,
// and the file just written is kept even when it alone is over the budget.
func TestMaxBytes(t *testing.T) {
	dir := t.TempDir()
	const size = 40_000
	var old []string
	for _, ago := range []time.Duration{30 * time.Minute, 20 * time.Minute, 10 * time.Minute} {
		old = append(old, ownProfile(t, dir, ago, size))
	}
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, make([]byte, 200_000), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ := startProfiler(t, profiler.WithOutputDir(dir), profiler.WithMaxBytes(100_000), profiler.WithGoHeap(false))
	path := flushOK(t, p)
	if n := fileSize(t, path); n > 100_000-2*size {
		t.Fatalf("a new profile of %d bytes; the test wants one under %d", n, 100_000-2*size)
	}
	want := []string{old[1], old[2], path}
	if got := profilePaths(t, dir, "notes.txt"); !slices.Equal(got, want) {
		t.Errorf("kept %q, want the newest that fit in 100000 bytes %q", got, want)
	}
	if n := fileSize(t, notes); n != 200_000 {
		t.Errorf("notes.txt is %d bytes, want 200000 untouched", n)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}

	p, _ = startProfiler(t, profiler.WithOutputDir(dir), profiler.WithMaxBytes(1), profiler.WithGoHeap(false))
	path = flushOK(t, p)
	if got := profilePaths(t, dir, "notes.txt"); !slices.Equal(got, []string{path}) {
		t.Errorf("with a budget of 1 byte kept %q, want only the file just written %q", got, path)
	}
	if n := fileSize(t, notes); n != 200_000 {
		t.Errorf("notes.txt is %d bytes, want 200000 untouched", n)
	}
}

var logFailures = regexp.MustCompile(` failures=(\d+)`)

// logLines returns the lines of logs at level, and the sum of their
// failures counts.
func logLines(t *testing.T, logs *lockedBuffer, level string) (lines []string, failures int) {
	t.Helper()
	for line := range strings.Lines(logs.String()) {
		if !strings.Contains(line, " level="+level+" ") {
			continue
		}
		lines = append(lines, line)
		if m := logFailures.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			failures += n
		}
	}
	return lines, failures
}

// On a disk that cannot take a profile, a loop of Flush calls and the
// background writes log one line per flush interval, not one per failure;
// each line counts the failures since the one before, and failures not yet
// logged when writes succeed again are logged by Stop at the latest, so
// the counts add up to Stats().WriteErrors.
func TestFailedWritesLoggedOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs lockedBuffer
		start := time.Now()
		p, dir := startProfiler(t, profiler.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
			profiler.WithFlushInterval(time.Minute), profiler.WithGoHeap(false))
		wait := func(at time.Duration) {
			time.Sleep(time.Until(start.Add(at)))
			synctest.Wait()
		}
		flushFails := func(n int) {
			t.Helper()
			for range n {
				if _, err := p.Flush(); err == nil {
					t.Fatal("Flush into a blocked directory succeeded")
				}
			}
		}
		// The first write, at 1 s, succeeds; the ticks come at 61 s, 121 s...
		wait(30 * time.Second)
		blockDir(t, dir)
		flushFails(44)
		lines, _ := logLines(t, &logs, "ERROR")
		if len(lines) != 1 {
			t.Fatalf("44 failed Flush calls logged %d ERROR lines, want 1; the first:\n%s", len(lines), lines[0])
		}
		for _, want := range []string{"writing heap profile failed", "dir=" + dir, "err=", "failures=1\n"} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("log line %q lacks %q", lines[0], want)
			}
		}
		// The tick at 61 s comes less than an interval after that line, so
		// its failure is counted into the one at 121 s.
		wait(90 * time.Second)
		if lines, _ := logLines(t, &logs, "ERROR"); len(lines) != 1 {
			t.Fatalf("a failed tick 31 s after the last line was logged:\n%s", logs.String())
		}
		wait(150 * time.Second)
		lines, _ = logLines(t, &logs, "ERROR")
		if len(lines) != 2 || !strings.HasSuffix(lines[1], " failures=45\n") {
			t.Fatalf("after the failed ticks at 61 s and 121 s, ERROR lines:\n%s\nwant a second one with failures=45 (43 Flush calls and 2 ticks)", strings.Join(lines, ""))
		}

		// Writes succeed again at 181 s, with every failure logged.
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		wait(200 * time.Second)
		// Three more failures: the first logged at once, an interval having
		// passed since the last line, the other two left to Stop.
		blockDir(t, dir)
		flushFails(3)
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		errLines, errCount := logLines(t, &logs, "ERROR")
		warnLines, warnCount := logLines(t, &logs, "WARN")
		if len(errLines) != 3 || len(warnLines) != 1 || !strings.Contains(warnLines[0], " failures=2\n") {
			t.Errorf("logs:\n%s\nwant 3 ERROR lines and a WARN line from Stop with failures=2", logs.String())
		}
		if s := p.Stats(); int64(errCount+warnCount) != s.WriteErrors || s.WriteErrors != 49 {
			t.Errorf("the log counts %d failures, Stats %d; want 49 in both", errCount+warnCount, s.WriteErrors)
		}
	})
}
