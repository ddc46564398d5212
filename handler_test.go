package profiler

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// These tests read the handler's answers the way a user does, with the
// pprof parser and the real `go tool pprof` fetching the URL. They are in
// the package, not beside it, for one reason: the ?seconds test acts inside
// the window through profileHandler.windowOpened. Only one profiler runs
// per process, so none of them is parallel.

// The leaf frames the profiles must show: the hook records its caller.

//go:noinline
func allocServed(h *Heap, key uintptr, size int) { h.Alloc(key, size) }

//go:noinline
func allocBeforeWindow(h *Heap, key uintptr, size int) { h.Alloc(key, size) }

//go:noinline
func allocInWindow(h *Heap, key uintptr, size int) { h.Alloc(key, size) }

const handlerPkg = "github.com/leakhunt/profiler."

// startForHandler starts a profiler that records every hook allocation
// exactly (rate 1) and nothing of the Go heap, and stops it when the test
// ends.
func startForHandler(t *testing.T) *Profiler {
	t.Helper()
	p, err := Start(WithSamplingRate(1), WithGoHeap(false), WithOutputDir(t.TempDir()),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// pprofTmpDir keeps the copies `go tool pprof` saves of fetched profiles
// out of $HOME, and returns where they go.
func pprofTmpDir(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("PPROF_TMPDIR", dir)
	return dir
}

// serve runs h on a test server and returns the server and the handler's
// URL, at the documented path.
func serve(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /debug/pprof/leakhunt", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, srv.URL + "/debug/pprof/leakhunt"
}

// topFlat returns the flat value `go tool pprof -top` prints for the
// function fn, and whether it prints fn at all.
func topFlat(t *testing.T, top, fn string) (string, bool) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*(-?\S+)\s+\S+%\s+\S+%\s+\S+\s+\S+%\s+` + regexp.QuoteMeta(fn) + `$`).FindStringSubmatch(top)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// get requests url and returns the response with its body read.
func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHandlerServesCurrentProfile(t *testing.T) {
	p := startForHandler(t)
	h := NewHeap("handler-served")
	for key := uintptr(1); key <= 3; key++ {
		allocServed(h, key, 1000)
	}
	h.Free(2)
	_, url := serve(t, Handler())

	// What pprof prints, exact at rate 1: three allocations of 1000
	// bytes, one of them freed.
	pprofTmpDir(t)
	fn := handlerPkg + "allocServed"
	want := map[string]string{
		"alloc_objects": "3",
		"alloc_space":   "3000B",
		"inuse_objects": "2",
		"inuse_space":   "2000B",
	}
	var runs [][]string
	var indexes []string
	for index, v := range want {
		args := []string{"-top", "-sample_index=" + index, "-tagfocus=heap=handler-served", url}
		if strings.HasSuffix(v, "B") {
			// Bytes in bytes, not kB; -unit would turn counts into bytes too.
			args = append([]string{"-unit=B"}, args...)
		}
		indexes = append(indexes, index)
		runs = append(runs, args)
	}
	for i, top := range pproftest.RunAll(t, runs...) {
		if got, ok := topFlat(t, top, fn); !ok || got != want[indexes[i]] {
			t.Errorf("go tool pprof -sample_index=%s %s: %s is %q, want %q:\n%s", indexes[i], url, fn, got, want[indexes[i]], top)
		}
	}

	// The bytes are WriteProfile's: the same samples, labels and comments,
	// taken a moment apart. Ages may have crossed a bucket in that moment,
	// so they are left out.
	resp, body := get(t, http.MethodGet, url+"?debug=1&scraper=x") // unknown parameters are ignored
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %s: %s", resp.Status, body)
	}
	for header, want := range map[string]string{
		"Content-Type":           "application/octet-stream",
		"X-Content-Type-Options": "nosniff",
		"Content-Disposition":    `attachment; filename="leakhunt-heap.pb.gz"`,
	} {
		if got := resp.Header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	served, err := profile.ParseData([]byte(body))
	if err != nil {
		t.Fatalf("parsing the served profile: %v", err)
	}
	var buf bytes.Buffer
	if err := p.WriteProfile(&buf); err != nil {
		t.Fatal(err)
	}
	written, err := profile.ParseData(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, prof := range []*profile.Profile{served, written} {
		prof.RemoveNumLabel("age")
		prof.TimeNanos, prof.DurationNanos = 0, 0
	}
	if s, w := served.String(), written.String(); s != w {
		t.Errorf("served profile:\n%s\nWriteProfile's:\n%s", s, w)
	}

	// HEAD answers as GET would, without the body; an empty value is no
	// value; gc=1 collects first.
	if resp, body := get(t, http.MethodHead, url); resp.StatusCode != http.StatusOK || body != "" ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="leakhunt-heap.pb.gz"` {
		t.Errorf("HEAD: %s, %q, %v", resp.Status, body, resp.Header)
	}
	if resp, _ := get(t, http.MethodGet, url+"?seconds=&gc="); resp.StatusCode != http.StatusOK ||
		resp.Header.Get("Content-Disposition") != `attachment; filename="leakhunt-heap.pb.gz"` {
		t.Errorf("GET with empty values: %s, %v, want the current profile", resp.Status, resp.Header)
	}
	if resp, body := get(t, http.MethodGet, url+"?gc=1"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET ?gc=1: %s: %s", resp.Status, body)
	} else if _, err := profile.ParseData([]byte(body)); err != nil {
		t.Errorf("GET ?gc=1: %v", err)
	}
}

// TestHandlerDelta fetches a ?seconds delta the way users do, with
// `go tool pprof -seconds`, and checks that it holds exactly what happened
// inside the window.
func TestHandlerDelta(t *testing.T) {
	p := startForHandler(t)
	h := NewHeap("handler-delta")
	for key := uintptr(1); key <= 3; key++ {
		allocBeforeWindow(h, key, 1000)
	}
	// Inside the window: two new allocations, and one of the earlier ones
	// freed.
	handler := profileHandler{windowOpened: func() {
		allocInWindow(h, 10, 4096)
		allocInWindow(h, 11, 4096)
		h.Free(1)
	}}
	var mu sync.Mutex
	var queries []url.Values
	_, u := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Query())
		mu.Unlock()
		handler.ServeHTTP(w, r)
	}))

	pprofTmpDir(t)
	path := filepath.Join(t.TempDir(), "delta.pb.gz")
	begin := time.Now()
	pproftest.Run(t, "-proto", "-output", path, "-seconds", "2", "-timeout", "60", u)
	end := time.Now()
	mu.Lock()
	if len(queries) != 1 || queries[0].Get("seconds") != "2" {
		t.Errorf("go tool pprof -seconds 2 sent queries %v, want one with seconds=2", queries)
	}
	mu.Unlock()

	prof := pproftest.Parse(t, path)
	if !strings.Contains(strings.Join(prof.Comments, "\n"), "leakhunt delta profile: the profile at ") {
		t.Errorf("the delta is not marked as one; comments:\n%s", strings.Join(prof.Comments, "\n"))
	}
	if _, err := leakrank.NewSnapshot(path, prof); err == nil {
		t.Errorf("leakrank.NewSnapshot took the delta profile for a snapshot")
	}
	at, window := time.Unix(0, prof.TimeNanos), time.Duration(prof.DurationNanos)
	if window < 2*time.Second || at.Add(-window).Before(begin) || at.After(end) {
		t.Errorf("delta at %v over %v; want a window of at least 2s within [%v, %v]", at, window, begin, end)
	}
	if p.Stats().Samples != 5 {
		t.Errorf("Stats().Samples = %d, want 5: the window opened more than once", p.Stats().Samples)
	}

	// Exact at rate 1: alloc_* counts only the window's allocations, and
	// inuse_* the change, negative for the freed one.
	pprofTmpDir(t)
	before, during := handlerPkg+"allocBeforeWindow", handlerPkg+"allocInWindow"
	outs := pproftest.RunAll(t,
		[]string{"-top", "-unit=B", "-sample_index=alloc_space", path},
		[]string{"-top", "-sample_index=alloc_objects", path},
		[]string{"-top", "-unit=B", "-sample_index=inuse_space", path},
	)
	allocSpace, allocObjects, inuseSpace := outs[0], outs[1], outs[2]
	if got, ok := topFlat(t, allocSpace, during); !ok || got != "8192B" {
		t.Errorf("alloc_space of %s: %q, want 8192B:\n%s", during, got, allocSpace)
	}
	if got, ok := topFlat(t, allocObjects, during); !ok || got != "2" {
		t.Errorf("alloc_objects of %s: %q, want 2:\n%s", during, got, allocObjects)
	}
	if got, ok := topFlat(t, allocSpace, before); ok {
		t.Errorf("alloc_space shows %s, allocated before the window, with %s:\n%s", before, got, allocSpace)
	}
	if !strings.Contains(allocSpace, "accounting for 8192B, 100% of 8192B total") {
		t.Errorf("alloc_space total is not 8192B:\n%s", allocSpace)
	}
	if got, ok := topFlat(t, inuseSpace, during); !ok || got != "8192B" {
		t.Errorf("inuse_space of %s: %q, want 8192B:\n%s", during, got, inuseSpace)
	}
	if got, ok := topFlat(t, inuseSpace, before); !ok || got != "-1000B" {
		t.Errorf("inuse_space of %s: %q, want -1000B:\n%s", before, got, inuseSpace)
	}
}

