package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/leakhunt/profiler"
)

var capturedStack string

func captureLeaf(int) {
	var pcs [64]uintptr
	n := runtime.Callers(2, pcs[:])
	capturedStack = fmt.Sprint(pcs[:n])
}

// TestPathsDistinct checks that the NumPaths generated call paths are
// NumPaths distinct stacks, and that the same id gives the same stack.
func TestPathsDistinct(t *testing.T) {
	seen := make(map[string]int, NumPaths)
	for id := range NumPaths {
		CallPath(id, 0, captureLeaf)
		if prev, ok := seen[capturedStack]; ok {
			t.Fatalf("paths %d and %d have the same stack", prev, id)
		}
		seen[capturedStack] = id
	}
	first := ""
	for range 2 {
		CallPath(1234, 0, captureLeaf)
		if first == "" {
			first = capturedStack
		} else if capturedStack != first {
			t.Fatal("path 1234 gave two different stacks")
		}
	}
}

func TestLatencyHistogram(t *testing.T) {
	var h latencyHistogram
	if h.quantile(0.99) != 0 {
		t.Fatal("empty histogram has a nonzero quantile")
	}
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := q * 10000 * float64(time.Microsecond)
		got := float64(h.quantile(q))
		if got < want*0.96 || got > want*1.04 {
			t.Errorf("quantile(%v) = %v, want %v ± 4%%", q, time.Duration(got), time.Duration(want))
		}
	}
	for v := uint64(0); v < 1<<20; v = v*5/4 + 1 {
		i := bucketOf(v)
		if lo, hi := lowerBound(i), lowerBound(i+1); v < lo || v >= hi {
			t.Fatalf("value %d in bucket %d = [%d, %d)", v, i, lo, hi)
		}
	}
}

// TestServe checks the workload's responses, with and without the hook,
// and that the hooked service frees everything it allocates: at rate 1
// every Alloc is recorded, so after Close no sample may stay live.
func TestServe(t *testing.T) {
	bodies, seq := Requests(64, 500, 2000)
	plain := NewService(false, 500, 16)
	var want [][]byte
	for _, body := range bodies {
		var out bytes.Buffer
		if err := plain.Serve(&out, body); err != nil {
			t.Fatal(err)
		}
		var resp OrderResponse
		if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		if len(resp.Lines) == 0 || resp.Total <= 0 {
			t.Fatalf("empty response %s", out.Bytes())
		}
		want = append(want, out.Bytes())
	}

	p := startProfiler(t, profiler.WithSamplingRate(1), goHeapOff())
	hooked := NewService(true, 500, 16)
	for _, i := range seq {
		var out bytes.Buffer
		if err := hooked.Serve(&out, bodies[i]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), want[i]) {
			t.Fatalf("request %d: hooked response\n%s\nwant\n%s", i, out.Bytes(), want[i])
		}
	}
	hits, misses, evicted := hooked.CacheStats()
	if hits == 0 || evicted == 0 {
		t.Errorf("cache hits=%d misses=%d evicted=%d: want both hits and evictions", hits, misses, evicted)
	}
	if live := p.Stats().LiveSamples; live != 16 {
		t.Errorf("live samples with a full 16-entry cache = %d, want 16", live)
	}
	hooked.Close()
	if live := p.Stats().LiveSamples; live != 0 {
		t.Errorf("live samples after Close = %d, want 0", live)
	}
}
