package profiler_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
)

// recordingExporter keeps every profile it is handed.
type recordingExporter struct {
	mu   sync.Mutex
	got  []profiler.Profile
	fail error // returned by every Export when set
}

func (e *recordingExporter) Export(_ context.Context, p profiler.Profile) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, p)
	return e.fail
}

func (e *recordingExporter) profiles() []profiler.Profile {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]profiler.Profile(nil), e.got...)
}

// Every profile written is handed to the exporter, the same bytes as the
// file, with its time; Stop's final profile too, before Stop returns.
func TestExporterGetsEveryProfile(t *testing.T) {
	exp := new(recordingExporter)
	p, _ := startProfiler(t, profiler.WithExporter(exp), profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	allocDefault(1, 4096)
	path := flushOK(t, p)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	waitExported(t, p, 1)
	got := exp.profiles()
	if len(got) != 1 || string(got[0].Data) != string(file) {
		t.Fatalf("exporter got %d profiles; want 1 equal to the file %s", len(got), path)
	}
	prof, err := profile.ParseData(got[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if prof.TimeNanos != got[0].Time.UnixNano() {
		t.Errorf("Profile.Time %v, profile's TimeNanos %v", got[0].Time, time.Unix(0, prof.TimeNanos))
	}

	allocDefault(2, 8192)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	got = exp.profiles()
	if len(got) != 2 {
		t.Fatalf("after Stop the exporter has %d profiles, want 2", len(got))
	}
	final, err := profile.ParseData(got[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, objects, bytes := totals(samplesIn(final, "default")); objects != 2 || bytes != 4096+8192 {
		t.Errorf("final profile: %d objects, %d bytes live; want 2, %d", objects, bytes, 4096+8192)
	}
	if s := p.Stats(); s.Exported != 2 || s.ExportErrors != 0 || s.ExportDropped != 0 {
		t.Errorf("Stats: exported %d, errors %d, dropped %d; want 2, 0, 0", s.Exported, s.ExportErrors, s.ExportDropped)
	}
}

// waitExported waits until Stats counts n exported profiles.
func waitExported(t *testing.T, p *profiler.Profiler, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Exported < n {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s %d profiles exported, want %d", p.Stats().Exported, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With WithoutFiles, nothing touches the disk, and the profiles still
// reach the exporter.
func TestWithoutFiles(t *testing.T) {
	exp := new(recordingExporter)
	dir := filepath.Join(t.TempDir(), "never")
	p, err := profiler.Start(profiler.WithOutputDir(dir), profiler.WithoutFiles(), profiler.WithExporter(exp),
		profiler.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	path, err := p.Flush()
	if path != "" || err != nil {
		t.Errorf("Flush without files = %q, %v; want \"\", nil", path, err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the output directory exists: %v", err)
	}
	if n := len(exp.profiles()); n != 2 {
		t.Errorf("exporter got %d profiles, want 2 (Flush and Stop)", n)
	}
	if s := p.Stats(); s.FilesWritten != 0 || s.WriteErrors != 0 || s.Exported != 2 {
		t.Errorf("Stats: %d files, %d write errors, %d exported; want 0, 0, 2", s.FilesWritten, s.WriteErrors, s.Exported)
	}
}

// stuckExporter blocks each Export until its context ends, or, if
// ignoreContext, until release is closed.
type stuckExporter struct {
	calls         chan profiler.Profile
	ignoreContext bool
	release       chan struct{}
}

func (e *stuckExporter) Export(ctx context.Context, p profiler.Profile) error {
	e.calls <- p
	if e.ignoreContext {
		<-e.release
		return errors.New("released")
	}
	<-ctx.Done()
	return ctx.Err()
}

// A backend that never answers holds up neither Flush nor the files; the
// queue stays bounded, dropping the oldest waiting profiles, and counts
// them; Stop cancels the export in flight and gives the final profile its
// own timeout.
func TestStuckExporter(t *testing.T) {
	exp := &stuckExporter{calls: make(chan profiler.Profile, 100)}
	var logs lockedBuffer
	p, dir := startProfiler(t, profiler.WithExporter(exp), profiler.WithExportTimeout(time.Second),
		profiler.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	flushOK(t, p)
	<-exp.calls // the first profile is in flight, and stays so
	const flushes = 10
	for range flushes {
		flushOK(t, p)
	}
	if n := len(profilePaths(t, dir)); n < flushes+1 {
		t.Errorf("%d files written, want %d: the stuck exporter held up the files", n, flushes+1)
	}
	s := p.Stats()
	// Of the 10 flushes after the first, two wait in the queue and at most
	// one more is in flight if the first timed out meanwhile.
	if s.ExportDropped < flushes-3 || s.ExportDropped > flushes-2 {
		t.Errorf("%d profiles dropped after %d flushes past a stuck one; want %d or %d", s.ExportDropped, flushes, flushes-3, flushes-2)
	}
	if !strings.Contains(logs.String(), "exporter is slower than the flush interval") {
		t.Errorf("the drops were not logged: %q", logs.String())
	}

	begin := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	// The final profile was handed over, after the first.
	var last profiler.Profile
	for len(exp.calls) > 0 {
		last = <-exp.calls
	}
	if !last.Time.After(begin) {
		t.Errorf("the last profile exported is from %v, before Stop began at %v", last.Time, begin)
	}
	s = p.Stats()
	if s.Exported != 0 || s.ExportErrors == 0 {
		t.Errorf("Stats after Stop: exported %d, errors %d; want 0 and some", s.Exported, s.ExportErrors)
	}
	if sum := loggedFailures(t, logs.String(), "exporting heap profile"); sum != s.ExportErrors+s.ExportDropped {
		t.Errorf("log lines count %d failures, Stats %d errors + %d dropped", sum, s.ExportErrors, s.ExportDropped)
	}
}

// loggedFailures adds up failures=N over the log lines that hold msg.
func loggedFailures(t *testing.T, logs, msg string) int64 {
	t.Helper()
	re := regexp.MustCompile(`failures=(\d+)`)
	var sum int64
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, msg) {
			continue
		}
		if m := re.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			sum += n
		}
	}
	return sum
}

// An exporter that ignores its context cannot hold Stop longer than the
// export timeout and a second.
func TestExporterIgnoringContext(t *testing.T) {
	exp := &stuckExporter{calls: make(chan profiler.Profile, 100), ignoreContext: true, release: make(chan struct{})}
	defer close(exp.release)
	var logs lockedBuffer
	p, _ := startProfiler(t, profiler.WithExporter(exp), profiler.WithExportTimeout(time.Second),
		profiler.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	flushOK(t, p)
	<-exp.calls
	stopped := make(chan error)
	go func() { stopped <- p.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return 30s after it began, with a 1s export timeout")
	}
	if !strings.Contains(logs.String(), "did not return in time") {
		t.Errorf("Stop's give-up was not logged: %q", logs.String())
	}
}

// A failing exporter is counted and logged at most once per interval,
// however many flushes fail; the lines add up to the count.
func TestExporterFailuresLogged(t *testing.T) {
	exp := &recordingExporter{fail: errors.New("backend says no")}
	var logs lockedBuffer
	p, _ := startProfiler(t, profiler.WithExporter(exp), profiler.WithFlushInterval(time.Hour),
		profiler.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	const flushes = 20
	for i := range flushes {
		flushOK(t, p)
		waitExportCalls(t, exp, i+1)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.ExportErrors != flushes+1 || s.Exported != 0 || s.ExportDropped != 0 {
		t.Errorf("Stats: %d errors, %d exported, %d dropped; want %d, 0, 0", s.ExportErrors, s.Exported, s.ExportDropped, flushes+1)
	}
	lines := strings.Count(logs.String(), "exporting heap profile failed")
	if lines != 2 {
		t.Errorf("%d log lines for %d failures within an interval, want 2 (the first, and Stop's): %s", lines, flushes+1, logs.String())
	}
	if sum := loggedFailures(t, logs.String(), "exporting heap profile"); sum != s.ExportErrors {
		t.Errorf("log lines count %d failures, Stats %d", sum, s.ExportErrors)
	}
	if !strings.Contains(logs.String(), "backend says no") || !strings.Contains(logs.String(), "exporter=*profiler_test.recordingExporter") {
		t.Errorf("log lacks the error or the exporter's name: %s", logs.String())
	}
}

func waitExportCalls(t *testing.T, e *recordingExporter, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.profiles()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the exporter had %d calls, want %d", len(e.profiles()), n)
		}
		time.Sleep(time.Millisecond)
	}
}
