package profiler

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakhunt/profiler/internal/pproftest"
)

// A program that leaks with WithLeakRetainers on (testdata/leakretainers)
// is warned about, and the retainers profile written for the warning, in
// the output directory and named in the log, holds the leak's buffers
// under the global slice that keeps them. The leak must grow for about 20
// profiles a second apart before it is warned about, so this takes 25 s
// or so.
func TestLeakRetainersWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "leakretainers")
	if out, err := exec.Command(pproftest.GoTool(), "build", "-o", bin, "./testdata/leakretainers").CombinedOutput(); err != nil {
		t.Fatalf("building testdata/leakretainers: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "profiles")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("leakretainers: %v\n%s", err, stderr.Bytes())
	}

	var warned bool
	var path string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		switch rec["msg"] {
		case "leak suspect":
			warned = warned || rec["function"] == "main.leakBuffer"
		case "leak suspect retainers profile":
			if rec["function"] != "main.leakBuffer" || rec["level"] != "INFO" {
				t.Errorf("retainers line %q, want main.leakBuffer's, at INFO", sc.Text())
			}
			path, _ = rec["path"].(string)
		case "profiler: no retainers profile for the leak suspect":
			t.Errorf("%s", sc.Text())
		}
	}
	if !warned || path == "" {
		t.Fatalf("leak warned about: %t; retainers profile: %q; the log:\n%s", warned, path, stdout.Bytes())
	}
	if filepath.Dir(path) != out || !retainersName.MatchString(filepath.Base(path)) {
		t.Errorf("retainers profile at %s, want retainers-<time>-<pid>.pb.gz in %s", path, out)
	}

	prof := pproftest.Parse(t, path)
	var leak, held int64
	for _, s := range prof.Sample {
		if s.Location[0].Line[0].Function.Name != "main.leakBuffer" {
			continue
		}
		leak += s.Value[1]
		root := s.Location[len(s.Location)-1].Line[0].Function.Name
		if strings.HasPrefix(root, "[held by] main.leaked") {
			held += s.Value[1]
		} else {
			t.Logf("%d bytes from main.leakBuffer held by %s", s.Value[1], root)
		}
	}
	// The slice holds the buffers; the one main may have in hand, not yet
	// appended, when the world stops is held by main's frame, and runs
	// have shown 4 KiB of samples under runtime.allp: over 60 MiB against
	// 1 % of it.
	if leak == 0 || float64(held) < 0.99*float64(leak) {
		t.Errorf("of %d bytes from main.leakBuffer, %d held by main.leaked, want all but one buffer's", leak, held)
	}
	t.Logf("%s: %d bytes from main.leakBuffer held by main.leaked", filepath.Base(path), held)
}
