// Package pproftest reads profiles the way users do, for tests: with the
// pprof parser and with the real `go tool pprof`, so a test checks the files
// themselves rather than the code that built them.
package pproftest

import (
	"bytes"
	"errors"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/pprof/profile"
)

// Parse reads the profile file at path with profile.Parse, checks it with
// CheckValid, and returns it. It fails the test (and returns nil) if the
// file cannot be read, parsed or validated.
func Parse(t testing.TB, path string) *profile.Profile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pproftest: %v", err)
		return nil
	}
	p, err := profile.ParseData(data)
	if err != nil {
		t.Fatalf("pproftest: parsing %s: %v", path, err)
		return nil
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("pproftest: invalid profile %s: %v", path, err)
		return nil
	}
	return p
}

// Run runs `go tool pprof args...` and returns its standard output. It
// fails the test, showing both output streams, if the command cannot start
// or exits with a non-zero status. The command is killed if the test's
// context ends first.
func Run(t testing.TB, args ...string) string {
	t.Helper()
	return RunAll(t, args)[0]
}

// RunAll runs `go tool pprof` once for each list of arguments, all at
// once, and returns their standard outputs in the same order: a pprof run
// is mostly waiting for the go command and pprof to start, so independent
// runs need not wait for each other. It fails the test as Run does, after
// all have ended.
func RunAll(t testing.TB, runs ...[]string) []string {
	t.Helper()
	outs := make([]string, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, args := range runs {
		wg.Go(func() {
			cmd := exec.CommandContext(t.Context(), GoTool(), append([]string{"tool", "pprof"}, args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("go tool pprof %s: %v\nstdout:\n%s\nstderr:\n%s",
					strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
			}
			outs[i] = stdout.String()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("pproftest: %v", err)
	}
	return outs
}

// GoTool returns the go command: the one on PATH, else the one of the
// toolchain that built the test (a test run by an IDE may lack PATH).
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(build.Default.GOROOT, "bin", "go")
}

// ShellWords splits a command line, as a program prints it for a person to
// paste into a POSIX shell, into its words: single quotes group, and a
// backslash outside them escapes the next character. Tests run printed
// commands with it exactly as printed.
func ShellWords(line string) []string {
	var words []string
	var w strings.Builder
	inWord, quoted, escaped := false, false, false
	for _, r := range line {
		switch {
		case escaped:
			w.WriteRune(r)
			escaped = false
		case r == '\\' && !quoted:
			escaped, inWord = true, true
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
			}
			inWord = false
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}
