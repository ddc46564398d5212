package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/leakhunt/profiler/internal/pproftest"
)

// TestLeak runs the program and the first command it prints, which must
// name its first and final profiles and show a leak on its first row, not
// the large flat slab.
func TestLeak(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(dir, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("output:\n%s", out.Bytes())

	files, err := filepath.Glob(filepath.Join(dir, "heap-*.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if len(files) < rounds+1 {
		t.Fatalf("%d profiles, want at least %d: %q", len(files), rounds+1, files)
	}

	commands := printedCommands(out.String())
	if len(commands) == 0 || !slices.Equal(commands[0][:4], []string{"go", "tool", "pprof", "-top"}) {
		t.Fatalf("the first command printed is %q, want go tool pprof -top ...", commands)
	}
	first := commands[0]
	if n := len(first); first[4] != "-diff_base" || first[n-2] != files[0] || first[n-1] != files[len(files)-1] {
		t.Errorf("first command %q, want -diff_base with the first and the newest of %q", first, files)
	}
	for _, c := range commands[1:] {
		if c[0] == "go" && c[len(c)-1] != files[len(files)-1] {
			t.Errorf("command %q does not open the newest profile, %s", c, files[len(files)-1])
		}
	}
	if last := commands[len(commands)-1]; !slices.Equal(last, []string{"leakhunt", "rank", dir}) {
		t.Errorf("last command %q, want leakhunt rank %s", last, dir)
	}

	top := pproftest.Run(t, first[3:]...)
	row := firstRow(top)
	if !strings.HasSuffix(row, ".(*slab).get") && !strings.HasSuffix(row, ".handle") {
		t.Errorf("first row of %q is %q, want a leak: (*slab).get or handle:\n%s", strings.Join(first, " "), row, top)
	}
}

// printedCommands returns the indented lines of the output, the commands,
// split into words as a POSIX shell would.
func printedCommands(out string) [][]string {
	var cmds [][]string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "  ") {
			cmds = append(cmds, pproftest.ShellWords(strings.TrimSpace(line)))
		}
	}
	return cmds
}

// firstRow returns the function name on the first row of a pprof -top
// table.
func firstRow(top string) string {
	lines := strings.Split(top, "\n")
	for i, l := range lines {
		if strings.Contains(l, "flat%") && i+1 < len(lines) {
			if f := strings.Fields(lines[i+1]); len(f) > 5 {
				return strings.TrimSuffix(strings.Join(f[5:], " "), " (inline)")
			}
		}
	}
	return ""
}
