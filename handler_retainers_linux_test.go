package profiler

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// TestHandlerRetainersStrippedBinary checks the answer in this test
// binary, which `go test` links without a symbol table: 501, saying so.
// A binary built with `go test -c` has one, and is served.
func TestHandlerRetainersStrippedBinary(t *testing.T) {
	startForHandler(t)
	rec := getRetainers("retainers=1")
	if _, err := parentLoadBias(); err == nil {
		if rec.Code != http.StatusOK {
			t.Fatalf("with a symbol table: %d %q, want 200", rec.Code, rec.Body.String())
		}
		if _, err := profile.ParseData(rec.Body.Bytes()); err != nil {
			t.Errorf("with a symbol table: %v", err)
		}
		return
	}
	checkRetainersError(t, "in the test binary", rec, http.StatusNotImplemented, "no symbol table")
	t.Log(rec.Body.String())
}

// TestHandlerRetainersServed fetches ?retainers=1 from a program holding a
// known leak in a global map (testdata/retainhandler), built with
// `go build` because the test binary has no symbol table, and reads it
// with the pprof parser and the real `go tool pprof`. The program samples
// every allocation, so each sampled buffer weighs exactly its size: the
// bytes charged to the map's global must be the leak's, with a tolerance
// of zero.
func TestHandlerRetainersServed(t *testing.T) {
	url, leak := startRetainHandler(t)
	const leaf, root = "main.leakBuffer", "[held by] main.leak"

	resp, body := get(t, http.MethodGet, url+"?retainers=1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET ?retainers=1: %s: %s", resp.Status, body)
	}
	for header, want := range map[string]string{
		"Content-Type":        "application/octet-stream",
		"Content-Disposition": `attachment; filename="leakhunt-retainers.pb.gz"`,
	} {
		if got := resp.Header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	prof, err := profile.ParseData([]byte(body))
	if err != nil {
		t.Fatalf("parsing the served profile: %v", err)
	}
	if err := prof.CheckValid(); err != nil {
		t.Fatalf("the served profile: %v", err)
	}
	if !strings.HasPrefix(strings.Join(prof.Comments, "\n"), "leakhunt retainers profile") {
		t.Errorf("not a retainers profile; comments:\n%s", strings.Join(prof.Comments, "\n"))
	}
	bytesBy := make(map[string]int64) // the leak's bytes by root
	mapFrames := 0
	for _, s := range prof.Sample {
		if s.Location[0].Line[0].Function.Name != leaf {
			continue
		}
		bytesBy[s.Location[len(s.Location)-1].Line[0].Function.Name] += s.Value[1]
		for _, l := range s.Location {
			if strings.HasPrefix(l.Line[0].Function.Name, mapFrame) {
				mapFrames++
			}
		}
	}
	if bytesBy[root] != leak || len(bytesBy) != 1 {
		t.Errorf("bytes from %s by root: %v, want %d held by %q only", leaf, bytesBy, leak, root)
	}
	if mapFrames == 0 {
		t.Errorf("no chain from %s goes through a %s frame", leaf, mapFrame)
	}

	// As users read it, with a collection first: the root's cumulative
	// bytes hold the leak and the map's own memory.
	pprofTmpDir(t)
	top := pproftest.Run(t, "-top", "-cum", "-unit=B", url+"?retainers=1&gc=1")
	if got, ok := topFlat(t, top, leaf); !ok || got != fmt.Sprintf("%dB", leak) {
		t.Errorf("go tool pprof -top: flat of %s %q, want %dB:\n%s", leaf, got, leak, top)
	}
	if !strings.Contains(top, " "+root+"\n") {
		t.Errorf("go tool pprof -top lacks %q:\n%s", root, top)
	}
}

// startRetainHandler builds and starts testdata/retainhandler, and
// returns its handler's URL and the bytes its leak holds. The program
// ends with the test: its standard input is closed then.
func startRetainHandler(t *testing.T) (url string, leak int64) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "retainhandler")
	if out, err := exec.Command(pproftest.GoTool(), "build", "-o", bin, "./testdata/retainhandler").CombinedOutput(); err != nil {
		t.Fatalf("building testdata/retainhandler: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	stop := func() error {
		stdin.Close()
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			return err
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			return io.ErrNoProgress
		}
	}

	var said struct {
		URL  string
		Leak int64
	}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &said)
	}
	if err != nil {
		cmd.Process.Kill()
		stop()
		t.Fatalf("retainhandler said %q: %v\nstderr:\n%s", line, err, stderr.Bytes())
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("retainhandler: %v\nstderr:\n%s", err, stderr.Bytes())
		}
	})
	return said.URL, said.Leak
}
