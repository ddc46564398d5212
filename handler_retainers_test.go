package profiler

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// getRetainers asks Handler for ?query in process and returns the answer.
func getRetainers(query string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/leakhunt?"+query, nil))
	return rec
}

// checkRetainersError fails the test unless rec is an error with status,
// saying mention, as text and with no file name: no part of a profile.
func checkRetainersError(t *testing.T, what string, rec *httptest.ResponseRecorder, status int, mention string) {
	t.Helper()
	if body := rec.Body.String(); rec.Code != status || !strings.Contains(body, mention) {
		t.Errorf("%s: %d %q, want %d saying %q", what, rec.Code, body, status, mention)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("%s: Content-Type %q, want text/plain", what, ct)
	}
	if cd := rec.Header().Get("Content-Disposition"); cd != "" {
		t.Errorf("%s: Content-Disposition %q on an error", what, cd)
	}
}

// TestHandlerRetainersDeclined checks the answers to retainers requests
// that the profiler's guards decline, 503 since the same request may be
// served later: while another dump is taken, and when the dump's
// estimated pause is over the limit, with a collection first or not. No
// dump is taken. Where there is no dump at all, the answer is 501 instead.
func TestHandlerRetainersDeclined(t *testing.T) {
	// 10ms, the least the option takes, is below any estimate: the
	// fixed cost of a dump alone is as much, and the heap adds to it.
	p, err := Start(WithMaxRetainersPause(10*time.Millisecond), WithoutFiles(), WithMemoryPoll(0),
		WithLeakWarnings(false), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })

	if !retainersBusy.CompareAndSwap(false, true) {
		t.Fatal("a retainers profile is already being taken")
	}
	rec := getRetainers("retainers=1")
	retainersBusy.Store(false)
	checkRetainersError(t, "while another is taken", rec, http.StatusServiceUnavailable, "already being taken")

	status, mention := http.StatusServiceUnavailable, "over the limit of 10ms; WithMaxRetainersPause raises it"
	if runtime.GOOS != "linux" {
		status, mention = http.StatusNotImplemented, "not supported on "+runtime.GOOS
	}
	for _, query := range []string{"retainers=1", "retainers=1&gc=1"} {
		checkRetainersError(t, "over the pause limit, ?"+query, getRetainers(query), status, mention)
	}
}
