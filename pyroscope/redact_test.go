package pyroscope_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/pyroscope"
)

const (
	password = "glc_Pa55w0rd-of-the-test"
	token    = "bearer-T0ken-of-the-test"
	apiKey   = "k3y!"             // short, but in a header whose name says key
	longHdr  = "0123456789abcdef" // long enough to count as a secret whatever its header
)

// secrets are the strings no error or log line may hold: the credentials,
// their encodings as sent, and a prefix of each, which a message cut short
// could leave.
var secrets = []string{
	password, token, apiKey, longHdr,
	base64.StdEncoding.EncodeToString([]byte("123456:" + password)),
	password[:8], token[:8], longHdr[:8], "%zz",
}

// echoServer answers every push with a 400 quoting the request's headers,
// as a careless proxy might, the Authorization header across the point
// where the message is cut.
func echoServer(t *testing.T) *pushServer {
	return newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s %s ", r.Header.Get("X-Api-Key"), r.Header.Get("X-Long"), r.Header.Get("X-Plain"))
		b.WriteString(strings.Repeat("x", 210))
		fmt.Fprintf(&b, " %s", r.Header.Get("Authorization"))
		if u, p, ok := r.BasicAuth(); ok {
			fmt.Fprintf(&b, " user=%s password=%s", u, p)
		}
		http.Error(w, b.String(), http.StatusBadRequest)
	})
}

// checkClean fails the test if text holds a secret.
func checkClean(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s holds the secret %q:\n%s", what, s, text)
		}
	}
}

// No credential appears in an error or a log line, however the server
// echoes them, and whichever way they were given.
func TestNoCredentialsInErrorsOrLogs(t *testing.T) {
	logger, logs := logBuffer()
	srv := echoServer(t)
	configs := []pyroscope.Config{
		{URL: srv.URL, BasicAuthUser: "123456", BasicAuthPassword: password},
		{URL: strings.Replace(srv.URL, "http://", "http://123456:"+password+"@", 1)},
		{URL: srv.URL, BearerToken: token},
	}
	for i, cfg := range configs {
		cfg.ServiceName = "secrets"
		cfg.Labels = map[string]string{"tenant": "static"}
		cfg.Headers = map[string]string{"X-Api-Key": apiKey, "X-Long": longHdr, "X-Plain": "v1"}
		cfg.Logger = logger
		cfg.MaxSamples = 16
		exp, err := pyroscope.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkClean(t, "String()", exp.String())

		// Many sites, to be folded, with a pprof label to be renamed:
		// both are logged.
		var samples []synthSample
		for j := range 40 {
			samples = append(samples, synthSample{stack: []frame{fn(fmt.Sprintf("main.f%d", j))}, heap: "h",
				labels: map[string]string{"tenant": "acme"}, age: -1, values: [4]int64{1, int64(j + 1), 1, int64(j + 1)}})
		}
		err = exp.Export(context.Background(), heapProfile(t, time.Now(), 1, samples...))
		if err == nil {
			t.Fatalf("config %d: Export succeeded against a 400", i)
		}
		checkClean(t, fmt.Sprintf("config %d: error", i), err.Error())
		if !strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("config %d: error %q; want the echoed credential shown as [redacted]", i, err)
		}
		if !strings.Contains(err.Error(), "400 Bad Request: [redacted] [redacted] v1 xxx") {
			t.Errorf("config %d: error %q; want the server's message, with the header values scrubbed but the plain one", i, err)
		}

		// A push its deadline cuts short.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		err = exp.Export(ctx, heapProfile(t, time.Now(), 1, samples...))
		cancel()
		if err == nil {
			t.Fatalf("config %d: Export succeeded past its deadline", i)
		}
		checkClean(t, fmt.Sprintf("config %d: error", i), err.Error())
	}
	if len(logs.lines("renamed")) == 0 || len(logs.lines("folded")) == 0 {
		t.Errorf("want the rename and the folding logged; the log:\n%s", logs)
	}
	checkClean(t, "log", logs.String())
}

// Invalid configs are reported without quoting a credential.
func TestNoCredentialsInConfigErrors(t *testing.T) {
	configs := []pyroscope.Config{
		{URL: "ftp://123456:" + password + "@example.com", ServiceName: "s"},
		{URL: "http://123456:" + password + "@example.com:port", ServiceName: "s"},
		{URL: "http://123456:" + password + "%zz@example.com", ServiceName: "s"},
		{URL: "http://123456:" + password + "@example.com", BasicAuthUser: "u", BasicAuthPassword: token},
		{URL: "http://example.com", BearerToken: token + "\n", ServiceName: "s"},
		{URL: "http://example.com", BearerToken: token, BasicAuthUser: "u", BasicAuthPassword: password, ServiceName: "s"},
		{URL: "http://example.com", Headers: map[string]string{"X-Api-Key": apiKey + "\r\n", "X Long": longHdr}, ServiceName: "s"},
		{URL: "http://example.com", BasicAuthPassword: password, ServiceName: "s"},
	}
	for i, cfg := range configs {
		_, err := pyroscope.New(cfg)
		if err == nil {
			t.Errorf("config %d: New accepted it", i)
			continue
		}
		checkClean(t, fmt.Sprintf("config %d: error", i), err.Error())
	}
}
