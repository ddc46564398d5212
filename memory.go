package profiler

import (
	"math"
	"runtime/metrics"
)

// The memory of the process and the limits it runs under, read often and
// cheaply so that a profile can be written before the process is killed
// for its memory: by the kernel's OOM killer when its cgroup reaches its
// limit, or by a runtime that can no longer keep under GOMEMLIMIT.
//
// The Go figures come from runtime/metrics, which, unlike
// runtime.ReadMemStats, does not stop the world. The cgroup figures come
// from files found once and kept open (memory_linux.go); other systems have
// no cgroups and only the Go figures.

// Names of the limits fraction reports.
const (
	limitCgroup     = "cgroup"
	limitGOMEMLIMIT = "GOMEMLIMIT"
)

// memoryReading is one reading of the process's memory and its limits, in
// bytes. A zero figure is unknown, or no limit.
type memoryReading struct {
	// goTotal is the memory the Go runtime has mapped and not returned to
	// the system: /memory/classes/total:bytes less
	// /memory/classes/heap/released:bytes. It is what GOMEMLIMIT bounds
	// (runtime/debug.SetMemoryLimit).
	goTotal uint64
	// goLimit is GOMEMLIMIT (/gc/gomemlimit:bytes); 0 when none is set.
	goLimit uint64
	// resident is the process's resident set size, 0 where unknown (off
	// Linux).
	resident uint64
	// heapLive is the heap marked live by the last GC (/gc/heap/live:bytes).
	heapLive uint64

	// cgroupUsage is the cgroup's working set as the kubelet counts it for
	// eviction: its charged memory less the file pages on the inactive
	// list, which the kernel reclaims before it kills anything. It counts
	// every process of the cgroup (a container's), the page cache and
	// kernel memory charged to it, not only this process's. 0 if unknown.
	cgroupUsage uint64
	// cgroupLimit is the lowest memory limit that kills, of the cgroup and
	// its ancestors that are visible; 0 if none or unknown.
	cgroupLimit uint64
}

// fraction returns the highest ratio of usage to limit among the limits
// that are set, and which limit that is (limitCgroup or limitGOMEMLIMIT);
// ok is false when no limit is set. On a tie the cgroup wins: its limit is
// the one that kills.
func (m memoryReading) fraction() (ratio float64, limit string, ok bool) {
	if m.cgroupLimit > 0 {
		ratio, limit, ok = float64(m.cgroupUsage)/float64(m.cgroupLimit), limitCgroup, true
	}
	if m.goLimit > 0 {
		if r := float64(m.goTotal) / float64(m.goLimit); !ok || r > ratio {
			ratio, limit, ok = r, limitGOMEMLIMIT, true
		}
	}
	return ratio, limit, ok
}

// The runtime/metrics samples a memoryReader reads, by index.
const (
	metricTotal = iota
	metricReleased
	metricHeapLive
	metricGoMemLimit
	numMemoryMetrics
)

var memoryMetricNames = [numMemoryMetrics]string{
	metricTotal:      "/memory/classes/total:bytes",
	metricReleased:   "/memory/classes/heap/released:bytes",
	metricHeapLive:   "/gc/heap/live:bytes",
	metricGoMemLimit: "/gc/gomemlimit:bytes",
}

// memoryReader reads memoryReadings. It is made once and read on every
// poll, so read allocates nothing and walks no directory: the
// runtime/metrics samples and the cgroup files and buffer are kept from one
// read to the next. It is not safe for concurrent use; close releases its
// files.
type memoryReader struct {
	samples [numMemoryMetrics]metrics.Sample
	cgroup  cgroupMemory
	rss     residentSet
}

// newMemoryReader returns a reader of this process's memory, with its
// cgroup found, if it has one.
func newMemoryReader() *memoryReader { return newMemoryReaderAt("/") }

// newMemoryReaderAt is newMemoryReader with /proc, and the cgroup file
// systems /proc/self/mountinfo names, looked up under root instead of /:
// tests point it at fake trees.
func newMemoryReaderAt(root string) *memoryReader {
	r := new(memoryReader)
	for i, name := range memoryMetricNames {
		r.samples[i].Name = name
	}
	r.cgroup.open(root)
	r.rss.open(root)
	return r
}

// read reads the memory figures now.
func (r *memoryReader) read() memoryReading {
	metrics.Read(r.samples[:])
	total := metricUint64(r.samples[metricTotal])
	released := metricUint64(r.samples[metricReleased])
	var m memoryReading
	if total > released {
		m.goTotal = total - released
	}
	m.heapLive = metricUint64(r.samples[metricHeapLive])
	m.resident = r.rss.read()
	// With no limit set, the runtime reports math.MaxInt64.
	if limit := metricUint64(r.samples[metricGoMemLimit]); limit < math.MaxInt64 {
		m.goLimit = limit
	}
	m.cgroupUsage, m.cgroupLimit = r.cgroup.read()
	return m
}

// metricUint64 returns s's value, 0 if this Go does not support it.
func metricUint64(s metrics.Sample) uint64 {
	if s.Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s.Value.Uint64()
}

// cgroupErr returns why the cgroup figures are unknown: no cgroup, a file
// missing or unreadable, or one that did not parse. It is nil while they
// are known. Once a read fails the figures stay unknown, so the error is
// worth logging once.
func (r *memoryReader) cgroupErr() error { return r.cgroup.failed }

// close closes the reader's files; its cgroup figures are unknown after.
func (r *memoryReader) close() {
	r.cgroup.close()
	r.rss.close()
}
