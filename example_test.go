package profiler_test

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"runtime"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
)

// A program starts the profiler at the top of main and stops it on the
// way out; in between, profiles appear in the output directory.
func Example() {
	dir, err := os.MkdirTemp("", "heapprofiles")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	p, err := profiler.Start(profiler.WithOutputDir(dir))
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Stop(); err != nil { // writes a final profile
		log.Fatal(err)
	}
	fmt.Println("files written:", p.Stats().FilesWritten)
	// Output: files written: 1
}

// Memory the Go runtime does not see is reported through a Heap: each
// allocation under a key, each release by the same key.
func ExampleHeap() {
	dir, err := os.MkdirTemp("", "heapprofiles")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithGoHeap(false), profiler.WithOutputDir(dir))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Stop()

	mmap := profiler.NewHeap("mmap")
	mmap.Alloc(0x7f000000, 1<<20) // a 1 MiB region, keyed by its address
	mmap.Alloc(0x7f100000, 1<<20)
	mmap.Free(0x7f000000)

	var buf bytes.Buffer
	if err := p.WriteProfile(&buf); err != nil {
		log.Fatal(err)
	}
	prof, err := profile.Parse(&buf)
	if err != nil {
		log.Fatal(err)
	}
	var inuse, alloc int64
	for _, s := range prof.Sample {
		if s.Label["heap"][0] == "mmap" {
			alloc += s.Value[1] // alloc_space
			inuse += s.Value[3] // inuse_space, the default sample type
		}
	}
	fmt.Printf("mmap: in use %d bytes, allocated %d bytes\n", inuse, alloc)
	// Output: mmap: in use 1048576 bytes, allocated 2097152 bytes
}

// Go objects are reported with Track; a sampled one stays in the profiles
// until the garbage collector frees it.
func ExampleTrack() {
	type session struct {
		id    int
		cache [4096]byte
	}
	dir, err := os.MkdirTemp("", "heapprofiles")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithGoHeap(false), profiler.WithOutputDir(dir))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Stop()

	s := &session{id: 1}
	s.cache[0] = 1
	profiler.Track(s) // at rate 1 every object is sampled
	fmt.Println("live samples:", p.Stats().LiveSamples)
	runtime.KeepAlive(s)
	// Output: live samples: 1
}
