// Command leakretainers leaks Go memory into a global slice, with the
// profiler writing a profile a second and a retainers profile on a leak
// warning (WithLeakRetainers), until that retainers profile is in the
// directory named by its argument or 90 s have passed. It logs as JSON to
// its standard output, for leakretainers_linux_test.go.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/leakhunt/profiler"
)

// leaked holds every buffer leakBuffer makes.
var leaked [][]byte

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: leakretainers dir")
		os.Exit(2)
	}
	dir := os.Args[1]
	p, err := profiler.Start(
		profiler.WithOutputDir(dir),
		profiler.WithFlushInterval(time.Second),
		profiler.WithSamplingRate(4096),
		profiler.WithLeakRetainers(true),
		profiler.WithLogger(slog.New(slog.NewJSONHandler(os.Stdout, nil))),
	)
	if err != nil {
		fail(err)
	}
	for start := time.Now(); time.Since(start) < 90*time.Second; time.Sleep(20 * time.Millisecond) {
		leaked = append(leaked, leakBuffer())
		if found, _ := filepath.Glob(filepath.Join(dir, "retainers-*.pb.gz")); len(found) > 0 {
			break
		}
	}
	if err := p.Stop(); err != nil {
		fail(err)
	}
}

// leakBuffer makes the leak's buffers: 64 KiB every 20 ms.
//
//go:noinline
func leakBuffer() []byte { return make([]byte, 64<<10) }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "leakretainers:", err)
	os.Exit(1)
}
