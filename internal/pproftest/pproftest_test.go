package pproftest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

// writeProfile writes a one-sample heap-like profile whose only function is
// fn, and returns its path.
func writeProfile(t *testing.T, fn string) string {
	t.Helper()
	f := &profile.Function{ID: 1, Name: fn, SystemName: fn, Filename: "x.go"}
	loc := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: f, Line: 7}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_space", Unit: "bytes"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:     1,
		Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{4096}}},
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{f},
	}
	path := filepath.Join(t.TempDir(), "p.pb.gz")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseAndRun(t *testing.T) {
	path := writeProfile(t, "main.leaky")
	p := Parse(t, path)
	if len(p.Sample) != 1 || p.Sample[0].Value[0] != 4096 {
		t.Fatalf("Parse: samples %v, want one of 4096 bytes", p.Sample)
	}
	out := Run(t, "-top", path)
	if !strings.Contains(out, "main.leaky") || !strings.Contains(out, "4kB") {
		t.Fatalf("go tool pprof -top: want main.leaky with 4kB in\n%s", out)
	}
}

// recorder is a testing.TB that records a fatal failure instead of ending
// the goroutine, so the helpers' failure paths can be tested.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	if r.msg == "" {
		r.msg = fmt.Sprintf(format, args...)
	}
}

func TestParseFails(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pb.gz")
	if err := os.WriteFile(garbage, []byte("not a profile"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{garbage, filepath.Join(dir, "missing")} {
		r := &recorder{TB: t}
		if p := Parse(r, path); p != nil || r.msg == "" {
			t.Errorf("Parse(%s) = %v, failure %q; want nil and a failure", path, p, r.msg)
		}
	}
}

func TestRunFails(t *testing.T) {
	r := &recorder{TB: t}
	missing := filepath.Join(t.TempDir(), "missing.pb.gz")
	if out := Run(r, "-top", missing); out != "" {
		t.Errorf("Run on a missing file returned %q", out)
	}
	// The failure must carry pprof's own diagnostics, which name the file.
	if !strings.Contains(r.msg, "missing.pb.gz") || !strings.Contains(r.msg, "stderr:") {
		t.Errorf("Run failure message lacks pprof's output:\n%s", r.msg)
	}
}