func TestHandlerBadRequests(t *testing.T) {
	for _, tt := range []struct {
		method, query string
		status        int
		mention       string
	}{
		{"GET", "seconds=0", 400, `"seconds"`},
		{"GET", "seconds=-5", 400, `"seconds"`},
		{"GET", "seconds=1.5", 400, `"seconds"`},
		{"GET", "seconds=ten", 400, `"seconds"`},
		{"GET", fmt.Sprintf("seconds=%d", maxWindowSeconds+1), 400, `"seconds"`},
		{"GET", "seconds=99999999999999999999", 400, `"seconds"`},
		{"GET", "gc=yes", 400, `"gc"`},
		{"GET", "gc=-1", 400, `"gc"`},
		{"GET", "gc=1&seconds=0", 400, `"seconds"`},
		{"GET", "retainers=x", 400, `"retainers"`},
		{"GET", "retainers=2", 400, `"retainers"`},
		{"GET", "retainers=true", 400, `"retainers"`},
		{"GET", "retainers=1&seconds=5", 400, `"seconds" cannot be given with "retainers"`},
		{"GET", "seconds=5&gc=1&retainers=1", 400, `"seconds" cannot be given with "retainers"`},
		{"POST", "", 405, "POST"},
		{"PUT", "seconds=1", 405, "PUT"},
	} {
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, "/debug/pprof/leakhunt?"+tt.query, nil))
		body := rec.Body.String()
		if rec.Code != tt.status || !strings.Contains(body, tt.mention) {
			t.Errorf("%s ?%s: %d %q, want %d naming %s", tt.method, tt.query, rec.Code, body, tt.status, tt.mention)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s ?%s: Content-Type %q, want text/plain", tt.method, tt.query, ct)
		}
		if tt.status == 405 && rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: Allow %q, want GET, HEAD", tt.method, rec.Header().Get("Allow"))
		}
	}
}

