// Command child is a program profiled through package auto alone, for the
// tests of the environment variables: it leaks for a while, then, as
// CHILD_END says, returns from main (the default), stops the profiler
// first ("stop"), or waits to be killed ("wait").
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/leakhunt/profiler/auto"
)

var leaked [][]byte

// leak allocates the leaked buffers, and nothing else: the slice that
// keeps them grows in main.
//
//go:noinline
func leak() []byte { return make([]byte, 64<<10) }

func main() {
	d, err := time.ParseDuration(os.Getenv("CHILD_LEAK_FOR"))
	if err != nil {
		d = 100 * time.Millisecond
	}
	for end := time.Now().Add(d); time.Now().Before(end); {
		leaked = append(leaked, leak())
		time.Sleep(5 * time.Millisecond)
	}
	switch os.Getenv("CHILD_END") {
	case "stop":
		// The Go heap's figures include an allocation only once a GC
		// has finished with it: let the final profile hold them all.
		runtime.GC()
		if p := auto.Profiler(); p != nil {
			if err := p.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "Stop:", err)
			}
		}
	case "wait":
		fmt.Println("waiting")
		select {}
	}
	fmt.Println("done", len(leaked))
}
