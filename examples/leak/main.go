// Command leak runs a small program with two real leaks and normal churn
// beside them, profiles it with leakhunt, and prints how to open the
// profiles it wrote to ./heapprofiles.
//
//   - a plain Go leak, a global session map that only grows, found with no
//     hook call at all: the profiler reads the Go runtime's own heap;
//   - a leak of chunks carved out of a slab, memory the Go heap sees only as
//     one large block, reported through the hook on a Heap named "slab";
//   - churn: requests that take slab chunks and Go buffers and give them
//     back, which must not look like a leak.
package main

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/leakhunt/profiler"
)

func main() {
	p, err := profiler.Start(
		profiler.WithSamplingRate(64*1024),
		profiler.WithOutputDir("heapprofiles"),
		// The Go heap's in-use figures are those of the last GC; a short
		// demo wants them current.
		profiler.WithGCBeforeSnapshot(true),
	)
	if err != nil {
		log.Fatal(err)
	}

	slab := newSlab(64<<20, 4096)
	const requests = 20000
	for i := range requests {
		handle(i, slab)
	}

	path, err := p.Flush()
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		log.Fatal(err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("handled %d requests: %d sessions kept (Go heap leak), %d slab chunks leaked (%d MiB)\n",
		requests, len(sessions), slab.inUse(), slab.inUse()*slab.chunk>>20)
	fmt.Printf("\nheap profile: %s\n\nopen it with:\n", abs)
	for _, args := range []string{
		"-top",
		"-top -tagfocus=heap=go",
		"-top -tagfocus=heap=slab",
		"-top -sample_index=alloc_space",
		"-http=localhost:8080",
	} {
		fmt.Printf("  go tool pprof %s %s\n", args, abs)
	}
}

// lastResponse is Go heap churn: each request's buffer replaces the last,
// which the next GC frees. (Held in a variable that outlives the call, so
// the compiler cannot put it on the stack.)
var lastResponse []byte

// sessions is the Go heap leak: an entry per request, never deleted.
var sessions = map[int]*session{}

type session struct {
	id      int
	history [64]int64
}

// handle serves one request: it leaks a session and, one request in four,
// a slab chunk; the rest of its memory is released before it returns.
func handle(i int, slab *slab) {
	sessions[i] = &session{id: i}

	scratch := slab.get()
	lastResponse = make([]byte, 16<<10) // kept only until the next request
	lastResponse[0] = byte(i)
	slab.put(scratch)

	if i%4 == 0 {
		retainChunk(slab)
	}
}

var retained []int

// retainChunk takes a slab chunk and keeps it forever.
func retainChunk(slab *slab) { retained = append(retained, slab.get()) }

// slabHeap labels the slab's chunks in profiles: heap=slab.
var slabHeap = profiler.NewHeap("slab")

// slab hands out fixed-size chunks of one large block, the way an arena or
// a C allocator would. The Go heap sees a single allocation; the hook sees
// every chunk.
type slab struct {
	mem   []byte
	chunk int
	free  []int // offsets of free chunks
}

func newSlab(size, chunk int) *slab {
	s := &slab{mem: make([]byte, size), chunk: chunk}
	for off := size - chunk; off >= 0; off -= chunk {
		s.free = append(s.free, off)
	}
	return s
}

// get returns the offset of a free chunk and reports it to the hook; the
// offset is the key, unique while the chunk is in use.
func (s *slab) get() int {
	off := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	slabHeap.Alloc(uintptr(off), s.chunk)
	return off
}

func (s *slab) put(off int) {
	slabHeap.Free(uintptr(off))
	s.free = append(s.free, off)
}

func (s *slab) inUse() int { return len(s.mem)/s.chunk - len(s.free) }
