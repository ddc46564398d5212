package leakrank

import (
	"bytes"
	"compress/gzip"
	"testing"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// FuzzLoad feeds arbitrary bytes through everything the CLI does with a
// file: parse, reduce to a snapshot, rank, diff and subtract. None of it
// may panic; errors are fine.
func FuzzLoad(f *testing.F) {
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
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProfile("fuzz.pb.gz", data)
		if err != nil {
			return
		}
		s, err := NewSnapshot("fuzz.pb.gz", p)
		if err != nil {
			return
		}
		// The same profile a minute later, as a second snapshot.
		later := *s
		later.Time = s.Time.Add(time.Minute)
		if !s.GoHeapTime.IsZero() {
			later.GoHeapTime = s.GoHeapTime.Add(time.Minute)
		}
		if _, err := Rank([]*Snapshot{s, &later}, Options{}); err != nil {
			t.Errorf("ranking two good snapshots: %v", err)
		}
		Diff(s, &later)
		again, err := ParseProfile("fuzz.pb.gz", data)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		DeltaProfile(p, again)
	})
}
