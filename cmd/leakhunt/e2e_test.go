package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// The three sites of the workload. Each is its own function so that it is
// the leaf frame of its samples: the hook's caller.

// growSite leaks: what it allocates is never freed.
func growSite(key uintptr) { profiler.Alloc(key, 4<<10) }

// flatSite loads a large cache once and holds it.
func flatSite(key uintptr) { profiler.Alloc(key, 256<<10) }

// churnSite allocates buffers that the next round frees.
func churnSite(heap *profiler.Heap, key uintptr) { heap.Alloc(key, 16<<10) }

// TestEndToEnd runs the real profiler on a leak workload, flushing a
// profile after every round, and ranks the directory it wrote: the small
// growing site must come first, above a cache over ten times its size at
// the end (a hundred times at the start) and above churn. The whole series
// is written within milliseconds, which the ranking must take in its
// stride.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	p, err := profiler.Start(
		profiler.WithSamplingRate(1), // every allocation: the test is exact
		profiler.WithGoHeap(false),
		profiler.WithOutputDir(dir),
		profiler.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })

	var last uintptr
	next := func() uintptr { last++; return last }
	pool := profiler.NewHeap("pool")
	rng := rand.New(rand.NewPCG(5, 6))

	for range 64 {
		flatSite(next()) // 16 MiB, more than ten times the leak at its end
	}
	var churn []uintptr
	const rounds = 12
	for range rounds {
		for range 25 {
			growSite(next()) // 100 KiB a round
		}
		for _, k := range churn {
			pool.Free(k)
		}
		churn = churn[:0]
		for range 20 + rng.IntN(40) { // 320 to 960 KiB in flight
			k := next()
			churnSite(pool, k)
			churn = append(churn, k)
		}
		if _, err := p.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Stop(); err != nil { // writes one more, final profile
		t.Fatal(err)
	}

	status, out, errOut := leakhunt(t, "rank", dir)
	if status != 0 {
		t.Fatalf("rank: status %d, stderr:\n%s", status, errOut)
	}
	t.Logf("leakhunt rank %s\n%s", dir, out)
	status, out, errOut = leakhunt(t, "rank", "-json", "-n", "3", dir)
	if status != 0 {
		t.Fatalf("rank -json: status %d, stderr:\n%s", status, errOut)
	}
	t.Logf("leakhunt rank -json -n 3 %s\n%s", dir, out)
	var sites []siteJSON
	if err := json.Unmarshal([]byte(out), &sites); err != nil {
		t.Fatal(err)
	}
	grow := sites[0]
	if !strings.HasSuffix(grow.Function, ".growSite") {
		t.Fatalf("first site is %s, want growSite; ranking:\n%s", grow.Function, out)
	}
	if grow.InUse != rounds*100<<10 || grow.Heap != "default" || grow.Score <= 0 || len(grow.History) != rounds+1 {
		t.Errorf("growing site: in use %d, heap %q, score %g, %d snapshots; want %d, default, > 0, %d",
			grow.InUse, grow.Heap, grow.Score, len(grow.History), rounds*100<<10, rounds+1)
	}
	if len(grow.Stack) < 2 || !strings.HasSuffix(grow.Stack[1], ".TestEndToEnd") {
		t.Errorf("growing site's stack %q, want growSite called from TestEndToEnd", grow.Stack)
	}

	// The names are pprof's own: `go tool pprof -top` on the last profile
	// prints the same leaf function, marked "(inline)" if it was inlined
	// into the test (as it is under -race).
	files, err := filepath.Glob(filepath.Join(dir, "heap-*.pb.gz"))
	if err != nil || len(files) != rounds+1 {
		t.Fatalf("%d profiles (%v), want %d", len(files), err, rounds+1)
	}
	if top := pproftest.Run(t, "-top", files[len(files)-1]); !strings.Contains(top, " "+grow.Function+"\n") && !strings.Contains(top, " "+grow.Function+" (inline)\n") {
		t.Errorf("pprof -top does not print %q:\n%s", grow.Function, top)
	}

	// diff of the first and last profiles, with a delta profile that pprof
	// opens and that shows the leak's growth and nothing of the flat cache.
	delta := filepath.Join(t.TempDir(), "delta.pb.gz")
	status, out, errOut = leakhunt(t, "diff", "-o", delta, files[0], files[len(files)-1])
	if status != 0 {
		t.Fatalf("diff: status %d, stderr:\n%s", status, errOut)
	}
	t.Logf("leakhunt diff -o %s FIRST LAST\n%s", delta, out)
	grew := out[strings.Index(out, "grew most:"):]
	if !hasRow(grew, "+1.07MiB", "100KiB", "1.17MiB", "default", grow.Function) {
		t.Errorf("diff does not show the leak's growth first:\n%s", out)
	}
	if _, err := os.Stat(delta); err != nil {
		t.Fatal(err)
	}
	top := pproftest.Run(t, "-top", delta)
	if !strings.Contains(top, grow.Function) || strings.Contains(top, "flatSite") {
		t.Errorf("pprof -top of the delta profile:\n%s", top)
	}
}
