package profiler_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// These tests use the exported API only and read what the profiler wrote
// the way a user does: profile.Parse and `go tool pprof`. Only one profiler
// runs per process, so no test here is parallel, and each Start is paired
// with a Stop through t.Cleanup.

const mib = 1 << 20

// testFileName is the documented file name: heap-<UTC time>-<pid>.pb.gz.
var testFileName = regexp.MustCompile(`^heap-(\d{8}T\d{6}\.\d{9})Z-(\d+)\.pb\.gz$`)

const testFileTime = "20060102T150405.000000000"

// startProfiler starts a profiler writing to a fresh directory (not yet
// created, so Start makes it) with a logger that drops everything; opts come
// last and override those. It returns the profiler and the directory.
func startProfiler(t *testing.T, opts ...profiler.Option) (*profiler.Profiler, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "profiles")
	base := []profiler.Option{profiler.WithOutputDir(dir), profiler.WithLogger(slog.New(slog.DiscardHandler))}
	p, err := profiler.Start(append(base, opts...)...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	return p, dir
}

func flushOK(t *testing.T, p *profiler.Profiler) string {
	t.Helper()
	path, err := p.Flush()
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Flush returned %q: %v", path, err)
	}
	return path
}

// profilePaths lists the profile files in dir, oldest first by name, and
// fails on any other file unless it is in allowed.
func profilePaths(t *testing.T, dir string, allowed ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		switch {
		case testFileName.MatchString(e.Name()):
			out = append(out, filepath.Join(dir, e.Name()))
		case !slices.Contains(allowed, e.Name()):
			t.Errorf("unexpected file %s in the output directory", e.Name())
		}
	}
	return out // os.ReadDir sorts by name
}

// samplesIn returns the samples labelled heap=name.
func samplesIn(prof *profile.Profile, name string) []*profile.Sample {
	var out []*profile.Sample
	for _, s := range prof.Sample {
		if slices.Equal(s.Label["heap"], []string{name}) {
			out = append(out, s)
		}
	}
	return out
}

// totals sums each sample type over samples.
func totals(samples []*profile.Sample) (allocObjects, allocBytes, inuseObjects, inuseBytes int64) {
	for _, s := range samples {
		allocObjects += s.Value[0]
		allocBytes += s.Value[1]
		inuseObjects += s.Value[2]
		inuseBytes += s.Value[3]
	}
	return
}

func sampleLeaf(s *profile.Sample) string {
	if len(s.Location) == 0 || len(s.Location[0].Line) == 0 {
		return ""
	}
	return s.Location[0].Line[0].Function.Name
}

// The allocating helpers below are the leaf frames the profiles must show:
// the hook records the stack of its caller.

//go:noinline
func allocCMem(h *profiler.Heap, key uintptr, size int) { h.Alloc(key, size) }

//go:noinline
func allocSlab(h *profiler.Heap, key uintptr, size int) { h.Alloc(key, size) }

//go:noinline
func allocDefault(key uintptr, size int) { profiler.Alloc(key, size) }

const pkgPath = "github.com/leakhunt/profiler_test."

// TestProfileFiles checks every file a profiler writes, the Flush ones and
// Stop's final one, with the pprof parser and the real `go tool pprof`.
func TestProfileFiles(t *testing.T) {
	begin := time.Now()
	p, dir := startProfiler(t, profiler.WithSamplingRate(1))
	cmem, slabs := profiler.NewHeap("cmem"), profiler.NewHeap("slabs")
	for k := range 3 {
		allocCMem(cmem, uintptr(k), mib)
	}
	cmem.Free(0)
	for k := range 2 {
		allocSlab(slabs, uintptr(k), 3*mib)
	}
	first := flushOK(t, p)
	slabs.Free(0) // only the final profile sees this
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	end := time.Now()

	files := profilePaths(t, dir)
	if len(files) != 2 || files[0] != first {
		t.Fatalf("files %q, want the Flush file %q and one from Stop", files, first)
	}
	// At rate 1 every allocation is sampled with weight 1: values are exact.
	wantSlabs := [][4]int64{{2, 6 * mib, 2, 6 * mib}, {2, 6 * mib, 1, 3 * mib}}
	for i, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel() // each reads its own file
			prof := pproftest.Parse(t, path)
			checkShape(t, prof, 1)
			if prof.TimeNanos < begin.UnixNano() || prof.TimeNanos > end.UnixNano() {
				t.Errorf("TimeNanos %v outside the test's run [%v, %v]", time.Unix(0, prof.TimeNanos), begin, end)
			}
			checkHookSample(t, prof, "cmem", pkgPath+"allocCMem", mib, [4]int64{3, 3 * mib, 2, 2 * mib})
			checkHookSample(t, prof, "slabs", pkgPath+"allocSlab", 3*mib, wantSlabs[i])
			checkMapping(t, prof)
			checkPprofTool(t, path, 1)
		})
	}
}

// checkShape checks what every profile shares with runtime/pprof's heap
// profile: sample types, period, and a heap label on every sample.
func checkShape(t *testing.T, prof *profile.Profile, rate int64) {
	t.Helper()
	var types []string
	for _, st := range prof.SampleType {
		types = append(types, st.Type+"/"+st.Unit)
	}
	if want := []string{"alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"}; !slices.Equal(types, want) {
		t.Errorf("sample types %q, want %q", types, want)
	}
	if prof.DefaultSampleType != "inuse_space" {
		t.Errorf("default sample type %q, want inuse_space", prof.DefaultSampleType)
	}
	if pt := prof.PeriodType; pt == nil || pt.Type != "space" || pt.Unit != "bytes" {
		t.Errorf("period type %v, want space/bytes", pt)
	}
	if prof.Period != rate {
		t.Errorf("period %d, want the sampling rate %d", prof.Period, rate)
	}
	want := fmt.Sprintf("sampling rate %d bytes", rate)
	if !slices.ContainsFunc(prof.Comments, func(c string) bool { return strings.Contains(c, want) }) {
		t.Errorf("comments %q do not mention %q", prof.Comments, want)
	}
	for _, s := range prof.Sample {
		if len(s.Label["heap"]) != 1 {
			t.Errorf("sample %v: heap label %q, want exactly one value", s.Value, s.Label["heap"])
		}
	}
}

