package profiler

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// The Go heap source. The runtime samples every Go allocation with the same
// Poisson process over bytes as the hook (with a countdown per P, and mean
// runtime.MemProfileRate), so reading its profile gives Go heap samples
// with no hook call at all, and the two sources share one set of sample
// types and units.
//
// It is read as the heap profile runtime/pprof writes: the only public view
// that keeps the runtime's full stack depth (runtime.MemProfile cuts stacks
// at 32 frames), already scaled by the runtime (scaleHeapSample in
// runtime/pprof/protomem.go) and symbolized. The encoder decodes it
// straight into its own location tables, so a steady-state profile builds
// no Location or Function again.
//
// In-use figures lag: the runtime publishes the heap as of the GC cycle
// before the last one, not now (goheaptime.go says why). Forcing a GC
// before each read makes them current at the cost of a full collection per
// profile, so it is an option (WithGCBeforeSnapshot), not the default;
// each profile says when its Go heap figures were taken, and cmd/leakhunt
// measures growth against that time.

// goHeapProfile is one read of the runtime's heap profile.
type goHeapProfile struct {
	data      []byte    // the pprof protocol buffer, uncompressed
	figuresAt time.Time // the moment its in-use figures describe
	gcForced  bool      // a GC ran just before it was read

	// rateBefore is runtime.MemProfileRate before the profiler set it,
	// which the profile's comments report.
	rateBefore int
}

// goHeapReader reads the runtime's heap profile into buffers it keeps from
// one read to the next. It is not safe for concurrent use.
type goHeapReader struct {
	gz   bytes.Buffer
	zr   *gzip.Reader
	data bytes.Buffer
	prof goHeapProfile

	gcs    [2]metrics.Sample // GC cycles completed, live heap
	cycles uint64            // GC cycles completed at the last read
	last   time.Time         // of the last read; zero before it
}

// staleHeapMax is the largest live heap for which read runs a GC when none
// ran since the last read: see stale.
const staleHeapMax = 256 << 20

// staleAfter is how long after the last read, with no GC since, read runs
// one: half the shortest flush interval, so that every profile of the
// flush loop is covered while reads made in a burst (a scraper,
// WriteProfile in a loop) do not each pay for a GC.
const staleAfter = 500 * time.Millisecond

// stale reports whether no GC cycle has completed since the last read, at
// least staleAfter ago, for a live heap of at most staleHeapMax. The runtime publishes its figures
// only at the end of a GC, so a program that allocates little, or whose
// heap only grows, can go many profiles without one: a leak in it would
// show as flat, profile after profile, and the leak detector, which needs
// figures of 20 distinct cycles, would not see it for many minutes. A GC
// then costs in proportion to the live heap, so it is run only up to
// staleHeapMax; larger heaps wait for their own GCs, and the runtime's
// every two minutes.
func (r *goHeapReader) stale() bool {
	metrics.Read(r.gcs[:])
	return !r.last.IsZero() && time.Since(r.last) >= staleAfter &&
		r.gcs[0].Value.Uint64() == r.cycles && r.gcs[1].Value.Uint64() <= staleHeapMax
}

// read reads the runtime's current heap profile, after a GC if gcFirst, or
// if none ran since the last read (see stale). The result is valid until
// the next read.
func (r *goHeapReader) read(gcFirst bool, rateBefore int) (*goHeapProfile, error) {
	if r.gcs[0].Name == "" {
		r.gcs[0].Name, r.gcs[1].Name = "/gc/cycles/total:gc-cycles", "/gc/heap/live:bytes"
	}
	if !gcFirst && r.stale() {
		gcFirst = true
	}
	if gcFirst {
		runtime.GC()
	}
	r.gz.Reset()
	if err := pprof.Lookup("heap").WriteTo(&r.gz, 0); err != nil {
		return nil, fmt.Errorf("reading the Go heap profile: %w", err)
	}
	// Right after the read. A GC cycle that ended during it may leave the
	// figures a cycle older than dated; reading again until no cycle ends
	// would take two or three reads in a program whose cycles come every
	// few milliseconds, for an error of one cycle in a rate fitted over
	// many.
	figuresAt := goHeapFiguresAt(gcFirst)
	if figuresAt.IsZero() {
		figuresAt = time.Now()
	}
	var err error
	if r.zr == nil {
		r.zr, err = gzip.NewReader(&r.gz)
	} else {
		err = r.zr.Reset(&r.gz)
	}
	if err == nil {
		r.data.Reset()
		_, err = r.data.ReadFrom(r.zr)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the Go heap profile: %w", err)
	}
	metrics.Read(r.gcs[:1])
	r.cycles, r.last = r.gcs[0].Value.Uint64(), time.Now()
	r.prof = goHeapProfile{
		data:       r.data.Bytes(),
		figuresAt:  figuresAt,
		gcForced:   gcFirst,
		rateBefore: rateBefore,
	}
	return &r.prof, nil
}

// goHeapSampleCounts returns the runtime's sampled Go heap objects, in all
// and still in use (as of the GC before the last), reading the records
// into buf, which it returns grown for the next call.
func goHeapSampleCounts(buf []runtime.MemProfileRecord) (samples, live int64, _ []runtime.MemProfileRecord) {
	for {
		n, ok := runtime.MemProfile(buf, true)
		if !ok {
			// Room for records added before the next call.
			buf = make([]runtime.MemProfileRecord, n+n/8+16)
			continue
		}
		for _, r := range buf[:n] {
			samples += r.AllocObjects
			live += r.InUseObjects()
		}
		return samples, live, buf
	}
}
