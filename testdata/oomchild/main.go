// Command oomchild leaks toward its GOMEMLIMIT with the profiler at its
// defaults and kills itself with SIGKILL near the limit, as the kernel or
// an orchestrator would: nothing runs at that kill, so only the profiles
// written before it remain. With OOMCHILD_KILL_AT set to a number of MiB,
// it kills itself once it has leaked that much instead. Before the kill it prints the memory at that
// moment and the in-use bytes the Go runtime's heap profile reports
// without a GC, to show how far that lags.
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
)

var leaked [][]byte

// leak allocates what is leaked, and nothing else, and fills it, as a
// program fills its buffers: memory never touched is not resident.
//
//go:noinline
func leak() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func main() {
	if _, err := profiler.Start(profiler.WithOutputDir(os.Args[1])); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	limit := uint64(debug.SetMemoryLimit(-1))
	killAt, _ := strconv.ParseUint(os.Getenv("OOMCHILD_KILL_AT"), 10, 64)
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	for end := time.Now().Add(time.Minute); ; {
		leaked = append(leaked, leak())
		time.Sleep(10 * time.Millisecond)
		metrics.Read(samples)
		total := samples[0].Value.Uint64() - samples[1].Value.Uint64()
		near := total >= limit/100*97
		if killAt > 0 {
			near = uint64(len(leaked)) >= killAt
		}
		if !near && time.Now().Before(end) {
			continue
		}
		var buf bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		var profiled int64
		if p, err := profile.ParseData(buf.Bytes()); err == nil {
			for _, s := range p.Sample {
				profiled += s.Value[3]
			}
		}
		fmt.Printf("leaked %d go_total %d live_heap %d profiled_inuse_without_gc %d\n",
			len(leaked)<<20, total, samples[2].Value.Uint64(), profiled)
		self, _ := os.FindProcess(os.Getpid())
		self.Kill()
		select {}
	}
}
