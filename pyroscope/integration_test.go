package pyroscope_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/internal/pproftest"
	"github.com/leakhunt/profiler/pyroscope"
)

// integrationURLEnv names the server the integration test pushes to.
const integrationURLEnv = "LEAKHUNT_PYROSCOPE_URL"

//go:noinline
func allocBuffers(h *profiler.Heap, key uintptr, size int) { h.Alloc(key, size) }

//go:noinline
func allocRecords(h *profiler.Heap, key uintptr, size int) { h.Alloc(key, size) }

// integrationServer returns the URL of the Pyroscope server to test
// against, from the environment, and a service name of its own for the
// test, or skips the test when no server is named.
func integrationServer(t *testing.T, prefix string) (base, service string) {
	base = os.Getenv(integrationURLEnv)
	if base == "" {
		t.Skipf("set %s to a Pyroscope server's URL to run, e.g. %s=http://127.0.0.1:4040 go test -run Integration ./pyroscope/", integrationURLEnv, integrationURLEnv)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	return strings.TrimRight(base, "/"), prefix + hex.EncodeToString(suffix[:])
}

// Against a real Pyroscope server: three pushes of the real profiler's
// profiles, read back through the query API. Over the whole range the
// alloc_space adds up to every byte allocated, which holds only because
// each push carries the allocations since the one before; a range holding
// only the last push shows what was live then.
func TestIntegrationPyroscope(t *testing.T) {
	base, service := integrationServer(t, "leakhunt-it-")
	exp, err := pyroscope.New(pyroscope.Config{URL: base, ServiceName: service, Labels: map[string]string{"test": "integration"}})
	if err != nil {
		t.Fatal(err)
	}
	p := startProfiler(t)
	h := profiler.NewHeap("integration")

	const bufSize, recSize = 4096, 10000
	var times []time.Time
	push := func() {
		t.Helper()
		// Each push a few milliseconds after the last, so that a range
		// of one millisecond holds one push.
		if n := len(times); n > 0 {
			for time.Since(times[n-1]) < 10*time.Millisecond {
				time.Sleep(time.Millisecond)
			}
		}
		in := snapshot(t, p)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := exp.Export(ctx, in); err != nil {
			t.Fatalf("push %d: %v", len(times)+1, err)
		}
		times = append(times, in.Time)
	}

	for k := uintptr(1); k <= 20; k++ {
		allocBuffers(h, k, bufSize)
	}
	for k := uintptr(100); k < 110; k++ {
		allocRecords(h, k, recSize)
	}
	for k := uintptr(1); k <= 5; k++ {
		h.Free(k)
	}
	push()
	for k := uintptr(21); k <= 30; k++ {
		allocBuffers(h, k, bufSize)
	}
	for k := uintptr(100); k < 105; k++ {
		h.Free(k)
	}
	push()
	for k := uintptr(110); k < 115; k++ {
		allocRecords(h, k, recSize)
	}
	for k := uintptr(6); k <= 10; k++ {
		h.Free(k)
	}
	push()

	const (
		allocated     = 30*bufSize + 15*recSize // buffers 1-30, records 100-114
		allocatedObjs = 45
		live          = 20*bufSize + 10*recSize // buffers 11-30, records 105-114
		liveObjs      = 30
	)
	selector := fmt.Sprintf(`{service_name=%q}`, service)
	whole := [2]int64{times[0].UnixMilli() - 60_000, times[2].UnixMilli() + 60_000}
	last := [2]int64{times[2].UnixMilli(), times[2].UnixMilli() + 1}
	checks := []struct {
		typ      string
		selector string
		span     [2]int64
		want     int64
	}{
		{"memory:alloc_space:bytes:space:bytes", selector, whole, allocated},
		{"memory:alloc_objects:count:space:bytes", selector, whole, allocatedObjs},
		{"memory:alloc_space:bytes:space:bytes", fmt.Sprintf(`{service_name=%q,heap="integration",test="integration"}`, service), whole, allocated},
		{"memory:inuse_space:bytes:space:bytes", selector, last, live},
		{"memory:inuse_objects:count:space:bytes", selector, last, liveObjs},
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range checks {
		var got int64
		var err error
		for {
			got, err = selectMergeTotal(base, c.typ, c.selector, c.span)
			if err == nil && got == c.want || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("%s %s over [%d, %d] ms: %d", c.typ, c.selector, c.span[0], c.span[1], got)
		if err != nil {
			t.Errorf("%s %s: %v", c.typ, c.selector, err)
		} else if got != c.want {
			t.Errorf("%s %s over [%d, %d] ms: total %d, want %d", c.typ, c.selector, c.span[0], c.span[1], got, c.want)
		}
	}
}

// selectMergeTotal asks the server for the merged profile of a profile
// type, label selector and time range in milliseconds, through
// querier.v1.QuerierService/SelectMergeProfile, and returns the sum of its
// values: 0 if there is nothing yet.
func selectMergeTotal(base, profileType, selector string, span [2]int64) (int64, error) {
	p, err := selectMerge(base, profileType, selector, span)
	if p == nil || err != nil {
		return 0, err
	}
	var total int64
	for _, s := range p.Sample {
		for _, v := range s.Value {
			total += v
		}
	}
	return total, nil
}

// selectMerge returns the merged profile of a profile type, label selector
// and time range in milliseconds, nil if there is nothing yet.
func selectMerge(base, profileType, selector string, span [2]int64) (*profile.Profile, error) {
	// SelectMergeProfileRequest: profile_typeID = 1, label_selector = 2,
	// start = 3, end = 4 (int64, milliseconds).
	var req []byte
	req = appendProtoString(req, 1, profileType)
	req = appendProtoString(req, 2, selector)
	req = appendProtoVarint(req, 3, uint64(span[0]))
	req = appendProtoVarint(req, 4, uint64(span[1]))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/querier.v1.QuerierService/SelectMergeProfile", bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", "application/proto")
	r.Header.Set("Connect-Protocol-Version", "1")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("SelectMergeProfile: %s: %.300s", resp.Status, body)
	}
	if len(body) == 0 {
		return nil, nil // an empty Profile message: no data yet
	}
	p, err := profile.ParseData(body)
	if err != nil {
		return nil, fmt.Errorf("SelectMergeProfile: reading the profile: %v", err)
	}
	return p, nil
}

func appendProtoString(b []byte, field int, s string) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3|2))
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendProtoVarint(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3))
	return binary.AppendUvarint(b, v)
}

