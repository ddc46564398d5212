// Command retainhandler holds a known leak in a global map and serves
// profiler.Handler on a loopback port, for handler_retainers_linux_test.go.
// It prints one line of JSON, the handler's URL and the bytes the leak
// holds, and serves until its standard input ends: a test that dies
// leaves no server behind.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/leakhunt/profiler"
)

// The leak's buffers are of a size class, so that each one's slot, which
// the profile reports, is exactly its requested size.
const (
	leakEntries = 32
	leakSize    = 8192
)

// leak is the global the profile must charge the buffers to.
var leak map[int][]byte

func main() {
	// First thing, so that every allocation after it is sampled and
	// weighs exactly one object of its size.
	p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithoutFiles(),
		profiler.WithMemoryPoll(0), profiler.WithLeakWarnings(false))
	if err != nil {
		fail(err)
	}
	fill()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /debug/pprof/leakhunt", profiler.Handler())
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	err = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"url":  "http://" + ln.Addr().String() + "/debug/pprof/leakhunt",
		"leak": leakEntries * leakSize,
	})
	if err != nil {
		fail(err)
	}
	io.Copy(io.Discard, os.Stdin)

	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		fail(err)
	}
	if err := p.Stop(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "retainhandler:", err)
	os.Exit(1)
}

// fill makes the leak. It is not inlined, so that no frame of main's
// holds a buffer the map holds too.
//
//go:noinline
func fill() {
	leak = make(map[int][]byte)
	for i := range leakEntries {
		leak[i] = leakBuffer()
	}
}

//go:noinline
func leakBuffer() []byte { return make([]byte, leakSize) }
