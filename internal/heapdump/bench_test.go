package heapdump

import (
	"bufio"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"testing"
)

// BenchmarkAnalyze analyzes a dump of a heap with a 50 MB cache. Its
// baseline, BenchmarkAnalyze/read, only reads the same dump through the
// same buffer: what no parser of a stream can avoid.
func BenchmarkAnalyze(b *testing.B) {
	const entries = 200_000
	cache := make(map[string]*node, entries)
	for i := range entries {
		cache["key-"+strconv.Itoa(i)] = &node{data: make([]byte, 200)}
	}
	largeCache = cache
	defer func() { largeCache = nil }()
	f, err := os.CreateTemp(b.TempDir(), "heapdump")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	debug.WriteHeapDump(f.Fd())
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		b.Fatal(err)
	}
	largeCache = nil
	rewind := func(b *testing.B) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("read", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			rewind(b)
			if _, err := io.Copy(io.Discard, bufio.NewReaderSize(f, 1<<16)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("analyze", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			rewind(b)
			res, err := Analyze(f, nil, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(res.Objects), "objects")
			b.ReportMetric(float64(res.Edges), "edges")
		}
	})
}