// checkHookSample checks that heap holds the samples of one site, from
// leaf, of objects of size bytes, with values summing to want: one sample
// for the cumulative allocations and one per age bucket of the live
// objects, those labelled with their age in seconds.
func checkHookSample(t *testing.T, prof *profile.Profile, heap, leaf string, size int64, want [4]int64) {
	t.Helper()
	samples := samplesIn(prof, heap)
	if len(samples) == 0 {
		t.Fatalf("heap=%s: no samples", heap)
	}
	var got [4]int64
	for _, s := range samples {
		for i := range got {
			got[i] += s.Value[i]
		}
		if got := sampleLeaf(s); got != leaf {
			t.Errorf("heap=%s: leaf function %q, want %q", heap, got, leaf)
		}
		if !slices.Equal(s.NumLabel["bytes"], []int64{size}) || !slices.Equal(s.NumUnit["bytes"], []string{"bytes"}) {
			t.Errorf("heap=%s: bytes label %v unit %q, want [%d] in bytes", heap, s.NumLabel["bytes"], s.NumUnit["bytes"], size)
		}
		inuse := s.Value[2] != 0 || s.Value[3] != 0
		if age := s.NumLabel["age"]; inuse != (len(age) == 1) || (inuse && !slices.Equal(s.NumUnit["age"], []string{"seconds"})) {
			t.Errorf("heap=%s: sample %v has age label %v unit %q; want one age in seconds exactly on in-use samples",
				heap, s.Value, age, s.NumUnit["age"])
		}
	}
	if got != want {
		t.Errorf("heap=%s: values sum to %v, want %v", heap, got, want)
	}
}

