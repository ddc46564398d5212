//go:build linux || darwin

package leakrank

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// Only regular files are read, since opening a named pipe waits for a
// writer that never comes. Named, anything else is an error; found in a
// directory, it is skipped, as is a link that leads to none, while a link
// to a regular file is read.
func TestLoadNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	series := leakranktest.LeakSeries(4)
	paths := leakranktest.WriteSeries(t, dir, series[:3])
	elsewhere := series[3].Write(t, t.TempDir())
	at := func(i int) string {
		return filepath.Join(dir, "heap-20261202T00000"+string(rune('0'+i))+".000000000Z-1.pb.gz")
	}
	fifo, fifoLink, sub, dangling, fileLink := at(0), at(1), at(2), at(3), at(4)
	leakranktest.Mkfifo(t, fifo)
	for link, target := range map[string]string{fifoLink: fifo, dangling: filepath.Join(dir, "gone"), fileLink: elsewhere} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}

	leakranktest.RunWithDeadline(t, 5*time.Second, fifo, func() {
		snaps, err := Load([]string{dir}, ReadOptions{})
		if err != nil {
			t.Errorf("loading the directory: %v", err)
			return
		}
		var got []string
		for _, s := range snaps {
			got = append(got, s.Path)
		}
		if want := slices.Concat(paths, []string{fileLink}); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("loaded\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	for _, tc := range []struct{ path, want string }{
		{fifo, fifo + ": not a regular file (a named pipe)"},
		{fifoLink, fifoLink + ": not a regular file (a named pipe)"},
	} {
		leakranktest.RunWithDeadline(t, 5*time.Second, fifo, func() {
			if _, err := Load([]string{paths[0], tc.path}, ReadOptions{}); err == nil || err.Error() != tc.want {
				t.Errorf("Load: error %v, want %q", err, tc.want)
			}
			if _, err := ReadProfile(tc.path, ReadOptions{}); err == nil || err.Error() != tc.want {
				t.Errorf("ReadProfile: error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ReadProfile(sub, ReadOptions{}); err == nil || err.Error() != sub+": not a regular file (a directory)" {
		t.Errorf("ReadProfile of a directory: error %v", err)
	}
}
