package envconfig

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// These tests run testdata/child, a program whose only change is the
// import of package auto, with environment variables, as a service would
// be run.

var (
	childOnce sync.Once
	childBin  string
	childErr  error
)

// buildChild builds testdata/child once per test binary.
func buildChild(t *testing.T) string {
	t.Helper()
	childOnce.Do(func() {
		dir, err := os.MkdirTemp("", "leakhunt-child")
		if err != nil {
			childErr = err
			return
		}
		childBin = filepath.Join(dir, "child")
		if runtime.GOOS == "windows" {
			childBin += ".exe"
		}
		out, err := exec.Command(pproftest.GoTool(), "build", "-o", childBin, "./testdata/child").CombinedOutput()
		if err != nil {
			childErr = errors.New(string(out))
		}
	})
	if childErr != nil {
		t.Fatalf("building testdata/child: %v", childErr)
	}
	return childBin
}

// child returns the command that runs the child in a fresh working
// directory with env on top of this process's environment, less any
// variable of this package.
func child(t *testing.T, env ...string) *exec.Cmd {
	cmd := exec.Command(buildChild(t))
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LEAKHUNT_") && !strings.HasPrefix(kv, otelServiceName+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

func run(t *testing.T, cmd *exec.Cmd) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstderr: %s", err, errOut.String())
	}
	return out.String(), errOut.String()
}

// The variables set the directory, the rate and the interval: a child that
// leaks for 2.5s with a 1s interval leaves profiles at that rate in which
// its leak shows.
func TestChildWritesProfiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	cmd := child(t, OutputDir+"="+dir, SamplingRate+"=4096", FlushInterval+"=1s", "CHILD_LEAK_FOR=2500ms")
	_, stderr := run(t, cmd)
	if stderr != "" {
		t.Errorf("child wrote to stderr: %s", stderr)
	}
	files, err := filepath.Glob(filepath.Join(dir, "heap-*.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("%d profiles in %s after 2.5s at a 1s interval, want at least 2", len(files), dir)
	}
	prof := pproftest.Parse(t, files[len(files)-1])
	if prof.Period != 4096 {
		t.Errorf("period %d, want the rate 4096", prof.Period)
	}
	if n := leakBytes(prof); n == 0 {
		t.Errorf("the last profile shows no in-use bytes under main.leak")
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "heapprofiles")); err == nil {
		t.Errorf("the default directory was made besides %s", dir)
	}
}

// leakBytes is the in-use bytes of samples whose leaf is main.leak.
func leakBytes(p *profile.Profile) int64 {
	var n int64
	for _, s := range p.Sample {
		if len(s.Location) > 0 && len(s.Location[0].Line) > 0 && s.Location[0].Line[0].Function.Name == "main.leak" {
			n += s.Value[3]
		}
	}
	return n
}

// Invalid variables are reported in one line, naming each, and the child
// runs to its normal end without a profiler.
func TestChildInvalidVariables(t *testing.T) {
	cmd := child(t, SamplingRate+"=lots", FlushInterval+"=soon", Labels+"=env")
	stdout, stderr := run(t, cmd)
	if !strings.HasPrefix(stdout, "done") {
		t.Errorf("child output %q, want its normal end", stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "ERROR") || !strings.Contains(lines[0], "heap profiler not started") {
		t.Errorf("stderr %q, want one ERROR line", stderr)
	}
	// Labels are only read for a push, and no URL is set.
	for _, name := range []string{SamplingRate, FlushInterval} {
		if !strings.Contains(stderr, name) {
			t.Errorf("stderr %q does not name %s", stderr, name)
		}
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "heapprofiles")); err == nil {
		t.Error("a profiler wrote files despite invalid variables")
	}
}

// LEAKHUNT_ENABLED=false: no profiler, nothing said.
func TestChildDisabled(t *testing.T) {
	cmd := child(t, Enabled+"=false", "CHILD_LEAK_FOR=1500ms")
	if _, stderr := run(t, cmd); stderr != "" {
		t.Errorf("stderr %q, want nothing", stderr)
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "heapprofiles")); err == nil {
		t.Error("a disabled profiler wrote files")
	}
}

// With no variable, the profiler runs with its defaults: files in
// ./heapprofiles.
func TestChildDefaults(t *testing.T) {
	cmd := child(t, "CHILD_LEAK_FOR=1500ms")
	run(t, cmd)
	files, _ := filepath.Glob(filepath.Join(cmd.Dir, "heapprofiles", "heap-*.pb.gz"))
	if len(files) == 0 {
		t.Error("no profile in ./heapprofiles with every variable unset")
	}
}

// push is one push request as the server got it.
type push struct {
	labels  map[string]string
	profile *profile.Profile
}

