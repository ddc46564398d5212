package profiler

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The resident set read matches /proc/self/statm read by hand, within
// what the process may have touched between the two reads, and a fake
// statm is read exactly.
func TestResidentSet(t *testing.T) {
	var r residentSet
	r.open("/")
	defer r.close()
	got := r.read()
	text, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := strconv.ParseUint(strings.Fields(string(text))[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	want := pages * uint64(os.Getpagesize())
	if got == 0 || got > want+(1<<20) || got+(1<<20) < want {
		t.Errorf("resident %d, /proc/self/statm says %d", got, want)
	}

	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "proc", "self"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		statm string
		want  uint64
	}{
		{"2000 1234 300 10 0 500 0\n", 1234 * uint64(os.Getpagesize())},
		{"2000\n", 0},
		{"2000 x 3\n", 0},
	} {
		if err := os.WriteFile(filepath.Join(root, "proc", "self", "statm"), []byte(tc.statm), 0o600); err != nil {
			t.Fatal(err)
		}
		var fake residentSet
		fake.open(root)
		if got := fake.read(); got != tc.want {
			t.Errorf("statm %q: resident %d, want %d", tc.statm, got, tc.want)
		}
		fake.close()
	}
	var none residentSet
	none.open(t.TempDir())
	if got := none.read(); got != 0 {
		t.Errorf("no statm: resident %d, want 0", got)
	}
}
