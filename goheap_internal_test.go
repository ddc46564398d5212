package profiler

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

var decodeLeak [][]byte

//go:noinline
func decodeSite(n int) {
	for range n {
		decodeLeak = append(decodeLeak, make([]byte, 3000))
	}
}

// The encoder decodes the runtime's heap profile in place into its own
// tables. What it writes must be what the pprof parser reads from the same
// bytes: every stack with the same values and size label, the profiler's
// own stacks under its one synthetic frame. The decoding is run twice, the
// second time against tables that already hold every location.
func TestGoHeapDecodeMatchesParse(t *testing.T) {
	p, err := Start(WithSamplingRate(4096), WithOutputDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(); decodeLeak = nil })
	decodeLeak = make([][]byte, 0, 5000)
	decodeSite(5000)

	var r goHeapReader
	h, err := r.read(true, 0)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := profile.ParseUncompressed(h.data)
	if err != nil {
		t.Fatal(err)
	}
	want := goSamplesByStack(t, ref, false)

	e := newEncoder(processSymbols.lookup, processMappings())
	for round := range 2 {
		var snap tableSnapshot
		p.table.snapshot(&snap, time.Now())
		data, err := e.encode(&snap, h)
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
		got := goSamplesByStack(t, prof, true)
		if len(got) == 0 || len(got) != len(want) {
			t.Fatalf("round %d: %d Go heap stacks written, the runtime's profile has %d", round, len(got), len(want))
		}
		for k, w := range want {
			if g := got[k]; g != w {
				t.Errorf("round %d: %s: values %v, the runtime's profile has %v", round, k, g, w)
			}
		}
		// 5000 objects of 3072 bytes at rate 4096 are sampled with
		// p = 1-exp(-0.75) ≈ 0.53, about 2640 samples, of which five
		// standard deviations (sqrt(n·p·(1-p)) ≈ 35) lie above 2460.
		var samples, live int64
		for _, c := range prof.Comments {
			if n, _ := fmt.Sscanf(c, "samples=%d live=%d ", &samples, &live); n == 2 {
				break
			}
		}
		if live < 2460 || samples < live {
			t.Errorf("round %d: comments %q, want at least 2460 live samples (this test keeps 5000 objects of 3 KiB)", round, prof.Comments)
		}
	}
}

// goSamplesByStack sums the values of the Go heap's samples of prof by
// stack (function names, leaf first) and size label, leaving out samples
// whose values are all zero. Unless written, a
// stack through this module's code is keyed as the profiler's own frame,
// which is what the writer makes of it.
func goSamplesByStack(t *testing.T, prof *profile.Profile, written bool) map[string][4]int64 {
	t.Helper()
	out := map[string][4]int64{}
	for _, s := range prof.Sample {
		if written && s.Label["heap"][0] != goHeapName {
			continue
		}
		if slices.Equal(s.Value, make([]int64, len(s.Value))) {
			continue // a record with nothing in it, which the writer leaves out
		}
		var names []string
		own := false
		for _, l := range s.Location {
			for _, line := range l.Line {
				names = append(names, line.Function.Name)
				own = own || strings.HasPrefix(line.Function.Name, "github.com/leakhunt/profiler.")
			}
		}
		k := strings.Join(names, " < ")
		if own && !written {
			k = ownFrame
		}
		if b := s.NumLabel["bytes"]; len(b) == 1 {
			k += fmt.Sprintf(" @%d B", b[0])
		}
		v := out[k]
		for i := range v {
			v[i] += s.Value[i]
		}
		out[k] = v
	}
	return out
}

// A read with no GC cycle completed since the last one, a second or more
// before, runs a GC first, so that figures that only a GC publishes do not
// stay frozen; one right after the last, or after a cycle of the
// program's own, does not.
func TestGoHeapReadRefreshesStaleFigures(t *testing.T) {
	// No GC of the runtime's own between the reads but the test's.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var r goHeapReader
	if _, err := r.read(false, 0); err != nil {
		t.Fatal(err)
	}
	prof, err := r.read(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if prof.gcForced {
		t.Error("a read right after the last one ran a GC")
	}
	r.last = r.last.Add(-staleAfter) // as if a second had passed
	prof, err = r.read(false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !prof.gcForced {
		t.Error("a read with no GC since the last one did not run one")
	}
	runtime.GC()
	if prof, err = r.read(false, 0); err != nil {
		t.Fatal(err)
	}
	if prof.gcForced {
		t.Error("a read after the program's own GC ran another")
	}
}
