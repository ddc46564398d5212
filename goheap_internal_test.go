package profiler

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

var rawVsParsedLeak [][]byte

//go:noinline
func rawVsParsedSite(n int) {
	for range n {
		rawVsParsedLeak = append(rawVsParsedLeak, make([]byte, 3000))
	}
}

// The raw-records path for the Go heap writes what the runtime/pprof path
// writes for the same state: the same stacks with the same scaled values.
// (In this package the test's own allocations count as the profiler's and
// share its synthetic frame; the comparison covers every Go heap sample.)
func TestGoHeapRawMatchesParsed(t *testing.T) {
	p, err := Start(WithSamplingRate(4096), WithOutputDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(); rawVsParsedLeak = nil })
	rawVsParsedLeak = make([][]byte, 0, 5000)
	rawVsParsedSite(5000)

	var before, after runtime.MemStats
	raw, err := readGoHeap(true)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&before)
	parsed, err := readParsedGoHeap()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if raw.parsed != nil {
		t.Skip("a Go heap stack of this test binary fills 32 frames; the raw path is not taken")
	}
	if before.NumGC != after.NumGC {
		t.Skip("a GC ran between the two reads; they describe different cycles")
	}

	// read returns the Go heap's alloc_space and inuse_space by stack.
	read := func(h *goHeapSnapshot) map[string][2]int64 {
		data, err := p.enc.encode(p, time.Now(), h)
		if err != nil {
			t.Fatal(err)
		}
		prof, err := profile.ParseData(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := prof.CheckValid(); err != nil {
			t.Fatal(err)
		}
		out := map[string][2]int64{}
		for _, s := range prof.Sample {
			if s.Label["heap"][0] != goHeapName {
				continue
			}
			var names []string
			for _, l := range s.Location {
				for _, line := range l.Line {
					names = append(names, line.Function.Name)
				}
			}
			k := strings.Join(names, " < ")
			v := out[k]
			out[k] = [2]int64{v[0] + s.Value[1], v[1] + s.Value[3]}
		}
		return out
	}
	a, b := read(raw), read(&goHeapSnapshot{parsed: parsed})
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("raw path has %d stacks, parsed path %d", len(a), len(b))
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			t.Errorf("stack only in the raw path: %s", k)
			continue
		}
		// Only the rounding of the scaled values may differ.
		if d0, d1 := va[0]-vb[0], va[1]-vb[1]; d0*d0 > 4 || d1*d1 > 4 {
			t.Errorf("%s: alloc/inuse bytes %v raw, %v parsed", k, va, vb)
		}
	}
	// 5000 objects of 3072 bytes at rate 4096 are sampled with
	// p = 1-exp(-0.75) ≈ 0.53, about 2640 samples: a relative standard
	// deviation of sqrt((1-p)/(n·p)) ≈ 1.3%, so 7% below the truth is
	// beyond five of them (the profiler's own memory only adds).
	if own := a[ownFrame]; float64(own[1]) < 0.93*5000*3072 {
		t.Errorf("the Go heap holds %d bytes under %s, want about the 15360000 this test keeps", own[1], ownFrame)
	}
}
