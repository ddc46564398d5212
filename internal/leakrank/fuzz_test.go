package leakrank

import (
	"bytes"
	"compress/gzip"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// FuzzLoad feeds arbitrary bytes through everything the CLI does with a
// file: parse, reduce to a snapshot, rank, diff and subtract. None of it
// may panic; errors are fine. No in-use figure may be negative, and a
// delta profile is never a snapshot. The size limit is low, so that an
// input that decompresses to much is cheap to reject.
func FuzzLoad(f *testing.F) {
	opts := ReadOptions{MaxSize: 1 << 20}
	series := leakranktest.LeakSeries(3)
	// Go heap figures as of a GC before the profile, one that does not
	// parse, and two that disagree.
	series[0].Comments = []string{GoHeapTimeComment(series[0].Time.Add(-time.Second))}
	series[1].Comments = []string{"go heap figures as of 2026-13-45T99:00:00Z (the last GC)"}
	series[2].Comments = []string{GoHeapTimeComment(series[2].Time), GoHeapTimeComment(series[0].Time)}
	for _, p := range series {
		data := p.Encode(f)
		f.Add(data)
		raw, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(raw)
		f.Add(buf.Bytes()) // pprof reads uncompressed profiles too
	}
	f.Add([]byte{})
	f.Add([]byte("heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [3: 4] @ 0x1 0x2\n"))
	f.Add([]byte{0x1f, 0x8b})

	// Sizes that add up beyond an int64, at one site and in all.
	huge := leakranktest.Profile{Time: leakranktest.Start, Samples: []leakranktest.Sample{
		{Heap: "h", Stack: []string{"f"}, InUse: math.MaxInt64, Age: 60},
		{Heap: "h", Stack: []string{"f"}, InUse: math.MaxInt64, Age: 60},
		{Heap: "h", Stack: []string{"g"}, InUse: math.MaxInt64, Age: -1},
	}}
	f.Add(huge.Encode(f))
	// A delta profile in which everything grew, which only its comment
	// tells from a snapshot.
	grown := series[2]
	for i := range grown.Samples {
		grown.Samples[i].InUse *= 2
	}
	d, err := DeltaProfile(series[2].Build(), grown.Build(), "before.pb.gz", "after.pb.gz")
	if err != nil {
		f.Fatal(err)
	}
	var delta bytes.Buffer
	if err := d.Write(&delta); err != nil {
		f.Fatal(err)
	}
	f.Add(delta.Bytes())
	// A profile gzipped twice, and a gzip bomb over the limit.
	var twice bytes.Buffer
	zw := gzip.NewWriter(&twice)
	zw.Write(series[0].Encode(f))
	zw.Close()
	f.Add(twice.Bytes())
	f.Add(leakranktest.GzipBomb(f, 2<<20))

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile("fuzz.pb.gz", data, opts)
		if err != nil {
			return
		}
		s, err := NewSnapshot("fuzz.pb.gz", p)
		if err != nil {
			return
		}
		if s.InUse < 0 {
			t.Errorf("negative total in use: %d", s.InUse)
		}
		for _, u := range s.Sites {
			if u.InUse <= 0 {
				t.Errorf("site %v holds %d bytes", u.Site, u.InUse)
			}
		}
		// The same profile a minute later, as a second snapshot.
		later := *s
		later.Time = s.Time.Add(time.Minute)
		if !s.GoHeapTime.IsZero() {
			later.GoHeapTime = s.GoHeapTime.Add(time.Minute)
		}
		r, err := Rank([]*Snapshot{s, &later}, Options{})
		if err != nil {
			t.Errorf("ranking two good snapshots: %v", err)
		} else {
			for _, sr := range r.Sites {
				if slices.Min(sr.History) < 0 || sr.Share < 0 || sr.OldShare < 0 || sr.OldShare > 1 {
					t.Errorf("site %v: history %v, share %g, old share %g", sr.Site, sr.History, sr.Share, sr.OldShare)
				}
			}
		}
		for _, c := range Diff(s, &later) {
			if c.Old < 0 || c.New < 0 {
				t.Errorf("change %+v", c)
			}
		}
		again, err := ParseProfile("fuzz.pb.gz", data, opts)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		d, err := DeltaProfile(p, again, "before.pb.gz", "after.pb.gz")
		if err != nil {
			return
		}
		if _, err := NewSnapshot("delta.pb.gz", d); err == nil {
			t.Errorf("a delta profile taken for a snapshot")
		}
	})
}
