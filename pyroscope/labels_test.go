package pyroscope_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/pyroscope"
)

// A sample label named like a series label is pushed as sample_<name>,
// since Pyroscope would replace it with the series label's value; the
// rename is logged once per name.
func TestSampleLabelRenamed(t *testing.T) {
	logger, logs := logBuffer()
	srv := newPushServer(t, nil)
	exp, err := pyroscope.New(pyroscope.Config{
		URL:         srv.URL,
		ServiceName: "svc",
		Labels:      map[string]string{"tenant": "static", "sample_env": "x", "env": "prod"},
		Logger:      logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	stack := []frame{fn("main.serve")}
	for i := range 2 {
		in := heapProfile(t, time.Now(), uint64(1+i), synthSample{stack: stack, heap: "h", age: -1,
			labels: map[string]string{"tenant": "acme", "env": "dev", "service_name": "other", "endpoint": "/upload"},
			values: [4]int64{int64(i + 1), 100 * int64(i+1), 1, 100}})
		if err := exp.Export(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}

	for i, r := range srv.requests() {
		p := r.profile(t)
		if len(p.Sample) != 1 {
			t.Fatalf("push %d: %d samples, want 1", i+1, len(p.Sample))
		}
		want := map[string]string{
			"heap":                "h",
			"endpoint":            "/upload",
			"sample_tenant":       "acme",
			"sample_sample_env":   "dev", // sample_env is a series label too
			"sample_service_name": "other",
		}
		got := p.Sample[0].Label
		if len(got) != len(want) {
			t.Errorf("push %d: labels %v, want %v", i+1, got, want)
		}
		for k, v := range want {
			if !slices.Equal(got[k], []string{v}) {
				t.Errorf("push %d: label %s = %q, want %q", i+1, k, got[k], v)
			}
		}
		if s := r.push.series[0]; s.label("tenant") != "static" || s.label("env") != "prod" || s.label("sample_env") != "x" {
			t.Errorf("push %d: series labels %v; want the static ones as configured", i+1, s.labels)
		}
	}

	for _, name := range []string{"tenant", "env", "service_name"} {
		if n := len(logs.lines("label=" + name + " ")); n != 1 {
			t.Errorf("the rename of %s logged %d times, want once:\n%s", name, n, logs)
		}
	}
	if lines := logs.lines("renamed"); len(lines) != 3 || !strings.Contains(lines[0], "level=WARN") {
		t.Errorf("want three WARN lines about renames:\n%s", logs)
	}
}