// checkMapping checks that the executable's mapping is present and holds
// the code of this test, so that -lines, -list and -disasm find the binary.
func checkMapping(t *testing.T, prof *profile.Profile) {
	t.Helper()
	if len(prof.Mapping) == 0 {
		t.Fatal("no mappings")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	samples := samplesIn(prof, "cmem")
	if len(samples) == 0 {
		return // reported by checkHookSample
	}
	m := samples[0].Location[0].Mapping
	if m == nil {
		t.Fatalf("leaf location %#x has no mapping; mappings %v", samples[0].Location[0].Address, prof.Mapping)
	}
	if !m.HasFunctions || !m.HasFilenames || !m.HasLineNumbers {
		t.Errorf("mapping %+v does not say it is symbolized", m)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if m.File != exe || m.BuildID == "" {
		t.Errorf("leaf location's mapping: file %q build ID %q; want %q with its build ID", m.File, m.BuildID, exe)
	}
}

// checkPprofTool opens the file with `go tool pprof` the way the README
// says users do.
func checkPprofTool(t *testing.T, path string, rate int) {
	t.Helper()
	outs := pproftest.RunAll(t,
		[]string{"-top", path},
		[]string{"-raw", path},
		[]string{"-top", "-unit=B", "-tagfocus=heap=cmem", path},
		[]string{"-top", "-sample_index=alloc_objects", "-tagfocus=heap=slabs", path},
	)
	top, raw, cmem, slabs := outs[0], outs[1], outs[2], outs[3]
	for _, leaf := range []string{"allocCMem", "allocSlab"} {
		if !strings.Contains(top, pkgPath+leaf) {
			t.Errorf("-top does not show %s:\n%s", leaf, top)
		}
	}

	for _, want := range []string{
		"PeriodType: space bytes\n",
		"Period: " + strconv.Itoa(rate) + "\n",
		"alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes[dflt]",
		"heap:[cmem]",
		"heap:[slabs]",
		"bytes:[1048576 bytes]",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("-raw lacks %q:\n%s", want, raw)
		}
	}

	// -tagfocus on the heap label shows one heap alone: its in-use bytes,
	// exact at rate 1, and nothing of the other.
	if !regexp.MustCompile(`(?m)^\s*2097152B .*allocCMem$`).MatchString(cmem) || strings.Contains(cmem, "allocSlab") {
		t.Errorf("-tagfocus=heap=cmem: want allocCMem with 2097152B and no allocSlab:\n%s", cmem)
	}
	if !regexp.MustCompile(`(?m)^\s*2 .*allocSlab$`).MatchString(slabs) || strings.Contains(slabs, "allocCMem") {
		t.Errorf("-tagfocus=heap=slabs: want allocSlab with 2 objects and no allocCMem:\n%s", slabs)
	}
}

// The period is the configured rate, not a constant: pprof and -diff_base
// rely on it to compare profiles taken at different rates.
func TestPeriodIsSamplingRate(t *testing.T) {
	const rate = 12345
	p, _ := startProfiler(t, profiler.WithSamplingRate(rate), profiler.WithGoHeap(false))
	prof := pproftest.Parse(t, flushOK(t, p))
	checkShape(t, prof, rate)
	if len(prof.Sample) != 0 {
		t.Errorf("%d samples with nothing allocated through the hook", len(prof.Sample))
	}
}

func TestFileNamesAndModes(t *testing.T) {
	p, dir := startProfiler(t)
	var flushed []string
	var windows [][2]time.Time
	for range 3 {
		before := time.Now()
		flushed = append(flushed, flushOK(t, p))
		windows = append(windows, [2]time.Time{before, time.Now()})
	}
	if !slices.IsSorted(flushed) {
		t.Errorf("names do not sort by time: %q", flushed)
	}
	if got := profilePaths(t, dir); !slices.Equal(got, flushed) {
		t.Errorf("directory holds %q, want %q", got, flushed)
	}
	for i, path := range flushed {
		if filepath.Dir(path) != dir {
			t.Errorf("%s is not in %s", path, dir)
		}
		m := testFileName.FindStringSubmatch(filepath.Base(path))
		if m == nil {
			t.Errorf("%s does not match %v", path, testFileName)
			continue
		}
		if m[2] != strconv.Itoa(os.Getpid()) {
			t.Errorf("%s: pid %s, want %d", path, m[2], os.Getpid())
		}
		ts, err := time.Parse(testFileTime, m[1])
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		// The name is the UTC time of the write, to the nanosecond.
		if lo, hi := windows[i][0].Round(0), windows[i][1].Round(0); ts.Before(lo) || ts.After(hi) {
			t.Errorf("%s: time %v outside the Flush call [%v, %v]", path, ts, lo.UTC(), hi.UTC())
		}
	}

	if runtime.GOOS == "windows" {
		return // no Unix modes
	}
	checkMode(t, dir, 0o700)
	for _, path := range flushed {
		checkMode(t, path, 0o600)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

// WithMaxFiles(n) keeps the newest n profiles, including those an earlier
// process left (they are named the same way), and nothing else is touched.
func TestMaxFiles(t *testing.T) {
	dir := t.TempDir()
	// Another process's profile from ten minutes ago: within WithRetention's
	// default hour, so only the bound on files removes it.
	older := filepath.Join(dir, "heap-"+time.Now().UTC().Add(-10*time.Minute).Format("20060102T150405.000000000")+"Z-1.pb.gz")
	other := filepath.Join(dir, "notes.txt")
	for _, f := range []string{older, other} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := startProfiler(t, profiler.WithOutputDir(dir), profiler.WithMaxFiles(3))
	var flushed []string
	for i := range 7 {
		flushed = append(flushed, flushOK(t, p))
		want := min(i+2, 3) // the older file counts until pushed out
		if got := len(profilePaths(t, dir, "notes.txt")); got != want {
			t.Fatalf("after %d flushes: %d profiles, want %d", i+1, got, want)
		}
	}
	if got := profilePaths(t, dir, "notes.txt"); !slices.Equal(got, flushed[4:]) {
		t.Errorf("kept %q, want the newest three %q", got, flushed[4:])
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file not named like a profile was touched: %v", err)
	}
	if s := p.Stats(); s.FilesWritten != 7 || s.WriteErrors != 0 {
		t.Errorf("Stats: %d written, %d errors; want 7 and 0", s.FilesWritten, s.WriteErrors)
	}
}

// Writes go through a temporary file renamed into place; none may be left
// behind. A stale one that a crashed writer left an hour ago is removed; a
// fresh one, possibly another process's write in progress, is not.
func TestNoTempFilesLeft(t *testing.T) {
	dir := t.TempDir()
	stale, fresh := filepath.Join(dir, ".heap-stale.tmp"), filepath.Join(dir, ".heap-fresh.tmp")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	p, _ := startProfiler(t, profiler.WithOutputDir(dir))
	for range 3 {
		flushOK(t, p)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	tmps, err := filepath.Glob(filepath.Join(dir, ".heap-*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tmps, []string{fresh}) {
		t.Errorf("temporary files %q, want only the fresh foreign one %q", tmps, fresh)
	}
	if got := len(profilePaths(t, dir, ".heap-fresh.tmp")); got != 4 {
		t.Errorf("%d profiles, want 3 from Flush and 1 from Stop", got)
	}
}

func TestStartUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(file, "profiles") // its parent is a regular file
	p, err := profiler.Start(profiler.WithOutputDir(dir))
	if err == nil {
		p.Stop()
		t.Fatal("Start with an output directory under a regular file succeeded")
	}
	if p != nil {
		t.Errorf("Start returned a profiler with error %v", err)
	}
	// The error names the path in the way and what went wrong.
	if msg := err.Error(); !strings.HasPrefix(msg, "profiler: ") || !strings.Contains(msg, "output directory") || !strings.Contains(msg, file) {
		t.Errorf("error %q: want a profiler: prefix, the words output directory and the path %s", msg, file)
	}
	// The failed Start left nothing running.
	startProfiler(t)
}

// lockedBuffer is a bytes.Buffer safe for a logger on another goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// blockDir replaces dir by a regular file, so that nothing can be written
// in it whatever the user's privileges (root ignores modes).
func blockDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A failed write is returned by Flush, counted, logged, and leaves the
// profiler running: the next write succeeds once the directory is usable.
func TestFlushWriteError(t *testing.T) {
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p, dir := startProfiler(t, profiler.WithLogger(logger), profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	flushOK(t, p)

	blockDir(t, dir)
	path, err := p.Flush()
	if err == nil || path != "" {
		t.Fatalf("Flush into a blocked directory = %q, %v; want an error", path, err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the directory %s", err, dir)
	}
	s := p.Stats()
	if s.WriteErrors != 1 || s.FilesWritten != 1 || !errors.Is(s.LastError, err) {
		t.Errorf("Stats after the failure: %d errors, %d written, last error %v; want 1, 1, %v",
			s.WriteErrors, s.FilesWritten, s.LastError, err)
	}
	line := logs.String()
	for _, want := range []string{"level=ERROR", "writing heap profile failed", "dir=" + dir} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}

	// Still running: the hook records, and a write succeeds once the
	// directory can be made again.
	allocDefault(1, 100)
	if s := p.Stats(); s.Samples != 1 {
		t.Errorf("after a failed write the hook recorded %d samples, want 1", s.Samples)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	path = flushOK(t, p)
	if s := p.Stats(); s.WriteErrors != 1 || s.FilesWritten != 2 || s.LastError != nil {
		t.Errorf("Stats after recovery: %d errors, %d written, last error %v; want 1, 2, nil",
			s.WriteErrors, s.FilesWritten, s.LastError)
	}
	prof := pproftest.Parse(t, path)
	if _, _, objects, _ := totals(samplesIn(prof, "default")); objects != 1 {
		t.Errorf("profile after recovery: %d live objects, want 1", objects)
	}
}

// Stop returns the error of its final write, and again on every later call;
// a failed Stop still lets a new profiler start.
func TestStopReturnsFinalWriteError(t *testing.T) {
	p, dir := startProfiler(t)
	blockDir(t, dir)
	err := p.Stop()
	if err == nil {
		t.Fatal("Stop with a blocked output directory returned nil")
	}
	if again := p.Stop(); again != err {
		t.Errorf("second Stop = %v, want the first result %v", again, err)
	}
	if s := p.Stats(); s.WriteErrors != 1 || s.FilesWritten != 0 {
		t.Errorf("Stats: %d errors, %d written; want 1 and 0", s.WriteErrors, s.FilesWritten)
	}
	startProfiler(t)
}

func TestStartTwice(t *testing.T) {
	p, _ := startProfiler(t)
	q, err := profiler.Start(profiler.WithOutputDir(t.TempDir()))
	if err == nil {
		q.Stop()
		t.Fatal("a second Start succeeded while a profiler runs")
	}
	if q != nil || !strings.HasPrefix(err.Error(), "profiler: ") {
		t.Errorf("second Start = %v, %v; want nil and a profiler: error", q, err)
	}
	// The refused Start did not disturb the running one.
	flushOK(t, p)
}

func TestStopIsIdempotent(t *testing.T) {
	p, dir := startProfiler(t)
	// Concurrent Stops all return, with one result, and one final file.
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() { errs <- p.Stop() }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop after Stop: %v", err)
	}
	if n := len(profilePaths(t, dir)); n != 1 {
		t.Errorf("%d files after several Stops, want 1 final profile", n)
	}
	if s := p.Stats(); s.FilesWritten != 1 {
		t.Errorf("FilesWritten %d, want 1", s.FilesWritten)
	}
}

func TestAfterStop(t *testing.T) {
	p, dir := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if path, err := p.Flush(); !errors.Is(err, profiler.ErrStopped) || path != "" {
		t.Errorf("Flush after Stop = %q, %v; want ErrStopped", path, err)
	}
	if err := p.WriteProfile(new(bytes.Buffer)); !errors.Is(err, profiler.ErrStopped) {
		t.Errorf("WriteProfile after Stop = %v, want ErrStopped", err)
	}
	before := p.Stats()
	callEveryHook(profiler.NewHeap("after-stop"))
	if after := p.Stats(); after != before {
		t.Errorf("hook calls after Stop changed Stats: %+v, then %+v", before, after)
	}
	if n := len(profilePaths(t, dir)); n != 1 {
		t.Errorf("%d files, want only Stop's", n)
	}

	// A new profiler starts, with its own state.
	q, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	allocDefault(1, 100)
	if s := q.Stats(); s.Samples != 1 || s.LiveSamples != 1 {
		t.Errorf("restarted profiler: %+v, want one live sample", s)
	}
	if p.Stats() != before {
		t.Errorf("the stopped profiler saw the new one's samples")
	}
}

type trackedObject struct {
	next *trackedObject
	pad  [127]uintptr
}

// newTrackedObject returns a 1 KiB object with pointers on the heap: big
// enough that the allocator never packs it with others (tiny objects may
// never be cleaned up) and never stack allocated.
//
//go:noinline
func newTrackedObject() *trackedObject { return new(trackedObject) }

// callEveryHook calls each hook entry point once with a key or object that
// would be sampled at rate 1.
func callEveryHook(h *profiler.Heap) {
	obj := newTrackedObject()
	profiler.Alloc(42, 100)
	profiler.Free(42)
	profiler.Alloc(43, 100)
	profiler.Track(obj)
	h.Alloc(42, 100)
	h.Free(42)
	h.AllocContext(context.Background(), 43, 100)
	profiler.TrackIn(context.Background(), h, obj, 4096)
}

func TestHooksWithoutProfiler(t *testing.T) {
	h := profiler.NewHeap("before-start")
	callEveryHook(h) // must not panic
	p, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	if s := p.Stats(); s.Samples != 0 || s.LiveSamples != 0 {
		t.Errorf("hook calls before Start were recorded: %+v", s)
	}
	// Keys reported before Start are unknown to the profiler.
	profiler.Free(43)
	h.Free(43)
	if s := p.Stats(); s.LiveSamples != 0 {
		t.Errorf("LiveSamples %d, want 0", s.LiveSamples)
	}
}

func TestInvalidOptions(t *testing.T) {
	big := 1 << 30
	big *= 2 // 1<<31 without overflowing a constant on 32-bit systems
	tests := []struct {
		opt  profiler.Option
		name string
	}{
		{profiler.WithSamplingRate(0), "WithSamplingRate"},
		{profiler.WithSamplingRate(-1), "WithSamplingRate"},
		{profiler.WithSamplingRate(1<<30 + 1), "WithSamplingRate"},
		{profiler.WithSamplingRate(big), "WithSamplingRate"},
		{profiler.WithOutputDir(""), "WithOutputDir"},
		{profiler.WithFlushInterval(0), "WithFlushInterval"},
		{profiler.WithFlushInterval(-time.Minute), "WithFlushInterval"},
		{profiler.WithFlushInterval(500 * time.Millisecond), "WithFlushInterval"},
		{profiler.WithMaxFiles(0), "WithMaxFiles"},
		{profiler.WithMaxFiles(-1), "WithMaxFiles"},
		{profiler.WithMaxBytes(0), "WithMaxBytes"},
		{profiler.WithMaxLiveSamples(0), "WithMaxLiveSamples"},
		{profiler.WithStackDepth(0), "WithStackDepth"},
		{profiler.WithStackDepth(257), "WithStackDepth"},
		{profiler.WithLogger(nil), "WithLogger"},
		{profiler.WithExporter(nil), "WithExporter"},
		{profiler.WithExportTimeout(999 * time.Millisecond), "WithExportTimeout"},
	}
	for _, tt := range tests {
		// Validation comes before any side effect: the directory is not
		// created.
		dir := filepath.Join(t.TempDir(), "profiles")
		p, err := profiler.Start(profiler.WithOutputDir(dir), tt.opt)
		if err == nil {
			p.Stop()
			t.Errorf("Start with an invalid %s succeeded", tt.name)
			continue
		}
		if p != nil || !strings.HasPrefix(err.Error(), "profiler: ") || !strings.Contains(err.Error(), tt.name) {
			t.Errorf("Start with an invalid %s = %v, %q; want nil and an error naming it", tt.name, p, err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("Start with an invalid %s created the output directory", tt.name)
		}
	}

	// All invalid options are named in one error, so a user fixes them in
	// one go.
	_, err := profiler.Start(profiler.WithSamplingRate(0), profiler.WithOutputDir(t.TempDir()),
		profiler.WithMaxFiles(0), profiler.WithStackDepth(300), profiler.WithLogger(nil))
	if err == nil {
		t.Fatal("Start with several invalid options succeeded")
	}
	for _, name := range []string{"WithSamplingRate", "WithMaxFiles", "WithStackDepth", "WithLogger"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "WithOutputDir") {
		t.Errorf("error %q names the valid WithOutputDir", err)
	}
}

// The bounds of each option are valid values.
func TestBoundaryOptions(t *testing.T) {
	for _, opts := range [][]profiler.Option{
		{profiler.WithSamplingRate(1), profiler.WithFlushInterval(time.Second), profiler.WithMaxFiles(1),
			profiler.WithMaxLiveSamples(1), profiler.WithStackDepth(1), profiler.WithGoHeap(false)},
		{profiler.WithSamplingRate(1 << 30), profiler.WithStackDepth(256)},
	} {
		p, _ := startProfiler(t, opts...)
		flushOK(t, p)
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
}

// Misuse panics with a "profiler: " prefix, whether or not a profiler runs.
func TestMisusePanics(t *testing.T) {
	type T struct{ _ [2]int64 }
	h := profiler.NewHeap("misuse")
	misuse := map[string]func(){
		`NewHeap("")`:   func() { profiler.NewHeap("") },
		`NewHeap("go")`: func() { profiler.NewHeap("go") },
		"Track(nil)":    func() { profiler.Track((*T)(nil)) },
		"TrackIn(nil)":  func() { profiler.TrackIn(context.Background(), h, (*T)(nil), 64) },
	}
	check := func(state string) {
		for name, f := range misuse {
			msg := panicMessage(f)
			if !strings.HasPrefix(msg, "profiler: ") {
				t.Errorf("%s %s: panic %q, want a \"profiler: \" prefix", name, state, msg)
			}
		}
	}
	check("with no profiler")
	startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	check("with a profiler running")
}

func panicMessage(f func()) (msg string) {
	defer func() { msg = fmt.Sprint(recover()) }()
	f()
	return "<no panic>"
}

// Each Heap is its own key space, even under a name used before, and its
// Name is its label.
func TestHeapKeySpaces(t *testing.T) {
	p, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	a, b := profiler.NewHeap("dup"), profiler.NewHeap("dup")
	if a.Name() != "dup" || b.Name() != "dup" {
		t.Errorf("names %q %q, want dup", a.Name(), b.Name())
	}
	a.Alloc(7, 100)
	b.Free(7)
	profiler.Free(7)
	if n := p.Stats().LiveSamples; n != 1 {
		t.Fatalf("Free of key 7 in other heaps removed heap a's key 7: %d live", n)
	}
	b.Alloc(7, 200)
	a.Free(7)
	prof := pproftest.Parse(t, flushOK(t, p))
	if _, _, objects, bytes := totals(samplesIn(prof, "dup")); objects != 1 || bytes != 200 {
		t.Errorf("heap=dup in use: %d objects, %d bytes; want b's 1 object of 200 bytes", objects, bytes)
	}
}

// Concurrent Flush calls, with the hook busy on other goroutines, all get a
// complete file; overlapping calls share a write.
func TestConcurrentFlush(t *testing.T) {
	p, dir := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false), profiler.WithMaxFiles(1000))
	const (
		allocators = 4
		keep       = 10 // keys each allocator leaves live
		flushers   = 8
		flushes    = 5
	)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		paths = map[string]int{}
	)
	for g := range allocators {
		wg.Go(func() {
			for i := range 2000 {
				key := uintptr(g<<20 | i)
				allocDefault(key, 64+i%7)
				if i < 2000-keep {
					profiler.Free(key)
				}
			}
		})
	}
	for range flushers {
		wg.Go(func() {
			for range flushes {
				path, err := p.Flush()
				if err != nil {
					t.Errorf("Flush: %v", err)
					return
				}
				mu.Lock()
				paths[path]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	for path := range paths {
		pproftest.Parse(t, path)
	}
	s := p.Stats()
	if s.FilesWritten != int64(len(paths)) || s.WriteErrors != 0 {
		t.Errorf("FilesWritten %d, errors %d; want %d distinct paths and no errors", s.FilesWritten, s.WriteErrors, len(paths))
	}
	if on := profilePaths(t, dir); len(on) != len(paths) {
		t.Errorf("%d files on disk, %d distinct paths returned", len(on), len(paths))
	}
	if s.LiveSamples != allocators*keep || s.Samples != allocators*2000 {
		t.Errorf("Stats %+v, want %d live of %d samples", s, allocators*keep, allocators*2000)
	}
	t.Logf("%d Flush calls wrote %d files", flushers*flushes, len(paths))
}

// The background loop writes one profile per interval, retries after a
// failed write at the next tick, and Stop writes the last one. Time is
// synctest's fake clock, so minutes pass at once and nothing sleeps.
func TestBackgroundFlush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p, dir := startProfiler(t, profiler.WithFlushInterval(time.Minute))
		// wait lets simulated time run to start+at and the loop finish the
		// write the tick started.
		wait := func(at time.Duration) {
			time.Sleep(time.Until(start.Add(at)))
			synctest.Wait()
		}
		// checkFiles checks that the newest file was written at start+at.
		checkFiles := func(n int, at time.Duration) {
			t.Helper()
			files := profilePaths(t, dir)
			if len(files) != n {
				t.Fatalf("at %v: %d files, want %d", time.Since(start), len(files), n)
			}
			want := "heap-" + start.Add(at).UTC().Format(testFileTime) + "Z-"
			if got := filepath.Base(files[n-1]); !strings.HasPrefix(got, want) {
				t.Errorf("at %v: newest file %s, want one named %s…", time.Since(start), got, want)
			}
		}
		// The first profile comes a second after Start, so that a program
		// stopped early leaves one; then one every interval. Check halfway
		// between writes, so that none is due at the time of the check.
		wait(time.Second / 2)
		if s := p.Stats(); s.FilesWritten != 0 || len(profilePaths(t, dir)) != 0 {
			t.Fatalf("a file was written before the first second: %+v", s)
		}
		wait(30 * time.Second)
		checkFiles(1, time.Second)
		wait(90 * time.Second)
		checkFiles(2, time.Minute+time.Second)
		wait(150 * time.Second)
		checkFiles(3, 2*time.Minute+time.Second)

		blockDir(t, dir)
		wait(210 * time.Second)
		if s := p.Stats(); s.FilesWritten != 3 || s.WriteErrors != 1 || s.LastError == nil {
			t.Fatalf("after a failed tick: %+v, want 3 written and 1 error", s)
		}
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		wait(270 * time.Second)
		checkFiles(1, 4*time.Minute+time.Second) // the blocked directory lost the first three
		if s := p.Stats(); s.FilesWritten != 4 || s.LastError != nil {
			t.Fatalf("after the retry: %+v, want 4 written and no error", s)
		}

		if err := p.Stop(); err != nil {
			t.Fatal(err)
		}
		if s := p.Stats(); s.FilesWritten != 5 {
			t.Errorf("after Stop: %d written, want 5", s.FilesWritten)
		}
		// The loop has ended: time passes and nothing more is written.
		wait(10 * time.Minute)
		if n := len(profilePaths(t, dir)); n != 2 {
			t.Errorf("%d files after Stop and ten more minutes, want 2", n)
		}
	})
}

// waitLiveSamples runs the garbage collector until the cleanups of
// unreachable tracked objects have brought LiveSamples down to want, or
// gives up after a bounded number of cycles. It returns the last count.
func waitLiveSamples(p *profiler.Profiler, want int64) int64 {
	for range 50 {
		runtime.GC()
		// Cleanups run on other goroutines after the GC; give them the
		// processor until they are done or plainly not coming this cycle.
		for range 1000 {
			if n := p.Stats().LiveSamples; n <= want {
				return n
			}
			runtime.Gosched()
		}
	}
	return p.Stats().LiveSamples
}

// A tracked object leaves the profiles once the GC has freed it; objects
// still reachable stay.
func TestTrackFreedByGC(t *testing.T) {
	p, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	const n, keepEvery = 100, 10
	kept := make([]*trackedObject, 0, n/keepEvery)
	for i := range n {
		obj := newTrackedObject()
		profiler.Track(obj)
		if i%keepEvery == 0 {
			kept = append(kept, obj)
		}
	}
	if s := p.Stats(); s.Samples != n || s.LiveSamples != n {
		t.Fatalf("after tracking %d objects at rate 1: %+v", n, s)
	}
	want := int64(len(kept))
	if got := waitLiveSamples(p, want); got != want {
		t.Fatalf("LiveSamples %d after GC, want the %d objects still reachable", got, want)
	}
	// More cycles must not remove the objects still in use.
	runtime.GC()
	runtime.GC()
	for range 100 {
		runtime.Gosched()
	}
	if got := p.Stats().LiveSamples; got != want {
		t.Errorf("LiveSamples %d after more GCs, want %d", got, want)
	}
	prof := pproftest.Parse(t, flushOK(t, p))
	allocs, _, objects, bytes := totals(samplesIn(prof, "default"))
	if allocs != n || objects != want || bytes != want*int64(unsafe.Sizeof(trackedObject{})) {
		t.Errorf("profile: %d allocated, %d live objects of %d bytes; want %d, %d, %d",
			allocs, objects, bytes, n, want, want*int64(unsafe.Sizeof(trackedObject{})))
	}
	runtime.KeepAlive(kept)
}

// A cleanup runs some time after its object died, when the address may
// already hold a new tracked object; the late cleanup must not remove the
// new object's record.
func TestTrackAddressReuse(t *testing.T) {
	p, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	release := holdCleanups(t)
	addr := trackAndDrop()
	var reused *trackedObject
	for round := 0; round < 20 && reused == nil; round++ {
		runtime.GC() // frees the dropped object and queues its cleanup
		for range 2048 {
			if obj := newTrackedObject(); uintptr(unsafe.Pointer(obj)) == addr {
				reused = obj
				break
			}
		}
	}
	if reused == nil {
		t.Skip("the allocator did not reuse the address; nothing to test")
	}
	profiler.Track(reused)
	// Both records present: the old cleanup had not run yet when the new
	// object was tracked at its address, the case this test is about.
	pending := p.Stats().LiveSamples == 2
	release()
	t.Logf("old object's cleanup still pending when the new object was tracked: %v", pending)

	if got := waitLiveSamples(p, 1); got != 1 {
		t.Fatalf("LiveSamples %d, want 1: the new object at the reused address", got)
	}
	runtime.GC()
	for range 100 {
		runtime.Gosched()
	}
	if got := p.Stats().LiveSamples; got != 1 {
		t.Errorf("LiveSamples %d after more GCs, want 1", got)
	}
	runtime.KeepAlive(reused)
}

// holdCleanups blocks the goroutine that runs cleanups in a cleanup of its
// own until release is called (at the latest when the test ends), so that
// cleanups queued meanwhile stay pending. The runtime runs cleanups on
// max(GOMAXPROCS/4, 1) goroutines (runtime/mcleanup.go, maxCleanupGs); with
// more than one, a queued cleanup may still run.
func holdCleanups(t *testing.T) (release func()) {
	gate, held := make(chan struct{}), make(chan struct{})
	runtime.AddCleanup(newTrackedObject(), func(struct{}) {
		close(held)
		<-gate
	}, struct{}{})
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	for range 50 {
		runtime.GC()
		for range 1000 {
			select {
			case <-held:
				return release
			default:
				runtime.Gosched()
			}
		}
	}
	t.Log("could not hold the cleanup goroutine")
	return release
}

// trackAndDrop tracks an object, drops it, and returns its address.
//
//go:noinline
func trackAndDrop() uintptr {
	obj := newTrackedObject()
	profiler.Track(obj)
	return uintptr(unsafe.Pointer(obj))
}

// The hook's common paths allocate nothing.
// The hook's entry points must inline into their callers, so that an
// unsampled Alloc costs its caller one call and a Free of an unsampled key
// none; a change that pushes them over the compiler's inlining budget
// (see freeFiltered) fails here rather than only in a benchmark.
func TestHookInlines(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		// 64-bit atomics are calls on 32-bit platforms, which spend the
		// budget of the key filter's check.
		t.Skipf("the hook's checks are kept within the inlining budget on amd64 and arm64, not %s", runtime.GOARCH)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	// The build cache replays the compiler's output, so this is quick.
	out, err := exec.CommandContext(t.Context(), goCmd, "build", "-gcflags=-m", "-o", os.DevNull, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	// The entry points, which inline into their callers as a check that a
	// profiler runs; and the key filter's check, which inlines into Free's
	// slow path and Alloc's, so that Free of an unsampled key takes no
	// call beyond that one.
	for _, fn := range []string{
		"Alloc", "Free", "(*Heap).Alloc", "(*Heap).AllocContext", "(*Heap).Free",
		"(*keyFilter).mayContain", "(*filterSlots).mayContain", "hashKey", "(*Heap).key",
	} {
		if !regexp.MustCompile(`(?m): can inline ` + regexp.QuoteMeta(fn) + `( with cost \d+)?$`).Match(out) {
			t.Errorf("%s does not inline; the compiler says:\n%s", fn, grepLines(out, fn))
		}
	}
	if !regexp.MustCompile(`(?m)hook\.go:\d+:\d+: inlining call to \(\*keyFilter\)\.mayContain$`).Match(out) {
		t.Errorf("the key filter's check is not inlined into the hook; the compiler says:\n%s", grepLines(out, "mayContain"))
	}
}

// grepLines returns the lines of out that mention name.
func grepLines(out []byte, name string) string {
	var b strings.Builder
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, " "+name+":") || strings.Contains(line, " "+name+" ") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func TestHookAllocs(t *testing.T) {
	key := uintptr(1000) // above the keys made live below
	unsampled := func() {
		key++
		profiler.Alloc(key, 64)
	}
	freeUnknown := func() {
		key++
		profiler.Free(key)
	}
	// AllocsPerRun truncates the average: a rare sampled call (each 64-byte
	// Alloc is sampled at the default rate with probability
	// 1-exp(-64/524288) ≈ 1.2e-4, so about 0.12 times in 1000 runs) cannot
	// turn a zero into a one; a per-call allocation does.
	t.Run("no profiler", func(t *testing.T) {
		for name, f := range map[string]func(){"Alloc": unsampled, "Free": freeUnknown} {
			if n := testing.AllocsPerRun(1000, f); n != 0 {
				t.Errorf("%s with no profiler: %v allocations per call", name, n)
			}
		}
	})
	t.Run("running", func(t *testing.T) {
		startProfiler(t, profiler.WithGoHeap(false))
		allocDefault(1, 1<<30) // one live key, so Free's filter is not empty
		for name, f := range map[string]func(){"unsampled Alloc": unsampled, "Free of an unknown key": freeUnknown} {
			if n := testing.AllocsPerRun(1000, f); n != 0 {
				t.Errorf("%s: %v allocations per call", name, n)
			}
		}
	})
}

func TestStats(t *testing.T) {
	p, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	if s := p.Stats(); s != (profiler.Stats{}) {
		t.Errorf("Stats of a new profiler: %+v, want zero", s)
	}
	for k := range 5 {
		allocDefault(uintptr(k), 100)
	}
	profiler.Free(1)
	profiler.Free(3)
	profiler.Free(99)    // never allocated
	allocDefault(0, 100) // key 0 again: its first object was freed unreported
	// Sizes of zero or less record nothing, but like any Alloc they end a
	// live record under their key.
	profiler.Alloc(100, 0)
	profiler.Alloc(101, -4096)
	allocDefault(102, 100)
	allocDefault(103, 100)
	profiler.Alloc(102, 0)
	profiler.Alloc(103, -1)
	s := p.Stats()
	if s.Samples != 8 || s.LiveSamples != 3 || s.Dropped != 0 || s.Stacks < 1 {
		t.Errorf("Stats %+v, want 8 samples, 3 live, none dropped", s)
	}
	if s.FilesWritten != 0 || s.LastFlushDuration != 0 || s.WriteErrors != 0 || s.LastError != nil {
		t.Errorf("Stats before any write: %+v", s)
	}
	prof := pproftest.Parse(t, flushOK(t, p))
	allocs, allocBytes, live, liveBytes := totals(samplesIn(prof, "default"))
	if allocs != 8 || allocBytes != 800 || live != 3 || liveBytes != 300 {
		t.Errorf("profile: %d objects, %d bytes allocated; %d, %d in use; want 8, 800; 3, 300",
			allocs, allocBytes, live, liveBytes)
	}
	s = p.Stats()
	if s.FilesWritten != 1 || s.LastFlushDuration <= 0 || s.LastError != nil {
		t.Errorf("Stats after a write: %+v, want 1 written with a duration", s)
	}
}

// The live table is bounded: past WithMaxLiveSamples, samples are dropped,
// counted in Stats, and reported in the profile's comments.
func TestMaxLiveSamples(t *testing.T) {
	p, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithMaxLiveSamples(10), profiler.WithGoHeap(false))
	for k := range 100 {
		allocDefault(uintptr(k), 100)
	}
	s := p.Stats()
	if s.Samples != 100 || s.LiveSamples != 10 || s.Dropped != 90 {
		t.Fatalf("Stats %+v, want 100 samples, 10 live, 90 dropped", s)
	}
	prof := pproftest.Parse(t, flushOK(t, p))
	if _, _, objects, _ := totals(samplesIn(prof, "default")); objects != 10 {
		t.Errorf("profile: %d live objects, want 10", objects)
	}
	drop := regexp.MustCompile(`dropped\w*=90\b`)
	if !slices.ContainsFunc(prof.Comments, drop.MatchString) {
		t.Errorf("comments %q do not report the 90 drops", prof.Comments)
	}
	// The bound is on live samples: room freed is room to record again.
	for k := range 5 {
		profiler.Free(uintptr(k)) // the first ten keys are the recorded ones
	}
	for k := range 5 {
		allocDefault(uintptr(1000+k), 100)
	}
	if s := p.Stats(); s.LiveSamples != 10 || s.Dropped != 90 {
		t.Errorf("after freeing 5 and allocating 5: %+v, want 10 live and still 90 dropped", s)
	}
}

// WithMaxLiveSamples accepts up to 1<<30; what Start sets aside up front
// for the bound must stay small even there, since the bound is a ceiling,
// not an expected size.
func TestMaxLiveSamplesUpfrontMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	startProfiler(t, profiler.WithMaxLiveSamples(1<<30), profiler.WithGoHeap(false))
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Errorf("Start with WithMaxLiveSamples(1<<30) allocated %d bytes up front, want at most 16 MiB", got)
	}
}

// A nil *Heap and a zero Heap are the default heap: their calls record
// under heap=default, share its keys, and name it.
func TestNilAndZeroHeapAreDefault(t *testing.T) {
	p, _ := startProfiler(t, profiler.WithSamplingRate(1), profiler.WithGoHeap(false))
	var nilHeap *profiler.Heap
	zero := &profiler.Heap{}
	if nilHeap.Name() != "default" || zero.Name() != "default" {
		t.Errorf("names %q and %q, want default", nilHeap.Name(), zero.Name())
	}
	nilHeap.Alloc(1, 100)
	zero.AllocContext(context.Background(), 2, 200)
	profiler.Alloc(3, 300)
	if n := p.Stats().LiveSamples; n != 3 {
		t.Fatalf("%d live samples, want 3", n)
	}
	zero.Free(1) // a key of the nil Heap: the same heap
	nilHeap.Free(3)
	profiler.Free(2)
	if n := p.Stats().LiveSamples; n != 0 {
		t.Fatalf("%d live samples after freeing each key through another handle of the default heap, want 0", n)
	}
	nilHeap.Alloc(4, 400)
	prof := pproftest.Parse(t, flushOK(t, p))
	for _, s := range prof.Sample {
		if h := s.Label["heap"]; len(h) != 1 || h[0] != "default" {
			t.Errorf("sample with heap label %v, want [default]", h)
		}
	}
}

//go:noinline
func goHeapOnlySite() [][]byte {
	var keep [][]byte
	for range 2000 {
		keep = append(keep, make([]byte, 4096))
	}
	return keep
}

// A program that uses no hook still sees samples counted, in Stats and in
// the profile's comments: those of the Go heap.
func TestStatsCountGoHeap(t *testing.T) {
	p, _ := startProfiler(t, profiler.WithSamplingRate(4096), profiler.WithGCBeforeSnapshot(true))
	keep := goHeapOnlySite()
	prof := pproftest.Parse(t, flushOK(t, p)) // after a GC: the objects are published
	s := p.Stats()
	runtime.KeepAlive(keep)
	// 2000 objects of 4 KiB at rate 4096 are each sampled with
	// p = 1-exp(-1) ≈ 0.63: about 1264 live samples, of which five
	// standard deviations (sqrt(n·p·(1-p)) ≈ 22) lie above 1150.
	if s.GoHeapLiveSamples < 1150 || s.GoHeapSamples < s.GoHeapLiveSamples {
		t.Errorf("Stats %+v: want at least 1150 Go heap live samples, and samples ≥ live", s)
	}
	if s.Samples != s.GoHeapSamples || s.LiveSamples != s.GoHeapLiveSamples {
		t.Errorf("Stats %+v: with no hook call, Samples and LiveSamples must be the Go heap's", s)
	}
	// The comments count the samples behind the profile's figures, read
	// back from the runtime's scaled ones: close to Stats, read after.
	var samples, live int64
	for _, c := range prof.Comments {
		if n, _ := fmt.Sscanf(c, "samples=%d live=%d ", &samples, &live); n == 2 {
			break
		}
	}
	if live < 1150 || live > s.LiveSamples+s.LiveSamples/20 || samples < live {
		t.Errorf("profile comments %q: want samples ≥ live ≥ 1150, live within 5 %% of Stats' %d", prof.Comments, s.LiveSamples)
	}
}
