//go:build linux || darwin

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// Opening a named pipe for reading waits for a writer, which never comes:
// leakhunt must not open one. Given by name, it is an error; in a
// directory, it is skipped, and so is a link to one. Each command runs
// with a deadline, so that a regression fails instead of hanging.
func TestNamedPipes(t *testing.T) {
	dir, paths := leakDir(t, 3)
	fifo := filepath.Join(dir, "heap-20261202T000000.000000000Z-1.pb.gz")
	leakranktest.Mkfifo(t, fifo)
	link := filepath.Join(dir, "heap-20261202T000001.000000000Z-1.pb.gz")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		status int
		want   string // in stderr
	}{
		{"rank directory", []string{"rank", "-json", dir}, 0, ""},
		{"rank pipe", []string{"rank", paths[0], paths[1], fifo}, 1, "leakhunt: " + fifo + ": not a regular file (a named pipe)"},
		{"rank link to pipe", []string{"rank", paths[0], paths[1], link}, 1, "leakhunt: " + link + ": not a regular file (a named pipe)"},
		{"diff pipe", []string{"diff", paths[0], fifo}, 1, "leakhunt: " + fifo + ": not a regular file (a named pipe)"},
		{"diff link to pipe", []string{"diff", link, paths[0]}, 1, "leakhunt: " + link + ": not a regular file (a named pipe)"},
	} {
		var status int
		var out, errOut string
		leakranktest.RunWithDeadline(t, 5*time.Second, fifo, func() { status, out, errOut = leakhunt(t, tc.args...) })
		if status != tc.status || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: status %d, stderr %q; want status %d and %q", tc.name, status, errOut, tc.status, tc.want)
		}
		if tc.status == 0 && !strings.Contains(out, `"inuse_history"`) {
			t.Errorf("%s: output:\n%s", tc.name, out)
		}
	}
}
