package profiler

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Retention keeps every file of the last `all`, then the oldest file of
// each hour back to `hourly`, then applies maxFiles, oldest first.
func TestRetention(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	name := func(ago time.Duration) string {
		return "heap-" + now.Add(-ago).Format(timeLayout) + "Z-7.pb.gz"
	}
	var files []string
	// One file a minute for three days: 4320 files, oldest first.
	for ago := 72 * time.Hour; ago >= 0; ago -= time.Minute {
		files = append(files, name(ago))
	}
	s := &fileStore{maxFiles: 1000, all: time.Hour, hourly: 24 * time.Hour}
	drop := s.expired(unsized(files), now, name(0), math.MaxInt64)
	var keep []string
	for _, f := range files {
		if !slices.Contains(drop, f) {
			keep = append(keep, f)
		}
	}
	// 61 files in the last hour (ages 0..60 min) and one per hour for the
	// 23 hours before it; the oldest of each hour is the one at :00.
	if len(keep) != 61+23 {
		t.Fatalf("kept %d files, want %d", len(keep), 61+23)
	}
	for h := 2; h <= 24; h++ {
		if !slices.Contains(keep, name(time.Duration(h)*time.Hour)) {
			t.Errorf("the file of %d hours ago is not kept", h)
		}
	}
	if slices.Contains(keep, name(25*time.Hour)) || !slices.Contains(keep, name(59*time.Minute)) {
		t.Errorf("kept the file of 25 h ago or dropped the one of 59 min ago")
	}

	// maxFiles caps the total, the oldest going first.
	s.maxFiles = 10
	drop = s.expired(unsized(files), now, name(0), math.MaxInt64)
	if got := len(files) - len(drop); got != 10 {
		t.Errorf("with maxFiles 10 kept %d files", got)
	}
	if slices.Contains(drop, name(0)) || !slices.Contains(drop, name(10*time.Minute)) {
		t.Errorf("maxFiles did not keep the newest ten")
	}

	// A name whose time does not parse is not ours: never deleted, never
	// counted against maxFiles.
	odd := "heap-20261399T999999.000000000Z-7.pb.gz"
	one := &fileStore{maxFiles: 1, all: time.Hour, hourly: 24 * time.Hour}
	if drop := one.expired(unsized([]string{odd, name(0)}), now, name(0), math.MaxInt64); len(drop) != 0 {
		t.Errorf("with an unparsable name beside the new file, dropped %q", drop)
	}

	// Files dated in the future count as recent, but never push out the
	// file just written, even past maxFiles.
	future := []string{name(0), name(-time.Hour), name(-2 * time.Hour), name(-3 * time.Hour)}
	drop = one.expired(unsized(future), now, name(0), math.MaxInt64)
	if slices.Contains(drop, name(0)) || len(drop) != 3 {
		t.Errorf("with three future files and maxFiles 1, dropped %q; want the three future ones, not the new file", drop)
	}

	// maxBytes caps the total size, the oldest going first, after the
	// rules above: of the last hour's 61 files of 1000 bytes, the newest
	// 10 fit in 10500 bytes.
	sized := make([]profileFile, len(files))
	for i, f := range files {
		sized[i] = profileFile{f, 1000}
	}
	drop = s.expired(sized, now, name(0), 10_500)
	if got := len(files) - len(drop); got != 10 || slices.Contains(drop, name(9*time.Minute)) || !slices.Contains(drop, name(10*time.Minute)) {
		t.Errorf("with maxBytes 10500 kept %d files; want the newest 10, of 1000 bytes each", got)
	}
	// The file just written stays, even alone over the budget, and even
	// when files dated in the future are smaller.
	future = []string{name(time.Minute), name(0), name(-time.Minute)}
	big := []profileFile{{future[0], 10}, {future[1], 5000}, {future[2], 10}}
	if drop := s.expired(big, now, name(0), 1000); !slices.Equal(drop, []string{future[0], future[2]}) {
		t.Errorf("with a new file of 5000 bytes and maxBytes 1000, dropped %q; want all but the new file", drop)
	}
}

// The newest profile of each tag (peak, limit<N>) is kept whatever
// retention, maxFiles or maxBytes say, and makeRoom deletes it last;
// older tagged profiles are retained like any other.
// A file's name is its UTC time whatever the zone of the time it is given,
// so names sort by time across a change of the machine's zone.
func TestFileNameIsUTC(t *testing.T) {
	s := &fileStore{pid: 7}
	at := time.Date(2026, 3, 4, 1, 2, 3, 4, time.FixedZone("UTC+5", 5*60*60))
	if got, want := s.nextName(at, ""), "heap-20260303T200203.000000004Z-7.pb.gz"; got != want {
		t.Errorf("name %q, want %q", got, want)
	}
	if got, want := s.nextName(at, "peak"), "heap-20260303T200203.000000005Z-7-peak.pb.gz"; got != want {
		t.Errorf("name of a second write in the same nanosecond %q, want %q", got, want)
	}
}

