package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// The commands that rank and diff print run as printed, from another
// directory, with paths that need quoting: leakhunt's own through run (the
// README installs the command as leakhunt), go tool pprof's for real.
func TestPrintedCommandsRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "heap profiles of the 'api' job")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	leakranktest.WriteSeries(t, dir, leakranktest.LeakSeries(4))
	t.Chdir(t.TempDir())

	status, out, errOut := leakhunt(t, "rank", dir)
	if status != 0 {
		t.Fatalf("rank: status %d, stderr:\n%s", status, errOut)
	}
	cmds := printedCommands(out)
	if len(cmds) != 1 || cmds[0][0] != "leakhunt" {
		t.Fatalf("rank printed the commands %q, want one leakhunt command:\n%s", cmds, out)
	}
	status, out, errOut = leakhunt(t, cmds[0][1:]...)
	if status != 0 {
		t.Fatalf("%q: status %d, stderr:\n%s", cmds[0], status, errOut)
	}
	cmds = printedCommands(out[strings.Index(out, "the same view in pprof:"):])
	if len(cmds) != 3 {
		t.Fatalf("diff printed the commands %q, want three:\n%s", cmds, out)
	}
	for _, c := range cmds {
		if strings.Join(c[:3], " ") != "go tool pprof" {
			t.Errorf("diff printed %q, want go tool pprof ...", c)
			continue
		}
		if c[3] == "-top" {
			if top := pproftest.Run(t, c[3:]...); !strings.Contains(top, leakranktest.GrowingStack[0]) {
				t.Errorf("%q does not show %s:\n%s", c, leakranktest.GrowingStack[0], top)
			}
		}
	}
}

// printedCommands returns the commands in a command's output: its lines
// indented by two spaces that start with a command name, split into words
// as a POSIX shell would.
func printedCommands(out string) [][]string {
	var cmds [][]string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "  leakhunt ") || strings.HasPrefix(line, "  go ") {
			cmds = append(cmds, pproftest.ShellWords(strings.TrimSpace(line)))
		}
	}
	return cmds
}
