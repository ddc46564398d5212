// Command leak profiles a small program with a real leak: a cache of
// C-style buffers reported through the hook that is never evicted, next to
// buffers that are allocated and freed. It writes heap profiles to
// ./heapprofiles and prints how to open them.
package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/leakhunt/profiler"
)

func main() {
	p, err := profiler.Start(
		profiler.WithSamplingRate(64*1024),
		profiler.WithOutputDir("heapprofiles"),
	)
	if err != nil {
		log.Fatal(err)
	}

	var leaked [][]byte
	const rounds = 20000
	for i := range rounds {
		leaked = append(leaked, leakyCacheEntry(i))
		churn(i)
	}

	path, err := p.Flush()
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		log.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	fmt.Printf("leaked %d buffers (%d MiB), churned %d\n", len(leaked), len(leaked)*4096>>20, rounds)
	fmt.Printf("heap profile: %s\n\n", abs)
	fmt.Printf("open it with:\n")
	fmt.Printf("  go tool pprof -top %s\n", abs)
	fmt.Printf("  go tool pprof -sample_index=alloc_space -top %s\n", abs)
	fmt.Printf("  go tool pprof -http=localhost:8080 %s\n", abs)
	_ = os.Stdout.Sync()
	_ = time.Now
}

// leakyCacheEntry allocates a buffer that is kept forever.
func leakyCacheEntry(i int) []byte {
	b := make([]byte, 4096)
	profiler.Alloc(uintptr(0x1000_0000+i), len(b))
	return b
}

// churn allocates a short-lived buffer and frees it at once.
func churn(i int) {
	b := make([]byte, 8192)
	key := uintptr(0x9000_0000 + i)
	profiler.Alloc(key, len(b))
	b[0] = 1
	profiler.Free(key)
}
