// Command retainleak leaks Go memory while the profiler writes a heap
// profile into the directory named by its argument after each round, then
// writes a retainers profile beside them, under the name the profiler
// would give one, and stops the profiler, which writes a last heap
// profile: the input of TestEndToEndRetainers. Every allocation is
// sampled, so the retainers profile's figures are exact.
//
// The leak is sessions from newSession, which is small enough to be
// inlined into main: the heap profile names it, the retainers profile
// names main at newSession's line, and rank must see one site. Of each
// round's sessions, three quarters go into a global map and a quarter to
// a goroutine, keeper, that holds them in a slice in its frame.
package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/leakhunt/profiler"
)

const (
	rounds    = 8
	perRound  = 20 // sessions
	toKeeper  = 5  // of them
	sessionSz = 256
)

// session is a size class, so that its slot, which the retainers profile
// weighs, is its size.
type session [sessionSz]byte

var registry = make(map[int]*session)

func newSession() *session { return new(session) }

// keeper holds the sessions it is given until the program exits, and
// acknowledges each batch. It is not inlined into the go statement's
// wrapper, so that the root that holds them is named by it.
//
//go:noinline
func keeper(batches <-chan []*session, ack chan<- struct{}) {
	var kept []*session
	for b := range batches {
		kept = append(kept, b...)
		ack <- struct{}{}
	}
	_ = kept
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: retainleak DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	p, err := profiler.Start(
		profiler.WithSamplingRate(1),
		profiler.WithOutputDir(dir),
		profiler.WithMemoryPoll(0),
		profiler.WithLeakWarnings(false),
		profiler.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		fail(err)
	}
	batches, ack := make(chan []*session), make(chan struct{})
	go keeper(batches, ack)
	for r := range rounds {
		var batch []*session
		for i := range perRound {
			s := newSession()
			if i < toKeeper {
				batch = append(batch, s)
			} else {
				registry[r*perRound+i] = s
			}
		}
		batches <- batch
		<-ack
		if _, err := p.Flush(); err != nil {
			fail(err)
		}
	}

	waitParked("main.keeper")
	var buf bytes.Buffer
	if err := p.WriteRetainers(&buf); err != nil {
		fail(err)
	}
	name := "retainers-" + time.Now().UTC().Format("20060102T150405.000000000") + fmt.Sprintf("Z-%d.pb.gz", os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o600); err != nil {
		fail(err)
	}
	if err := p.Stop(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "retainleak:", err)
	os.Exit(1)
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
