// Command retainchild holds memory in known shapes, takes a retainers
// profile of itself into the file named by its argument, and prints, as
// JSON, how many bytes it holds in each shape, for retainers_linux_test.go.
// Every buffer is filled with the string in RETAINCHILD_MARKER, which must
// appear in no output.
//
// The shapes, each buffer allocated by a function of its own so that the
// profile's leaf frames tell them apart:
//
//	registry: a global map of pointers to structs holding buffers
//	worker:   a buffer held by a parked goroutine's frame
//	iface:    a buffer held through an interface value in a global
//	server:   a buffer held by a struct that a global struct's field points to
//	cycle:    two objects pointing to each other and to nothing else: garbage
//	sessions: a global map of objects reported with profiler.TrackIn, in a
//	          heap of their own, each standing for more than its type's size
//
// Two more tracked objects are left out of the profile: a package-level
// variable, counted as outside the heap, and an object dropped and
// collected before the profile, not counted at all.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/leakhunt/profiler"
)

// Buffer sizes are size classes, so that an object's slot, which the
// profile reports, is exactly its requested size.
const (
	registryEntries = 64
	registrySize    = 4096
	workerSize      = 8192
	ifaceSize       = 4096
	serverSize      = 16384
	sessionEntries  = 64
	sessionSize     = 10000 // the footprint each session is tracked with
)

type entry struct {
	id  int
	buf []byte
}

type thing struct{ buf []byte }

type cache struct {
	hits int
	data []byte
}

type session struct {
	id    int
	state [48]byte
}

type node struct {
	next *node
	pad  [56]byte
}

var (
	registry map[string]*entry
	iface    any
	server   struct {
		name  string
		cache *cache
	}
	sessions map[string]*session
	single   session
)

func main() {
	runtime.MemProfileRate = 1 // every allocation from here on is sampled
	marker := os.Getenv("RETAINCHILD_MARKER")
	if len(os.Args) != 2 || marker == "" {
		fmt.Fprintln(os.Stderr, "usage: RETAINCHILD_MARKER=x retainchild out.pb.gz")
		os.Exit(2)
	}

	// Started first, so that the objects reported with Track are recorded.
	p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithoutFiles(), profiler.WithMemoryPoll(0), profiler.WithLeakWarnings(false))
	if err != nil {
		fail(err)
	}
	heap := profiler.NewHeap("sessions")
	sessions = make(map[string]*session)
	for i := range sessionEntries {
		sessions["s"+strconv.Itoa(i)] = newSession(heap, i)
	}
	newSession(heap, -1) // dropped: collected by the GC below
	profiler.Track(&single)

	registry = make(map[string]*entry)
	for i := range registryEntries {
		registry["k"+strconv.Itoa(i)] = &entry{id: i, buf: registryBuffer(marker)}
	}
	iface = &thing{buf: ifaceBuffer(marker)}
	server.name = "s"
	server.cache = &cache{data: serverBuffer(marker)}
	parked, started := make(chan int), make(chan struct{})
	go worker(parked, started, marker)
	<-started
	waitParked("main.worker")

	// What is live now is marked live; the cycle made after this
	// collection, with collections off, stays in the heap as garbage.
	runtime.GC()
	debug.SetGCPercent(-1)
	makeCycle()

	f, err := os.Create(os.Args[1])
	if err != nil {
		fail(err)
	}
	if err := p.WriteRetainers(f); err != nil {
		fail(err)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	if err := p.Stop(); err != nil {
		fail(err)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]int{
		"registry": registryEntries * registrySize,
		"worker":   workerSize,
		"iface":    ifaceSize,
		"server":   serverSize,
		"sessions": sessionEntries * sessionSize,
	})
	// Held until here, as a program holds them while it runs.
	runtime.KeepAlive(parked)
	runtime.KeepAlive(iface)
	runtime.KeepAlive(server.cache.hits)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "retainchild:", err)
	os.Exit(1)
}

// worker holds its buffer in its frame while it waits. It is not inlined,
// so that the frame is its own.
//
//go:noinline
func worker(parked chan int, started chan struct{}, marker string) {
	buf := workerBuffer(marker)
	close(started)
	<-parked
	runtime.KeepAlive(buf)
}

// newSession returns a session reported to heap with a footprint of
// sessionSize bytes.
//
//go:noinline
func newSession(heap *profiler.Heap, id int) *session {
	s := &session{id: id}
	profiler.TrackIn(context.Background(), heap, s, sessionSize)
	return s
}

// makeCycle makes two nodes that point to each other and drops them.
//
//go:noinline
func makeCycle() {
	a, b := cycleNode(), cycleNode()
	a.next, b.next = b, a
	a.pad[0], b.pad[0] = 1, 2
}

//go:noinline
func cycleNode() *node { return new(node) }

//go:noinline
func registryBuffer(marker string) []byte { return filled(make([]byte, registrySize), marker) }

//go:noinline
func workerBuffer(marker string) []byte { return filled(make([]byte, workerSize), marker) }

//go:noinline
func ifaceBuffer(marker string) []byte { return filled(make([]byte, ifaceSize), marker) }

//go:noinline
func serverBuffer(marker string) []byte { return filled(make([]byte, serverSize), marker) }

// filled fills buf with copies of marker, as a program fills its buffers
// with what it holds.
func filled(buf []byte, marker string) []byte {
	for i := 0; i < len(buf); i += copy(buf[i:], marker) {
	}
	return buf
}

// waitParked waits until a goroutine in function fn is parked on a channel
// receive: one just woken from another wait would be dumped with that
// wait's reason.
func waitParked(fn string) {
	buf := make([]byte, 1<<20)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(time.Millisecond) {
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.HasPrefix(g, "goroutine ") && strings.Contains(g, "[chan receive") && strings.Contains(g, fn+"(") {
				return
			}
		}
	}
	fail(fmt.Errorf("%s is not parked on a channel receive after 10s", fn))
}
