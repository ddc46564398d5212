package pyroscope_test

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/pyroscope"
)

const foldedFrame = "[smaller samples folded]"

// manySites returns n samples of distinct stacks, spread over heaps, each
// with its own values: site j holds j+1 objects of 100 bytes in use and
// has allocated 3(j+1) of them. name makes each leaf's function name.
func manySites(n int, heaps []string, name func(j int) string) []synthSample {
	var out []synthSample
	for j := range n {
		v := int64(j + 1)
		out = append(out, synthSample{
			stack:  []frame{fn(name(j)), fn("main.main")},
			heap:   heaps[j%len(heaps)],
			labels: map[string]string{"tenant": fmt.Sprint("t", j%3)},
			age:    int64(j % 2 * 60),
			values: [4]int64{3 * v, 300 * v, v, 100 * v},
		})
	}
	return out
}

// totalsByHeap returns the values of samples by heap label, summed.
func totalsByHeap(samples []*profile.Sample) map[string][4]int64 {
	out := map[string][4]int64{}
	for _, s := range samples {
		h := ""
		if v := s.Label["heap"]; len(v) > 0 {
			h = v[0]
		}
		t := out[h]
		for i := range t {
			t[i] += s.Value[i]
		}
		out[h] = t
	}
	return out
}

func synthTotals(samples []synthSample) map[string][4]int64 {
	out := map[string][4]int64{}
	for _, s := range samples {
		t := out[s.heap]
		for i := range t {
			t[i] += s.values[i]
		}
		out[s.heap] = t
	}
	return out
}

// leaves returns the leaf function names of a profile's samples, sorted.
func leaves(p *profile.Profile) []string {
	var out []string
	for _, s := range p.Sample {
		out = append(out, s.Location[0].Line[0].Function.Name)
	}
	slices.Sort(out)
	return out
}

