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
//
// The slab itself is the largest thing in the heap, allocated once and
// flat: big, but no leak. One profile puts it first; the difference
// between the profile written before the first request and the last one
// cancels it out and leaves the leaks, which is what the first command
// printed shows.
package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/leakhunt/profiler"
)

const (
	rounds           = 5    // of requests, with a profile after each
	requestsPerRound = 4000 // a quarter of them leak a slab chunk
)

func main() {
	if err := run("heapprofiles", os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run profiles the workload, writing profiles to dir, and prints to w what
// it did and the commands that open the profiles.
func run(dir string, w io.Writer) error {
	p, err := profiler.Start(
		profiler.WithSamplingRate(64*1024),
		profiler.WithOutputDir(dir),
		// The Go heap's in-use figures are those of the last GC; a short
		// demo wants them current.
		profiler.WithGCBeforeSnapshot(true),
	)
	if err != nil {
		return err
	}
	defer p.Stop() // on early returns; the normal path stops it below

	slab := newSlab(64<<20, 4096)
	first, err := p.Flush() // the baseline: the slab, no request yet
	if err != nil {
		return err
	}
	for r := range rounds {
		for i := range requestsPerRound {
			handle(r*requestsPerRound+i, slab)
		}
		if r < rounds-1 { // after the last round, Stop writes the profile
			if _, err := p.Flush(); err != nil {
				return err
			}
		}
	}
	if err := p.Stop(); err != nil { // writes the final profile
		return err
	}
	// Reachable until Stop's profile is taken, so that the slab is in the
	// last profile as it is in the first.
	runtime.KeepAlive(slab)

	// The final profile is the newest of this run: names start with the
	// UTC time and end with the process id.
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, fmt.Sprintf("heap-*-%d.pb.gz", os.Getpid())))
	if err != nil {
		return err
	}
	if len(files) < 2 {
		return fmt.Errorf("%d profiles of this run in %s, want at least 2", len(files), dir)
	}
	slices.Sort(files)
	if first, err = filepath.Abs(first); err != nil {
		return err
	}
	firstQ, last := quote(first), quote(files[len(files)-1])

	fmt.Fprintf(w, "handled %d requests: %d sessions kept (Go heap leak), %d slab chunks leaked (%d MiB)\n",
		rounds*requestsPerRound, len(sessions), slab.inUse(), slab.inUse()*slab.chunk>>20)
	fmt.Fprintf(w, "\n%d heap profiles in %s, the first before any request, the last written by Stop\n", len(files), dir)
	fmt.Fprintf(w, "\nwhat grew from the first to the last: the two leaks (the %d MiB slab is flat and cancels out)\n", len(slab.mem)>>20)
	fmt.Fprintf(w, "  go tool pprof -top -diff_base %s %s\n", firstQ, last)
	fmt.Fprintf(w, "\nthe last profile: the slab chunks leaked through the hook, all memory in use, the flame graph\n")
	for _, args := range []string{"-top -tagfocus=heap=slab", "-top", "-http=localhost:8080"} {
		fmt.Fprintf(w, "  go tool pprof %s %s\n", args, last)
	}
	fmt.Fprintf(w, "\nthe sites ranked by steady growth over the series (install leakhunt with go install ./cmd/leakhunt)\n")
	fmt.Fprintf(w, "  leakhunt rank %s\n", quote(dir))
	return nil
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
	s := &session{id: i}
	s.history[0] = int64(i)
	sessions[i] = s

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

// quote quotes a path for a POSIX shell if it needs it.
func quote(s string) string {
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
