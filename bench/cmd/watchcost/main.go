// Command watchcost measures what the memory watcher costs an idle
// program: the process's CPU time over a window with the profiler running
// and its watcher polling, against the same window with the watcher off,
// in the same run. Flushes are kept out of the window (a one-hour
// interval), so the difference is the watcher's.
//
// Usage:
//
//	go run ./bench/cmd/watchcost [-window 30s] [-poll 250ms]
package main

import (
	"flag"
	"fmt"
	"log"
	"time"

	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/bench"
)

func main() {
	window := flag.Duration("window", 30*time.Second, "how long each run is measured")
	poll := flag.Duration("poll", profiler.DefaultMemoryPoll, "the watcher's poll interval")
	flag.Parse()

	off := measure(*window, 0)
	on := measure(*window, *poll)
	polls := float64(*window) / float64(*poll)
	extra := on - off
	fmt.Printf("window %v: CPU %v with the watcher off, %v with it polling every %v (%.0f polls)\n", *window, off, on, *poll, polls)
	fmt.Printf("watcher: %v per poll, %v per hour, %.4f%% of one core\n",
		time.Duration(float64(extra)/polls).Round(100*time.Nanosecond),
		time.Duration(float64(extra)*float64(time.Hour)/float64(*window)).Round(time.Millisecond),
		100*float64(extra)/float64(*window))
}

// measure returns the process's CPU time over window, with the profiler
// running and the watcher polling every poll (0: off).
func measure(window, poll time.Duration) time.Duration {
	p, err := profiler.Start(profiler.WithoutFiles(), profiler.WithFlushInterval(time.Hour), profiler.WithMemoryPoll(poll))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Stop()
	time.Sleep(2 * time.Second) // past the first profile, written 1s after Start
	begin, ok := bench.ProcessCPUTime()
	if !ok {
		log.Fatal("no process CPU time on this platform")
	}
	time.Sleep(window)
	end, _ := bench.ProcessCPUTime()
	return end - begin
}
