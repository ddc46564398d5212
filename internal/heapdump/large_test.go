package heapdump

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"
)

// largeCache holds the map of a test: were it a local, the compiler could
// put the map's header on the stack, where the dump does not see it.
var largeCache map[string]*node

type node struct {
	data []byte
	next *node
}

// marker fills the buffers of the heaps these tests build: if Analyze let
// any byte of contents through, the marker would show in its result.
const marker = "SECRET-7f3a9c-DO-NOT-LEAK"

func fill(b []byte) {
	for i := 0; i < len(b); i += copy(b[i:], marker) {
	}
}

func TestAnalyzeKeepsNoHeapContents(t *testing.T) {
	defer setMemProfileRate(1)()
	held := make(map[string]*node)
	var targets []uint64
	for i := range 1000 {
		n := &node{data: make([]byte, 100+i)}
		fill(n.data)
		held[marker+strconv.Itoa(i)] = n
		targets = append(targets, addrOf(&n.data[0]))
	}
	largeCache = held // a map header on the stack is not in the dump
	defer func() { largeCache = nil }()
	res := analyzeSelf(t, targets, Options{})
	for _, s := range res.Samples[len(res.Samples)-len(targets):] {
		if s.Chain == nil {
			t.Errorf("target %#x: no chain", s.Addr)
		}
	}
	if s := fmt.Sprintf("%#v", res); bytes.Contains([]byte(s), []byte(marker)) {
		t.Errorf("the result holds heap contents: %q found", marker)
	}
}

// TestLargeHeapCost reports what a dump of a heap of about 50 MB costs to
// write and to analyze, in the test process itself.
func TestLargeHeapCost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 50 MB heap")
	}
	// A cache as in the measurements of the format: a map of nodes that
	// each hold a buffer, in a chain.
	const entries = 200_000
	cache := make(map[string]*node, entries)
	largeCache = cache
	defer func() { largeCache = nil }()
	var prev *node
	for i := range entries {
		n := &node{data: make([]byte, 200), next: prev}
		cache["key-"+strconv.Itoa(i)] = n
		prev = n
	}
	runtime.GC()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapAlloc := ms.HeapAlloc
	f := dumpFile(t)
	start := time.Now()
	debug.WriteHeapDump(f.Fd())
	pause := time.Since(start)
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}

	peak := watchHeapInuse(t)
	runtime.ReadMemStats(&ms)
	before := ms
	start = time.Now()
	res, err := Analyze(f, nil, Options{})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	maxInuse := peak()
	runtime.KeepAlive(cache)

	reached := 0
	for _, s := range res.Samples {
		if s.Chain != nil {
			reached++
		}
	}
	t.Logf("heap %.1f MB, dump %.1f MB written in %v (world stopped)", mb(heapAlloc), mb(uint64(size)), pause)
	t.Logf("Analyze: %v (%.0f MB/s), %d objects, %d edges, %d samples (%d with a chain)",
		elapsed, mb(uint64(size))/elapsed.Seconds(), res.Objects, res.Edges, len(res.Samples), reached)
	t.Logf("Analyze memory: TotalAlloc +%.1f MB, HeapInuse %.1f -> %.1f MB, peak %.1f MB (+%.1f MB), %d GCs",
		mb(ms.TotalAlloc-before.TotalAlloc), mb(before.HeapInuse), mb(ms.HeapInuse), mb(maxInuse),
		mb(maxInuse-before.HeapInuse), ms.NumGC-before.NumGC)
	if res.Objects < entries*2 || res.Edges < entries*2 {
		t.Errorf("%d objects, %d edges, want at least %d of each", res.Objects, res.Edges, entries*2)
	}
}

func mb(b uint64) float64 { return float64(b) / 1e6 }

// watchHeapInuse samples the in-use heap spans' bytes (HeapInuse) until
// the returned function is called, which returns the largest figure seen.
// It reads runtime/metrics, which does not stop the world.
func watchHeapInuse(t *testing.T) (stop func() uint64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	read := func() uint64 {
		metrics.Read(samples)
		return samples[0].Value.Uint64() + samples[1].Value.Uint64()
	}
	quit := make(chan struct{})
	done := make(chan uint64)
	go func() {
		peak := read()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				done <- max(peak, read())
				return
			case <-tick.C:
				peak = max(peak, read())
			}
		}
	}()
	var stopped bool
	stop = func() uint64 {
		if stopped {
			t.Fatal("stop called twice")
		}
		stopped = true
		close(quit)
		return <-done
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return stop
}
