package pyroscope_test

import (
	"context"
	"encoding/base64"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/pyroscope"
)

// One push: a POST of the binary protobuf to the connect route, with the
// configured headers, the series labels, and the profile with its numeric
// labels dropped and everything else as it was.
func TestPushRequest(t *testing.T) {
	srv := newPushServer(t, nil)
	exp, err := pyroscope.New(pyroscope.Config{
		URL:         srv.URL,
		ServiceName: "checkout",
		Labels:      map[string]string{"region": "eu-west", "env": "prod"},
		TenantID:    "team-a",
		BearerToken: "tok-123",
		Headers:     map[string]string{"X-Extra": "yes", "x-lower": "v"},
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Truncate(time.Millisecond)
	in := heapProfile(t, at, 1,
		synthSample{stack: []frame{fn("main.alloc"), fn("main.main")}, heap: "cgo", labels: map[string]string{"tenant": "acme"}, age: 60, values: [4]int64{3, 300, 2, 200}},
		synthSample{stack: []frame{fn("main.alloc"), fn("main.main")}, heap: "cgo", labels: map[string]string{"tenant": "acme"}, age: 0, values: [4]int64{1, 100, 1, 100}},
		synthSample{stack: []frame{fn("main.other"), fn("main.main")}, heap: "go", age: -1, values: [4]int64{5, 5000, 0, 0}},
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exp.Export(ctx, in); err != nil {
		t.Fatal(err)
	}

	got := srv.requests()
	if len(got) != 1 {
		t.Fatalf("server got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != "POST" || r.path != "/push.v1.PusherService/Push" {
		t.Errorf("request %s %s; want POST /push.v1.PusherService/Push", r.method, r.path)
	}
	wantHeaders := map[string]string{
		"Content-Type":             "application/proto",
		"Connect-Protocol-Version": "1",
		"X-Scope-Orgid":            "team-a",
		"Authorization":            "Bearer tok-123",
		"X-Extra":                  "yes",
		"X-Lower":                  "v",
	}
	for k, v := range wantHeaders {
		if got := r.header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("header %s: %q, want %q", k, got, v)
		}
	}
	if ms, err := strconv.Atoi(r.header.Get("Connect-Timeout-Ms")); err != nil || ms <= 0 || ms > 10000 {
		t.Errorf("Connect-Timeout-Ms %q; want the milliseconds left of the context's 10s", r.header.Get("Connect-Timeout-Ms"))
	}

	if len(r.push.series) != 1 {
		t.Fatalf("%d series, want 1", len(r.push.series))
	}
	series := r.push.series[0]
	wantLabels := [][2]string{{"__name__", "memory"}, {"env", "prod"}, {"region", "eu-west"}, {"service_name", "checkout"}}
	if !slices.Equal(series.labels, wantLabels) {
		t.Errorf("series labels %q, want %q", series.labels, wantLabels)
	}
	if len(series.samples) != 1 {
		t.Fatalf("%d raw samples, want 1", len(series.samples))
	}
	if id := series.samples[0].id; !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("sample ID %q, want a random UUID", id)
	}

	p := series.samples[0].profile
	var types []string
	for _, st := range p.SampleType {
		types = append(types, st.Type+"/"+st.Unit)
	}
	if want := []string{"alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"}; !slices.Equal(types, want) {
		t.Errorf("sample types %v, want %v", types, want)
	}
	if p.PeriodType == nil || p.PeriodType.Type != "space" || p.PeriodType.Unit != "bytes" || p.Period != 1 {
		t.Errorf("period %v %d, want space/bytes 1", p.PeriodType, p.Period)
	}
	if p.TimeNanos != at.UnixNano() || p.DurationNanos != int64(time.Minute) {
		t.Errorf("time %d duration %d; want the input's, %d and %d", p.TimeNanos, p.DurationNanos, at.UnixNano(), int64(time.Minute))
	}
	// The two age buckets of main.alloc merge into one sample.
	if len(p.Sample) != 2 {
		t.Fatalf("%d samples, want 2", len(p.Sample))
	}
	want := map[string][4]int64{"main.alloc@cgo": {4, 400, 3, 300}, "main.other@go": {5, 5000, 0, 0}}
	if got := siteValues(p); len(got) != 2 || got["main.alloc@cgo"] != want["main.alloc@cgo"] || got["main.other@go"] != want["main.other@go"] {
		t.Errorf("values %v, want %v", got, want)
	}
	for _, s := range p.Sample {
		if len(s.NumLabel) != 0 {
			t.Errorf("sample %s has numeric labels %v; want none", s.Location[0].Line[0].Function.Name, s.NumLabel)
		}
		var stack []string
		for _, l := range s.Location {
			stack = append(stack, l.Line[0].Function.Name)
		}
		if stack[1] != "main.main" || len(stack) != 2 {
			t.Errorf("stack %v, want [leaf main.main]", stack)
		}
		if s.Location[0].Line[0].Function.Name == "main.alloc" {
			if s.Label["tenant"][0] != "acme" || s.Label["heap"][0] != "cgo" || len(s.Label) != 2 {
				t.Errorf("labels %v, want heap=cgo tenant=acme", s.Label)
			}
		}
	}
}

// The URL's path is kept as a prefix of the route, with or without a
// trailing slash, and a user and password in it become basic auth.
func TestPushURL(t *testing.T) {
	cases := []struct {
		suffix string // to the server's URL
		cfg    pyroscope.Config
		path   string
		auth   string
	}{
		{"", pyroscope.Config{BasicAuthUser: "123456", BasicAuthPassword: "glc_secret"}, "/push.v1.PusherService/Push", "123456:glc_secret"},
		{"/pyroscope", pyroscope.Config{}, "/pyroscope/push.v1.PusherService/Push", ""},
		{"/a/b/", pyroscope.Config{}, "/a/b/push.v1.PusherService/Push", ""},
		{"/prefix", pyroscope.Config{URL: "userinfo"}, "/prefix/push.v1.PusherService/Push", "u1:p@ss"},
	}
	for _, tc := range cases {
		srv := newPushServer(t, nil)
		cfg := tc.cfg
		cfg.URL = srv.URL + tc.suffix
		if tc.cfg.URL == "userinfo" {
			cfg.URL = strings.Replace(srv.URL, "http://", "http://u1:p%40ss@", 1) + tc.suffix
		}
		cfg.ServiceName = "svc"
		exp, err := pyroscope.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s := exp.String(); strings.Contains(s, "p@ss") || strings.Contains(s, "p%40ss") || strings.Contains(s, "u1") || strings.Contains(s, "glc_secret") {
			t.Errorf("String() %q shows a credential", s)
		}
		if want := "pyroscope " + srv.URL + strings.TrimRight(tc.suffix, "/") + " service_name=svc"; exp.String() != want {
			t.Errorf("String() %q, want %q", exp.String(), want)
		}
		if err := exp.Export(context.Background(), heapProfile(t, time.Now(), 1, synthSample{stack: []frame{fn("f")}, age: -1, values: [4]int64{1, 1, 1, 1}})); err != nil {
			t.Fatal(err)
		}
		r := srv.requests()[0]
		if r.path != tc.path {
			t.Errorf("URL %s: path %s, want %s", cfg.URL, r.path, tc.path)
		}
		auth := ""
		if h := r.header.Get("Authorization"); h != "" {
			b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
			if err != nil {
				t.Errorf("Authorization %q: %v", h, err)
			}
			auth = string(b)
		}
		if auth != tc.auth {
			t.Errorf("URL %s: basic auth %q, want %q", tc.suffix, auth, tc.auth)
		}
	}
}