func TestTaggedProfilesPinned(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	name := func(ago time.Duration, tag string) string {
		s := &fileStore{pid: 7}
		return s.nextName(now.Add(-ago), tag)
	}
	oldPeak, newPeak := name(50*time.Hour, "peak"), name(48*time.Hour, "peak")
	limit85, limit95 := name(49*time.Hour, "limit85"), name(30*time.Hour, "limit95")
	files := []string{oldPeak, limit85, newPeak, limit95}
	for ago := 3 * time.Minute; ago >= 0; ago -= time.Minute {
		files = append(files, name(ago, ""))
	}
	for _, f := range files {
		if !profileName.MatchString(f) {
			t.Fatalf("%s does not match the profile file pattern", f)
		}
	}
	s := &fileStore{maxFiles: 2, all: time.Hour, hourly: 24 * time.Hour}
	drop := s.expired(unsized(files), now, name(0, ""), 1)
	for _, f := range []string{newPeak, limit85, limit95, name(0, "")} {
		if slices.Contains(drop, f) {
			t.Errorf("dropped %s, want it kept", f)
		}
	}
	if !slices.Contains(drop, oldPeak) || !slices.Contains(drop, name(time.Minute, "")) {
		t.Errorf("dropped %q; want the older peak profile and the periodic ones but the newest", drop)
	}

	// A full disk: the pinned files are the last deleted.
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), make([]byte, 100), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	big := &fileStore{dir: dir, maxFiles: 1000, all: 100 * time.Hour, hourly: 100 * time.Hour}
	if freed, err := big.makeRoom(now, 500, math.MaxInt64); err != nil || freed != 500 {
		t.Fatalf("makeRoom(500) freed %d, %v", freed, err)
	}
	for _, f := range []string{newPeak, limit85, limit95} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("makeRoom deleted the pinned %s before the others: %v", f, err)
		}
	}
	if fileTag(newPeak) != "peak" || fileTag(limit85) != "limit85" || fileTag(name(0, "")) != "" {
		t.Errorf("fileTag: %q %q %q", fileTag(newPeak), fileTag(limit85), fileTag(name(0, "")))
	}
}

// unsized returns names as profile files of no size.
func unsized(names []string) []profileFile {
	files := make([]profileFile, len(names))
	for i, name := range names {
		files[i] = profileFile{name: name}
	}
	return files
}

// WithRetention refuses a negative window and an hourly one shorter than
// the window of all files, naming itself.
func TestRetentionOptionValidated(t *testing.T) {
	for _, o := range []Option{WithRetention(-time.Second, time.Hour), WithRetention(2*time.Hour, time.Hour)} {
		p, err := Start(o, WithOutputDir(t.TempDir()))
		if err == nil {
			p.Stop()
			t.Fatal("Start accepted an invalid WithRetention")
		}
		if !strings.Contains(err.Error(), "WithRetention(") {
			t.Errorf("error %q does not name WithRetention", err)
		}
	}
}

// WithMaxBytes refuses a budget below one byte, naming itself.
func TestMaxBytesOptionValidated(t *testing.T) {
	for _, n := range []int64{0, -1} {
		p, err := Start(WithMaxBytes(n), WithOutputDir(t.TempDir()))
		if err == nil {
			p.Stop()
			t.Fatalf("Start accepted WithMaxBytes(%d)", n)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("WithMaxBytes(%d)", n)) {
			t.Errorf("error %q does not name WithMaxBytes(%d)", err, n)
		}
	}
}

// fullDisk stands in for fileStore.writeTemp as if the output directory
// were alone on a disk of capacity bytes: a temporary file that would take
// the directory's files past capacity fails to write with the platform's
// disk-full error, wrapped as writeTempFile wraps it; others are written.
type fullDisk struct {
	capacity int64
	attempts int // calls to writeTemp
	failures int // of them, those that found the disk full
}

func (d *fullDisk) writeTemp(dir string, data []byte) (string, error) {
	d.attempts++
	var used int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			used += fi.Size()
		}
	}
	if used+int64(len(data)) > d.capacity {
		d.failures++
		err := &fs.PathError{Op: "write", Path: filepath.Join(dir, tempPrefix+"1"+tempSuffix), Err: diskFullErrors[0]}
		return "", fmt.Errorf("writing profile file: %w", err)
	}
	return writeTempFile(dir, data)
}