// Against a real Pyroscope server: a profile folded to fit MaxSamples is
// accepted with its totals, and a profile outside the ingestion window is
// rejected once, not retried, with the server's message.
func TestIntegrationPyroscopeLimits(t *testing.T) {
	base, service := integrationServer(t, "leakhunt-it-")
	logger, logs := logBuffer()
	exp, err := pyroscope.New(pyroscope.Config{URL: base, ServiceName: service, MaxSamples: 16, Logger: logger,
		Labels: map[string]string{"tenant": "static"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	old := heapProfile(t, time.Now().Add(-2*time.Hour), 1, synthSample{stack: []frame{fn("main.old")}, heap: "h", age: -1, values: [4]int64{1, 64, 1, 64}})
	err = exp.Export(ctx, old)
	t.Logf("a profile 2h old: %v", err)
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request: ") || !strings.Contains(err.Error(), "ingestion window") || strings.Contains(err.Error(), "attempts") {
		t.Errorf("a profile 2h old: error %v; want one 400 about the ingestion window", err)
	}

	at := time.Now()
	samples := manySites(50, []string{"a", "b"}, func(j int) string { return fmt.Sprintf("main.site%02d", j) })
	if err := exp.Export(ctx, heapProfile(t, at, 1, samples...)); err != nil {
		t.Fatal(err)
	}
	if len(logs.lines("folded")) != 1 || len(logs.lines("renamed")) != 1 {
		t.Errorf("want the folding and the rename of tenant logged:\n%s", logs)
	}
	totals := synthTotals(samples)
	span := [2]int64{at.UnixMilli() - 60_000, at.UnixMilli() + 60_000}
	checks := []struct {
		typ, selector string
		want          int64
	}{
		{"memory:alloc_space:bytes:space:bytes", fmt.Sprintf(`{service_name=%q,heap="a"}`, service), totals["a"][1]},
		{"memory:inuse_space:bytes:space:bytes", fmt.Sprintf(`{service_name=%q,heap="b"}`, service), totals["b"][3]},
		{"memory:inuse_objects:count:space:bytes", fmt.Sprintf(`{service_name=%q,tenant="static",sample_tenant="t1"}`, service), 0},
	}
	// Site j has j+1 objects in use and tenant t(j%3): sites 1, 4, ... 49
	// carry t1; of them the 14 largest (36 and up) are kept with their
	// labels, the rest folded without.
	for j := 37; j < 50; j += 3 {
		checks[2].want += int64(j + 1)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range checks {
		var got int64
		var err error
		for {
			got, err = selectMergeTotal(base, c.typ, c.selector, span)
			if err == nil && got == c.want || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("%s %s: %d", c.typ, c.selector, got)
		if err != nil {
			t.Errorf("%s %s: %v", c.typ, c.selector, err)
		} else if got != c.want {
			t.Errorf("%s %s: total %d, want %d", c.typ, c.selector, got, c.want)
		}
	}
}

// End to end against a real Pyroscope server: a program whose only change
// is the import of package auto, pointed at the server by environment
// variables, leaks; over the time range of its run, the server's
// alloc_space for the leaking function is every byte it allocated there.
// The objects are 64 KiB and the rate 1 KiB, so the runtime samples every
// one, with a weight of exactly 1. The runtime's own allocations made
// inside the leak's make, such as those of a GC cycle it starts, are
// charged to main.leak too, as runtime/pprof charges them (its heap
// profile leaves out the runtime's frames at the leaf): one run found 1081
// bytes of them. Less than one of the leak's buffers is allowed.
func TestIntegrationAuto(t *testing.T) {
	base, service := integrationServer(t, "leakhunt-auto-")
	bin := filepath.Join(t.TempDir(), "child")
	if out, err := exec.Command(pproftest.GoTool(), "build", "-o", bin, "../internal/envconfig/testdata/child").CombinedOutput(); err != nil {
		t.Fatalf("building the child: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "LEAKHUNT_PYROSCOPE_URL="+base, "LEAKHUNT_OUTPUT_DIR=", "LEAKHUNT_SERVICE_NAME="+service,
		"LEAKHUNT_SAMPLING_RATE=1024", "LEAKHUNT_FLUSH_INTERVAL=1s", "CHILD_LEAK_FOR=2500ms", "CHILD_END=stop")
	begin := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var leaked int64
	if _, err := fmt.Sscanf(string(out), "done %d", &leaked); err != nil || leaked == 0 {
		t.Fatalf("child said %q", out)
	}
	want := leaked * 64 << 10
	span := [2]int64{begin.UnixMilli() - 1000, time.Now().UnixMilli() + 1000}
	selector := fmt.Sprintf(`{service_name=%q}`, service)
	var got int64
	for deadline := time.Now().Add(30 * time.Second); ; {
		p, err := selectMerge(base, "memory:alloc_space:bytes:space:bytes", selector, span)
		if err != nil {
			t.Fatal(err)
		}
		got = 0
		for _, s := range sampleOrNone(p) {
			if s.Location[0].Line[0].Function.Name == "main.leak" {
				got += s.Value[0]
			}
		}
		if got >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("%s: main.leak allocated %d bytes over the run in Pyroscope; the child leaked %d objects, %d bytes", selector, got, leaked, want)
	if got < want || got >= want+64<<10 {
		t.Errorf("alloc_space of main.leak in Pyroscope %d, want %d and less than one buffer more", got, want)
	}
}

func sampleOrNone(p *profile.Profile) []*profile.Sample {
	if p == nil {
		return nil
	}
	return p.Sample
}