// Past MaxSamples the largest samples are kept and the rest fold into one
// sample per heap, every total exact; it is logged once.
func TestFoldToMaxSamples(t *testing.T) {
	logger, logs := logBuffer()
	srv := newPushServer(t, nil)
	exp, err := pyroscope.New(pyroscope.Config{URL: srv.URL, ServiceName: "fold", MaxSamples: 16, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	name := func(j int) string { return fmt.Sprintf("main.site%02d", j) }
	samples := manySites(50, []string{"a", "b"}, name)
	for i := range 2 {
		// The second profile allocates as much again everywhere, so it
		// pushes the same values.
		in := slices.Clone(samples)
		for j := range in {
			in[j].values[0] *= int64(i + 1)
			in[j].values[1] *= int64(i + 1)
		}
		if err := exp.Export(context.Background(), heapProfile(t, time.Now(), uint64(1+i), in...)); err != nil {
			t.Fatal(err)
		}
	}

	for i, r := range srv.requests() {
		p := r.profile(t)
		if len(p.Sample) != 16 {
			t.Errorf("push %d: %d samples, want MaxSamples, 16", i+1, len(p.Sample))
		}
		// 14 kept, the largest, and one folded sample for each of two heaps.
		var want []string
		for j := 36; j < 50; j++ {
			want = append(want, name(j))
		}
		want = append(want, foldedFrame, foldedFrame)
		slices.Sort(want)
		if got := leaves(p); !slices.Equal(got, want) {
			t.Errorf("push %d: samples %v, want %v", i+1, got, want)
		}
		if got, want := totalsByHeap(p.Sample), synthTotals(samples); len(got) != 2 || got["a"] != want["a"] || got["b"] != want["b"] {
			t.Errorf("push %d: totals by heap %v, want %v", i+1, got, want)
		}
		for _, s := range p.Sample {
			if s.Location[0].Line[0].Function.Name != foldedFrame {
				continue
			}
			if len(s.Location) != 1 || len(s.Label) != 1 || len(s.Label["heap"]) != 1 {
				t.Errorf("push %d: folded sample has stack %d deep and labels %v; want one frame and the heap label", i+1, len(s.Location), s.Label)
			}
		}
	}
	lines := logs.lines("folded")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "sites=50 folded=36 samples_pushed=16 max_samples=16") {
		t.Errorf("want one WARN line with the numbers; the log:\n%s", logs)
	}
}

// With more heaps among the folded samples than room for one each, they
// fold into one sample with no heap label, the totals still exact.
func TestFoldManyHeaps(t *testing.T) {
	srv := newPushServer(t, nil)
	exp, err := pyroscope.New(pyroscope.Config{URL: srv.URL, ServiceName: "fold", MaxSamples: 16})
	if err != nil {
		t.Fatal(err)
	}
	var heaps []string
	for h := range 20 {
		heaps = append(heaps, fmt.Sprint("heap", h))
	}
	samples := manySites(40, heaps, func(j int) string { return fmt.Sprint("main.f", j) })
	if err := exp.Export(context.Background(), heapProfile(t, time.Now(), 1, samples...)); err != nil {
		t.Fatal(err)
	}
	p := srv.requests()[0].profile(t)
	if len(p.Sample) != 16 {
		t.Errorf("%d samples, want 16", len(p.Sample))
	}
	var got, want [4]int64
	for _, s := range p.Sample {
		for i := range got {
			got[i] += s.Value[i]
		}
	}
	for _, s := range samples {
		for i := range want {
			want[i] += s.values[i]
		}
	}
	if got != want {
		t.Errorf("totals %v, want %v", got, want)
	}
	if l := leaves(p); l[0] != foldedFrame || l[1] == foldedFrame {
		t.Errorf("samples %v; want one folded", l)
	}
}

// Past MaxProfileBytes fewer samples are kept until the profile fits,
// uncompressed, the totals exact.
func TestFoldToMaxProfileBytes(t *testing.T) {
	logger, logs := logBuffer()
	srv := newPushServer(t, nil)
	const maxBytes = 16 << 10
	exp, err := pyroscope.New(pyroscope.Config{URL: srv.URL, ServiceName: "bytes", MaxProfileBytes: maxBytes, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// 100 sites with function names of 500 bytes: about 50 KB.
	samples := manySites(100, []string{"a", "b", "c"}, func(j int) string {
		return fmt.Sprintf("main.site%03d.%s", j, strings.Repeat("x", 500))
	})
	if err := exp.Export(context.Background(), heapProfile(t, time.Now(), 1, samples...)); err != nil {
		t.Fatal(err)
	}
	r := srv.requests()[0]
	zr, err := gzip.NewReader(bytes.NewReader(r.push.series[0].samples[0].raw))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > maxBytes {
		t.Errorf("profile is %d bytes uncompressed; want at most %d", len(raw), maxBytes)
	}
	p := r.profile(t)
	if got, want := totalsByHeap(p.Sample), synthTotals(samples); len(got) != 3 || got["a"] != want["a"] || got["b"] != want["b"] || got["c"] != want["c"] {
		t.Errorf("totals by heap %v, want %v", got, want)
	}
	// The kept samples are the largest sites.
	var kept []*profile.Sample
	for _, s := range p.Sample {
		if s.Location[0].Line[0].Function.Name != foldedFrame {
			kept = append(kept, s)
		}
	}
	if len(kept) < 5 || len(kept) > 30 {
		t.Errorf("%d samples kept; want as many as fit in %d bytes, a few dozen", len(kept), maxBytes)
	}
	slices.SortFunc(kept, func(a, b *profile.Sample) int { return cmp.Compare(b.Value[3], a.Value[3]) })
	for i, s := range kept {
		if want := int64(100 * (100 - i)); s.Value[3] != want {
			t.Errorf("kept sample %d holds %d bytes; want the %d-th largest site's, %d", i, s.Value[3], i+1, want)
		}
	}
	if n := len(logs.lines("folded")); n != 1 {
		t.Errorf("folding logged %d times, want once:\n%s", n, logs)
	}
}
