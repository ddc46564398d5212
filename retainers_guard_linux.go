package profiler

import (
	"fmt"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// The guards a heap dump passes before it is taken: the pause it would
// cost, estimated from the heap's size, and the memory it would need.

// Pause estimate: a fixed cost on the first dump in a process, which walks
// the whole arena index (runtime/heapdump.go, dumpparams) and faults in
// its pages, and then a cost per byte of heap, both measured on Go 1.26
// and rounded up (see the package's benchmarks for the figures).
const (
	firstDumpCost  = 150 * time.Millisecond
	laterDumpCost  = 10 * time.Millisecond
	dumpCostPerMiB = 3 * time.Millisecond
)

// dumpedBefore records that this process has written a heap dump, after
// which the fixed cost is small.
var dumpedBefore atomic.Bool

// heapFigures returns the bytes and the count of the heap's objects, live
// or not yet swept, which is what a dump writes. runtime/metrics reads
// them without stopping the world, which runtime.ReadMemStats would.
func heapFigures() (bytes, objects uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/objects:objects"},
	}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		bytes = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		objects = s[1].Value.Uint64()
	}
	return bytes, objects
}

// estimatePause is the world-stopping pause a dump of heap bytes is
// expected to take.
func estimatePause(heap uint64, first bool) time.Duration {
	fixed := laterDumpCost
	if first {
		fixed = firstDumpCost
	}
	return fixed + time.Duration(float64(dumpCostPerMiB)*float64(heap)/(1<<20))
}

// checkPause refuses a dump whose estimated pause is over limit.
func checkPause(estimate time.Duration, heap uint64, limit time.Duration) error {
	if estimate <= limit {
		return nil
	}
	return fmt.Errorf("a heap dump would stop the program for about %v (%d MiB of heap), over the limit of %v; WithMaxRetainersPause raises it",
		estimate.Round(time.Millisecond), heap>>20, limit)
}

// The dump is about as large as the heap (1.1 to 1.25 times, with its
// records' framing) and sits in memory until it is parsed, next to the
// parsing process's own, smaller, memory: dumpMemoryFactor times the heap
// covers both.
const dumpMemoryFactor = 1.5

// checkDumpMemory refuses a dump that would bring the cgroup, which is
// charged for the in-memory dump, within a tenth of its memory limit: the
// program must not be killed for a profile. GOMEMLIMIT does not count the
// dump, which is no Go memory.
func checkDumpMemory(m memoryReading, heap uint64) error {
	if m.cgroupLimit == 0 {
		return nil
	}
	need := uint64(dumpMemoryFactor * float64(heap))
	if m.cgroupUsage+need <= m.cgroupLimit/10*9 {
		return nil
	}
	return fmt.Errorf("a heap dump needs about %d MiB of memory until it is parsed, which would bring the cgroup's %d MiB in use past 90%% of its %d MiB limit",
		need>>20, m.cgroupUsage>>20, m.cgroupLimit>>20)
}