// pushServer records the pushes it gets.
func pushServer(t *testing.T) (*httptest.Server, func() []push) {
	var mu sync.Mutex
	var got []push
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.URL.Path != "/push.v1.PusherService/Push" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		ps, err := decodePush(body)
		if err != nil {
			t.Errorf("decoding a push: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ps...)
		mu.Unlock()
		// An empty PushResponse, as the connect protocol answers.
		w.Header().Set("Content-Type", "application/proto")
	}))
	t.Cleanup(srv.Close)
	return srv, func() []push {
		mu.Lock()
		defer mu.Unlock()
		return append([]push(nil), got...)
	}
}

// Pushed with no files: the service name falls back to OTEL_SERVICE_NAME,
// the labels are sent, the final profile comes from Stop, and nothing is
// written to the working directory.
func TestChildPushes(t *testing.T) {
	srv, pushes := pushServer(t)
	cmd := child(t, PyroscopeURL+"="+srv.URL, OutputDir+"=", otelServiceName+"=otel-svc",
		Labels+"=env=test", "CHILD_LEAK_FOR=1500ms", "CHILD_END=stop")
	if _, stderr := run(t, cmd); stderr != "" {
		t.Errorf("stderr %q, want nothing", stderr)
	}
	got := pushes()
	if len(got) < 2 {
		t.Fatalf("%d pushes, want at least 2: the first profile at 1s and Stop's", len(got))
	}
	for _, p := range got {
		want := map[string]string{"__name__": "memory", "service_name": "otel-svc", "env": "test"}
		for k, v := range want {
			if p.labels[k] != v {
				t.Errorf("series label %s=%q, want %q (all: %v)", k, p.labels[k], v, p.labels)
			}
		}
	}
	if n := leakBytes(got[len(got)-1].profile); n == 0 {
		t.Error("the last push shows no in-use bytes under main.leak")
	}
	entries, err := os.ReadDir(cmd.Dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("the working directory holds %v (%v), want nothing", entries, err)
	}

	// With neither name variable, the executable names the service.
	srv2, pushes2 := pushServer(t)
	run(t, child(t, PyroscopeURL+"="+srv2.URL, OutputDir+"=", "CHILD_END=stop"))
	for _, p := range pushes2() {
		if p.labels["service_name"] != "child" {
			t.Errorf("service_name %q, want the executable's name, child", p.labels["service_name"])
		}
	}
}

// decodePush decodes a PushRequest: series (1) of labels (1: name 1,
// value 2) and samples (2: raw_profile 1).
func decodePush(b []byte) ([]push, error) {
	var out []push
	err := fields(b, func(num int, v []byte) error {
		if num != 1 {
			return nil
		}
		p := push{labels: map[string]string{}}
		err := fields(v, func(num int, v []byte) error {
			switch num {
			case 1:
				var name, value string
				if err := fields(v, func(num int, v []byte) error {
					if num == 1 {
						name = string(v)
					} else if num == 2 {
						value = string(v)
					}
					return nil
				}); err != nil {
					return err
				}
				p.labels[name] = value
			case 2:
				return fields(v, func(num int, v []byte) error {
					if num != 1 {
						return nil
					}
					prof, err := profile.ParseData(v)
					p.profile = prof
					return err
				})
			}
			return nil
		})
		out = append(out, p)
		return err
	})
	return out, err
}

// fields calls f with each length-delimited field of a protocol buffer
// message, skipping varints; other wire types are an error.
func fields(b []byte, f func(num int, v []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad key")
		}
		b = b[n:]
		switch key & 7 {
		case 0:
			if _, n = binary.Uvarint(b); n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errors.New("bad length")
			}
			if err := f(int(key>>3), b[n:n+int(l)]); err != nil {
				return err
			}
			b = b[n+int(l):]
		default:
			return errors.New("unexpected wire type")
		}
	}
	return nil
}

// SIGTERM ends the child exactly as it would without the profiler; the
// profiles written before stay whole.
func TestChildSIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	status := func(env ...string) (string, string) {
		dir := filepath.Join(t.TempDir(), "out")
		cmd := child(t, append(env, OutputDir+"="+dir, FlushInterval+"=1s", "CHILD_LEAK_FOR=1200ms", "CHILD_END=wait")...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, len("waiting"))
		if _, err := io.ReadFull(out, line); err != nil {
			t.Fatalf("child: %v", err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child ended with %v, want an exit error", err)
			}
			return exit.ProcessState.String(), dir
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("child still running 30s after SIGTERM")
		}
		return "", ""
	}
	without, _ := status(Enabled + "=false")
	with, dir := status()
	if with != without || !strings.Contains(with, "terminated") {
		t.Errorf("child with the profiler ended %q, without %q; want the same, by SIGTERM", with, without)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "heap-*.pb.gz"))
	if len(files) == 0 {
		t.Fatal("no profile left after 1.2s at a 1s interval")
	}
	for _, f := range files {
		pproftest.Parse(t, f)
	}
}
