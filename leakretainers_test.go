package profiler

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// WithLeakRetainers needs the files it writes to and the warnings that
// trigger it.
func TestLeakRetainersOptionValidated(t *testing.T) {
	for _, opts := range [][]Option{
		{WithLeakRetainers(true), WithoutFiles()},
		{WithLeakRetainers(true), WithOutputDir(t.TempDir()), WithLeakWarnings(false)},
	} {
		p, err := Start(opts...)
		if err == nil {
			p.Stop()
			t.Fatalf("Start accepted WithLeakRetainers(true) without files or warnings")
		}
		if !strings.Contains(err.Error(), "WithLeakRetainers(true) needs the output directory and leak warnings") {
			t.Errorf("error %q does not say what WithLeakRetainers needs", err)
		}
	}
}

// A warning takes a retainers profile, or logs why it could not (this
// test's binary may have no symbol table, and only Linux has the
// mechanism); another within a minute takes none, and one after takes one
// again.
func TestLeakRetainersAtMostOneAMinute(t *testing.T) {
	var logs bytes.Buffer
	p, err := Start(WithOutputDir(t.TempDir()), WithLeakRetainers(true), WithFlushInterval(time.Hour),
		WithMemoryPoll(0), WithGoHeap(false), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	taken := func() int {
		p.leakRetainers.Wait()
		return strings.Count(logs.String(), `msg="leak suspect retainers profile"`) +
			strings.Count(logs.String(), `msg="profiler: no retainers profile for the leak suspect"`)
	}
	at := time.Now()
	top := Suspect{Function: "main.leak", Heap: "go"}
	for _, c := range []struct {
		after time.Duration
		want  int
	}{{0, 1}, {30 * time.Second, 1}, {61 * time.Second, 2}} {
		p.startLeakRetainers(top, at.Add(c.after))
		if got := taken(); got != c.want {
			t.Fatalf("after a warning at +%v, %d retainers profiles taken or failed, want %d; log:\n%s", c.after, got, c.want, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "function=main.leak") {
		t.Errorf("the log does not name the suspect:\n%s", logs.String())
	}
	t.Logf("log:\n%s", logs.String())
}

// The directory keeps the newest retainers profiles of any process, and
// neither kind of profile's retention deletes the other's files.
func TestRetainersFilesRetention(t *testing.T) {
	dir := t.TempDir()
	s, err := newFileStore(dir, 1000, time.Hour, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	other := filepath.Join(dir, "retainers-"+now.Add(-time.Hour).UTC().Format(timeLayout)+"Z-1.pb.gz")
	foreign := filepath.Join(dir, "notes.txt")
	for _, f := range []string{other, foreign} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	heap, err := s.write(now, "", []byte("heap"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for i := range maxRetainersFiles + 2 {
		path, err := s.writeRetainers(now.Add(time.Duration(i)*time.Second), []byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		written = append(written, filepath.Base(path))
	}
	if _, err := s.write(now.Add(time.Minute), "", []byte("heap"), 1<<20); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var retainers []string
	for _, e := range entries {
		if retainersName.MatchString(e.Name()) {
			retainers = append(retainers, e.Name())
		}
	}
	if want := written[len(written)-maxRetainersFiles:]; !slices.Equal(retainers, want) {
		t.Errorf("retainers profiles %q, want the newest %d: %q", retainers, maxRetainersFiles, want)
	}
	for _, f := range []string{heap, foreign} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
}
