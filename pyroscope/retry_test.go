package pyroscope_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/pyroscope"
)

// oneSample is a profile with one site, for tests of the transport.
func oneSample(t *testing.T) profiler.Profile {
	return heapProfile(t, time.Now(), 1, synthSample{stack: []frame{fn("main.f")}, heap: "h", age: -1, values: [4]int64{1, 64, 1, 64}})
}

func newExporter(t *testing.T, url string) *pyroscope.Exporter {
	t.Helper()
	exp, err := pyroscope.New(pyroscope.Config{URL: url, ServiceName: "retries"})
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// A server failing twice with 503 gets the same request a third time, and
// the push succeeds.
func TestRetryUnavailable(t *testing.T) {
	srv := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			connectError(w, http.StatusServiceUnavailable, "unavailable", "ingester not ready")
			return
		}
		ok(w)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := newExporter(t, srv.URL).Export(ctx, oneSample(t)); err != nil {
		t.Fatal(err)
	}
	got := srv.requests()
	if len(got) != 3 {
		t.Fatalf("server got %d requests, want 3", len(got))
	}
	id := got[0].push.series[0].samples[0].id
	for i, r := range got {
		if r.push.series[0].samples[0].id != id {
			t.Errorf("request %d has sample ID %q; want the first's, %q: one push, retried", i+1, r.push.series[0].samples[0].id, id)
		}
	}
}

// A 429 with Retry-After is retried no sooner than it asks; one whose
// Retry-After ends past the deadline is reported at once.
func TestRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	srv := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			connectError(w, http.StatusTooManyRequests, "resource_exhausted", "rate limited")
			return
		}
		ok(w)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := newExporter(t, srv.URL).Export(ctx, oneSample(t)); err != nil {
		t.Fatal(err)
	}
	if len(times) != 2 {
		t.Fatalf("server got %d requests, want 2", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retried after %v; the server asked for 1s", gap)
	}

	far := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		connectError(w, http.StatusTooManyRequests, "resource_exhausted", "rate limited")
	})
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := newExporter(t, far.URL).Export(ctx, oneSample(t))
	if err == nil || !strings.Contains(err.Error(), "429 Too Many Requests: resource_exhausted: rate limited") ||
		!strings.Contains(err.Error(), "retry after 1h0m0s") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v; want the 429, its Retry-After past the deadline, and context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Export waited for the deadline; want it to give up at once")
	}
	if n := len(far.requests()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

// Answers that would be the same the next time are final: one request,
// and an error with the status and the server's message.
func TestFinalAnswersNotRetried(t *testing.T) {
	cases := []struct {
		status int
		code   string
		msg    string
	}{
		{400, "invalid_argument", "profile with labels '{service_name=\"retries\"}' is outside of ingestion window (profile timestamp: 2020-01-01T00:00:00.000Z, the ingestion window starts at ...)"},
		{401, "unauthenticated", "no org id"},
		{403, "permission_denied", "forbidden"},
		{404, "", "404 page not found"},
		{413, "", "request too large"},
		{422, "", "wrong wireType"},
		{501, "unimplemented", "push.v1.PusherService/Push is not implemented"},
	}
	for _, tc := range cases {
		srv := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if tc.code == "" {
				http.Error(w, tc.msg, tc.status)
				return
			}
			connectError(w, tc.status, tc.code, tc.msg)
		})
		err := newExporter(t, srv.URL).Export(context.Background(), oneSample(t))
		want := fmt.Sprintf("%d %s: ", tc.status, http.StatusText(tc.status))
		if tc.code != "" {
			want += tc.code + ": "
		}
		want += tc.msg
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("status %d: error %v; want it to hold %q", tc.status, err, want)
		}
		if n := len(srv.requests()); n != 1 {
			t.Errorf("status %d: server got %d requests, want 1", tc.status, n)
		}
	}
}

// The server's message is cut to one line of 256 bytes.
func TestServerMessageCut(t *testing.T) {
	body := "<html>\n<head><title>502 Bad Gateway</title></head>\r\n<body>" + strings.Repeat("é", 400) + "</body></html>"
	srv := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, body)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	err := newExporter(t, srv.URL).Export(ctx, oneSample(t))
	if err == nil {
		t.Fatal("Export succeeded against a 502")
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	_, quoted, found := strings.Cut(msg, "502 Bad Gateway: ")
	if !found {
		t.Fatalf("error %q lacks the status", msg)
	}
	quoted, _, _ = strings.Cut(quoted, " (after ")
	quoted, _, _ = strings.Cut(quoted, "; ")
	if !strings.HasPrefix(quoted, "<html> <head><title>502 Bad Gateway</title></head> <body>éé") || !strings.HasSuffix(quoted, "é…") || len(quoted) > 256 {
		t.Errorf("server message %q (%d bytes); want the body on one line, cut to 256 bytes at a character", quoted, len(quoted))
	}
}

// A 200 that is not a connect response is a wrong URL, not a push.
func TestNotPyroscope(t *testing.T) {
	srv := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<html>Grafana</html>")
	})
	err := newExporter(t, srv.URL).Export(context.Background(), oneSample(t))
	if err == nil || !strings.Contains(err.Error(), `200 OK, but with Content-Type "text/html; charset=utf-8"`) {
		t.Errorf("error %v; want the unexpected content type", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

// Against a dead backend, Export keeps trying until the deadline and
// returns then, with the last failure, leaving no goroutine behind.
func TestDeadBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	exp := newExporter(t, url)
	in := oneSample(t)
	before := runtime.NumGoroutine()

	const timeout = 1500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err = exp.Export(ctx, in)
	elapsed := time.Since(start)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connect: connection refused") ||
		!strings.Contains(err.Error(), "attempts") {
		t.Errorf("error %v; want connection refused, after attempts, and context.DeadlineExceeded", err)
	}
	if elapsed > timeout+time.Second {
		t.Errorf("Export returned %v after the deadline", elapsed-timeout)
	}

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Export, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// Against a backend slower than the deadline, Export returns the context's
// error when the deadline passes.
func TestSlowBackend(t *testing.T) {
	release := make(chan struct{})
	srv := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)

	const timeout = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := newExporter(t, srv.URL).Export(ctx, oneSample(t))
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("error %v; want context.DeadlineExceeded", err)
	}
	if elapsed < timeout || elapsed > timeout+2*time.Second {
		t.Errorf("Export returned after %v; want it at the deadline, %v", elapsed, timeout)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}
