package profiler

import (
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
	drop := s.expired(files, now, name(0))
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
	drop = s.expired(files, now, name(0))
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
	if drop := one.expired([]string{odd, name(0)}, now, name(0)); len(drop) != 0 {
		t.Errorf("with an unparsable name beside the new file, dropped %q", drop)
	}

	// Files dated in the future count as recent, but never push out the
	// file just written, even past maxFiles.
	future := []string{name(0), name(-time.Hour), name(-2 * time.Hour), name(-3 * time.Hour)}
	drop = one.expired(future, now, name(0))
	if slices.Contains(drop, name(0)) || len(drop) != 3 {
		t.Errorf("with three future files and maxFiles 1, dropped %q; want the three future ones, not the new file", drop)
	}
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