// TestHandlerNoProfiler checks that a request with no profiler running is
// an error, never an empty profile: before any Start, after Stop, and when
// Stop comes during a ?seconds window.
func TestHandlerNoProfiler(t *testing.T) {
	check := func(when string, rec *httptest.ResponseRecorder, mention string) {
		t.Helper()
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), mention) {
			t.Errorf("%s: %d %q, want 503 saying %q", when, rec.Code, rec.Body.String(), mention)
		}
		if rec.Header().Get("Content-Disposition") != "" {
			t.Errorf("%s: Content-Disposition %q on an error", when, rec.Header().Get("Content-Disposition"))
		}
	}
	for _, query := range []string{"", "?seconds=1", "?retainers=1"} {
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/leakhunt"+query, nil))
		check("before Start "+query, rec, "no heap profiler is running")
	}

	p := startForHandler(t)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/leakhunt", nil))
	check("after Stop", rec, "no heap profiler is running")

	// Stop inside the window ends it at once, with no second profile.
	p = startForHandler(t)
	h := profileHandler{windowOpened: func() { p.Stop() }}
	rec = httptest.NewRecorder()
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/leakhunt?seconds=60", nil))
	}()
	select {
	case <-returned:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler still waits for a window whose profiler stopped")
	}
	check("Stop during the window", rec, "stopped")
}

