package procmaps

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"testing"

	"github.com/google/pprof/profile"
)

// TestBuildIDMatchesRuntimePprof has runtime/pprof read the build ID of
// each test file and compares. runtime/pprof records a mapping, with its
// build ID, for every file mapped executable into the process, so the
// test maps each file so and reads a heap profile: the oracle is
// runtime/pprof itself, malformed files included.
func TestBuildIDMatchesRuntimePprof(t *testing.T) {
	dir := t.TempDir()
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d // /proc/self/maps names the file by its real path
	}
	for _, tt := range buildIDCases() {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, filepath.Base(t.Name()))
			if err := os.WriteFile(path, tt.file, 0o600); err != nil {
				t.Fatal(err)
			}
			theirs := runtimePprofBuildID(t, path)
			if got := BuildID(path); got != theirs {
				t.Errorf("BuildID = %q, runtime/pprof's %q", got, theirs)
			}
			if theirs != tt.want {
				t.Errorf("runtime/pprof's build ID %q, the case wants %q", theirs, tt.want)
			}
		})
	}

	// Real binaries: this test's own, and a system one built by another
	// linker.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	files := []string{exe}
	if sh, err := exec.LookPath("sh"); err == nil {
		if sh, err = filepath.EvalSymlinks(sh); err == nil {
			files = append(files, sh)
		}
	}
	for _, path := range files {
		if got, theirs := BuildID(path), runtimePprofBuildID(t, path); got != theirs || got == "" {
			t.Errorf("BuildID(%s) = %q, runtime/pprof's %q", path, got, theirs)
		}
	}
}

// runtimePprofBuildID returns the build ID runtime/pprof records for the
// file at path once it is mapped executable into the process.
func runtimePprofBuildID(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ|syscall.PROT_EXEC, syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("cannot map %s executable: %v", path, err)
	}
	defer syscall.Munmap(mem)

	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(&buf)
	if err != nil {
		t.Fatalf("parsing runtime/pprof's heap profile: %v", err)
	}
	for _, m := range p.Mapping {
		if m.File == path {
			return m.BuildID
		}
	}
	t.Fatalf("runtime/pprof's profile has no mapping of %s: %v", path, p.Mapping)
	return ""
}
