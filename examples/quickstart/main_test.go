package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/pproftest"
)

// runAsMain makes the test binary run main instead of the tests, for the
// tests that signal the program.
const runAsMain = "QUICKSTART_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runAsMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The README shows main.go whole, so that what it shows compiles.
func TestREADMEShowsMain(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	// Line endings as checked out, which may be \r\n on Windows.
	unix := func(b []byte) string { return strings.ReplaceAll(string(b), "\r\n", "\n") }
	if !strings.Contains(unix(readme), "```go\n"+unix(src)+"```\n") {
		t.Errorf("README.md does not show examples/quickstart/main.go as it is:\n%s", src)
	}
}

// Stopped by Ctrl-C or SIGTERM, the program returns from main and its
// deferred Stop writes a final profile.
func TestSignalLeavesProfile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no way to send os.Interrupt or SIGTERM to a process on Windows")
	}
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), runAsMain+"=1")
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Start creates the directory after NotifyContext has taken
			// over the signals: from then on, a signal ends main.
			profiles := filepath.Join(dir, "heapprofiles")
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(profiles); err == nil {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("no %s after a minute; output:\n%s", profiles, out.String())
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after %v: %v; output:\n%s", sig, err, out.String())
			}
			files, err := filepath.Glob(filepath.Join(profiles, "heap-*.pb.gz"))
			if err != nil || len(files) == 0 {
				t.Fatalf("no profile in %s after %v (%v); output:\n%s", profiles, sig, err, out.String())
			}
			pproftest.Parse(t, files[len(files)-1])
		})
	}
}
