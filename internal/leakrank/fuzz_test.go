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
	for _, p := range leakranktest.LeakSeries(3) {
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