// TestHandlerClientGone checks that a client that goes away ends the
// window: the handler returns long before the 30 seconds asked for.
func TestHandlerClientGone(t *testing.T) {
	startForHandler(t)
	returned := make(chan int, 1)
	_, u := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		Handler().ServeHTTP(rec, r)
		returned <- rec.status
	}))

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", u+"?seconds=30", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request was answered, %s, before the client went away", resp.Status)
	}
	select {
	case status := <-returned:
		if status == http.StatusOK {
			t.Errorf("the handler answered 200 to a request that ended before its window")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the handler still waits for a client that went away")
	}
}

// statusRecorder passes a response through and keeps its status.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// TestHandlerWriteTimeout checks a window longer than the server's
// WriteTimeout: served when the write deadline can be moved out, refused
// with 400 when it cannot.
func TestHandlerWriteTimeout(t *testing.T) {
	startForHandler(t)
	server := &http.Server{WriteTimeout: time.Second}

	// A ResponseRecorder has no SetWriteDeadline, like a ResponseWriter
	// wrapped by middleware that does not unwrap.
	req := httptest.NewRequest("GET", "/debug/pprof/leakhunt?seconds=2", nil)
	req = req.WithContext(context.WithValue(req.Context(), http.ServerContextKey, server))
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	if body := rec.Body.String(); rec.Code != http.StatusBadRequest || !strings.Contains(body, "WriteTimeout") || !strings.Contains(body, `"seconds"`) {
		t.Errorf("window over the WriteTimeout, deadline fixed: %d %q, want 400 naming seconds and the WriteTimeout", rec.Code, body)
	}

	// A window shorter than the timeout needs no move.
	req = httptest.NewRequest("GET", "/debug/pprof/leakhunt?seconds=1", nil)
	req = req.WithContext(context.WithValue(req.Context(), http.ServerContextKey, &http.Server{WriteTimeout: time.Minute}))
	rec = httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("window within the WriteTimeout: %d %q, want 200", rec.Code, rec.Body.String())
	}

	// A real server's connection moves its deadline.
	mux := http.NewServeMux()
	mux.Handle("GET /debug/pprof/leakhunt", Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.WriteTimeout = time.Second
	srv.Start()
	t.Cleanup(srv.Close)
	resp, body := get(t, "GET", srv.URL+"/debug/pprof/leakhunt?seconds=2")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("window over the WriteTimeout of a real server: %s %q, want 200", resp.Status, body)
	}
	if got := resp.Header.Get("Content-Disposition"); got != `attachment; filename="leakhunt-heap-delta.pb.gz"` {
		t.Errorf("Content-Disposition %q", got)
	}
	prof, err := profile.ParseData([]byte(body))
	if err != nil {
		t.Fatalf("parsing the delta: %v", err)
	}
	if prof.DurationNanos < int64(2*time.Second) {
		t.Errorf("delta over %v, want at least 2s", time.Duration(prof.DurationNanos))
	}
}

// TestHandlerMountBesideNetHTTPPprof checks the documented mount line
// against the pattern net/http/pprof registers at init (see its pprof.go):
// the two must coexist, and the more specific path must win.
func TestHandlerMountBesideNetHTTPPprof(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "net/http/pprof's index", http.StatusNotFound)
	})
	mux.Handle("GET /debug/pprof/leakhunt", Handler())
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/leakhunt", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "profiler") {
		t.Errorf("GET /debug/pprof/leakhunt: %d %q, want this package's handler", rec.Code, rec.Body.String())
	}
}