// skipUnlessDiskFullKnown skips a test of full disks where no error is
// known to mean one.
func skipUnlessDiskFullKnown(t *testing.T) {
	if len(diskFullErrors) == 0 {
		t.Skipf("no error means a full disk on %s", runtime.GOOS)
	}
}

// writeFiles writes size bytes to each of names in dir.
func writeFiles(t *testing.T, dir string, size int, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte{'x'}, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// dirNames lists dir's files by name.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// On a full disk, the store deletes its own oldest profile and writes the
// new one on the second try. Files not named like its profiles are never
// deleted, however old or large, nor is a name like a profile's whose time
// does not parse.
func TestDiskFullDeletesOwnOldest(t *testing.T) {
	skipUnlessDiskFullKnown(t)
	now := time.Now()
	dir := t.TempDir()
	name := func(ago time.Duration) string {
		return "heap-" + now.UTC().Add(-ago).Format(timeLayout) + "Z-7.pb.gz"
	}
	foreign := []string{"core", "heap-20261399T999999.000000000Z-7.pb.gz", "notes.txt"}
	writeFiles(t, dir, 50_000, foreign...)
	own := []string{name(30 * time.Minute), name(20 * time.Minute), name(10 * time.Minute)}
	writeFiles(t, dir, 1000, own...)
	s, err := newFileStore(dir, 100, time.Hour, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{capacity: 3*50_000 + 3*1000} // full to the byte
	s.writeTemp = disk.writeTemp

	path, err := s.write(now, "", make([]byte, 900), 1<<30)
	if err != nil {
		t.Fatalf("write on a full disk holding old profiles: %v", err)
	}
	if disk.attempts != 2 || disk.failures != 1 {
		t.Errorf("%d attempts of which %d failed; want a failure, then room made and one retry", disk.attempts, disk.failures)
	}
	want := append(slices.Clone(foreign), own[1], own[2], filepath.Base(path))
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q: the oldest profile deleted, the new one written, nothing else touched", got, want)
	}

	// With only foreign files to delete, the write fails; nothing goes.
	for _, name := range own[1:] {
		os.Remove(filepath.Join(dir, name))
	}
	os.Remove(path)
	disk.attempts, disk.failures = 0, 0
	_, err = s.write(now.Add(time.Second), "", make([]byte, 50_001), 1<<30)
	if !errors.Is(err, diskFullErrors[0]) || disk.attempts != 1 {
		t.Errorf("write on a disk full of others' files: %v after %d attempts; want the disk-full error, and no retry with nothing deleted", err, disk.attempts)
	}
	if got := dirNames(t, dir); !slices.Equal(got, foreign) {
		t.Errorf("files %q after a failed write, want only the foreign ones %q", got, foreign)
	}
}

// On a full disk, what retention would delete anyway goes before the
// oldest file: here a second file of an hour of which retention keeps
// only the first.
func TestDiskFullDeletesInRetentionOrder(t *testing.T) {
	skipUnlessDiskFullKnown(t)
	now := time.Now()
	dir := t.TempDir()
	hour := now.UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	name := func(t time.Time) string { return "heap-" + t.Format(timeLayout) + "Z-7.pb.gz" }
	hourly, thinned, recent := name(hour.Add(time.Minute)), name(hour.Add(2*time.Minute)), name(now.UTC().Add(-time.Minute))
	writeFiles(t, dir, 1000, hourly, thinned, recent)
	s, err := newFileStore(dir, 100, time.Hour, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{capacity: 3 * 1000}
	s.writeTemp = disk.writeTemp
	path, err := s.write(now, "", make([]byte, 900), 1<<30)
	if err != nil {
		t.Fatalf("write on a full disk: %v", err)
	}
	want := []string{hourly, recent, filepath.Base(path)}
	slices.Sort(want)
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q: the second file of its hour deleted, the hourly one kept", got, want)
	}
}

// blockingWriter blocks in Write until released, after telling it entered.
type blockingWriter struct{ entered, release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) {
	close(w.entered)
	<-w.release
	return len(p), nil
}

// A WriteProfile whose writer blocks holds up nothing else: Flush and Stop
// complete meanwhile (were they held up, the test would time out).
func TestSlowWriterBlocksNothing(t *testing.T) {
	p, err := Start(WithOutputDir(t.TempDir()), WithGoHeap(false))
	if err != nil {
		t.Fatal(err)
	}
	w := blockingWriter{make(chan struct{}), make(chan struct{})}
	done := make(chan error)
	go func() { done <- p.WriteProfile(w) }()
	<-w.entered
	if _, err := p.Flush(); err != nil {
		t.Errorf("Flush while a WriteProfile writer blocks: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop while a WriteProfile writer blocks: %v", err)
	}
	close(w.release)
	if err := <-done; err != nil {
		t.Errorf("WriteProfile: %v", err)
	}
}
