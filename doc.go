// Package profiler is a sampling heap profiler meant to stay on in
// production and find memory leaks. It writes standard pprof heap profiles
// to disk, one a second after Start and then one a minute; open them with
// `go tool pprof`.
//
// Start it first thing in main, and stop it when the program ends, which
// writes a last profile:
//
//	package main
//
//	import (
//		"context"
//		"log"
//		"os"
//		"os/signal"
//		"syscall"
//
//		"github.com/leakhunt/profiler"
//	)
//
//	func main() {
//		p, err := profiler.Start() // writes ./heapprofiles/heap-*.pb.gz
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer p.Stop()
//
//		// A deferred call does not run when a signal ends the program:
//		// return from main instead.
//		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//		defer stop()
//		run(ctx) // the program, until ctx is done
//	}
//
// With no other change the profiles show the Go heap, read from the
// runtime's own sampled heap profile (labelled heap=go). Memory the runtime
// does not see, such as C malloc, mmap or slabs handed out by a pool, is
// reported through the allocation hook, under a key the caller chooses:
//
//	var cgoHeap = profiler.NewHeap("cgo")
//
//	p := C.malloc(n)
//	cgoHeap.Alloc(uintptr(p), int(n))
//	...
//	cgoHeap.Free(uintptr(p))
//	C.free(p)
//
// Go objects can be reported with Track (or TrackIn, for a named heap, the
// pprof labels of a context, or a footprint beyond the object's type),
// which follows a sampled object to its collection with runtime.AddCleanup.
// Heap.AllocContext and TrackIn record the pprof labels of a context
// (tenant, endpoint) on sampled allocations, and every live hook sample
// carries its age, so that `go tool pprof -tagfocus=age=1hr:` shows the
// objects that stay. The command cmd/leakhunt ranks allocation sites by
// steady growth over a series of profiles.
//
// # Sampling
//
// Recording every allocation is far too slow for production. Instead,
// sample points fall on allocated bytes as a Poisson process with a mean
// spacing of R bytes (WithSamplingRate, default 512 KiB, the Go runtime's
// own default): an allocation of s bytes is sampled with probability
// p(s) = 1 - exp(-s/R), independently of all others. Only sampled
// allocations capture a stack (raw program counters, symbolized later in the
// background) and enter the live-object table. Everything else costs the
// hook a countdown of bytes on the caller's P, as in the runtime's own
// sampler, and a look at a small filter of live keys, with no lock and no
// allocation.
//
// The Go heap is sampled by the runtime itself, with the same process and
// runtime.MemProfileRate as R. While the profiler runs with the Go heap
// source on (the default, see WithGoHeap), it sets runtime.MemProfileRate
// to the sampling rate, a process-wide setting, and Stop restores the old
// value. The runtime scales all Go heap samples with the rate in force when
// a profile is read, so Go allocations sampled before Start at another rate
// are off by the ratio of the rates: start early, or keep the default rate.
//
// # Accuracy
//
// Each sampled allocation of s bytes stands for 1/p(s) allocations and
// s/p(s) bytes; the weights are applied when a profile is written, and the
// sum over samples is an unbiased estimate of the true total. With k
// samples behind a figure its relative standard error is about 1/sqrt(k):
// a site holding 512 MiB at the default rate has about a thousand samples,
// so its estimate is within a few percent. Allocations of R bytes or more
// are almost always sampled and are reported nearly exactly.
//
// The Go heap's in-use figures describe the heap at the end of the garbage
// collection before the last one, not at the time of the profile: the
// runtime publishes a sampled allocation, and its free, only once a later
// GC cycle has finished with it (see runtime.MemProfile). Each profile
// states that moment in a comment ("go heap figures as of …"), and
// cmd/leakhunt measures the growth of Go heap sites against it, so growth
// rates are right even when cycles are minutes apart; the in-use figure of
// a steadily leaking site is what it held then, and so less than it holds
// now. The profiler forces a GC before a profile only when no GC cycle
// has completed since the one before and the live heap is under 256 MiB
// (so that a program that rarely collects does not show the same figures
// profile after profile), before a profile of the memory watcher, and
// before every profile with WithGCBeforeSnapshot. Objects reported with Track leave the live set only
// after a GC found them unreachable and their cleanup ran.
//
// # Concurrency
//
// One Profiler runs per process; Start fails while another runs. All its
// methods are safe for concurrent use, and so are the hook functions, which
// reach the running profiler through an atomic pointer and are no-ops when
// none runs. The Profiler owns one background goroutine that writes the
// profiles; Stop ends it, writes a final profile and waits. Concurrent
// Flush calls and a background write collapse into one.
//
// # Output
//
// Each profile is a gzipped pprof protocol buffer like the heap profile of
// runtime/pprof: sample types alloc_objects, alloc_space, inuse_objects and
// inuse_space (the default), period type space/bytes with the sampling
// rate as period, a numeric label bytes with the object size, and a string
// label heap naming the source: "go" for the Go heap, a Heap's name for the
// hook ("default" for the package-level functions). The hook's in-use
// samples carry a numeric label age in seconds, rounded down to round
// values (docs/guide.md lists them), and the caller's pprof labels where
// AllocContext or TrackIn captured them. The comments give the rates,
// sample counts and anything dropped. The same state always encodes to the
// same bytes. Files are named heap-<UTC time>-<pid>.pb.gz, written with
// mode 0600 into a 0700 directory through a temporary file and a rename, so
// a reader never sees a partial profile. Every file of the last hour is
// kept, then one per hour for a day (WithRetention), and at most
// WithMaxFiles files and WithMaxBytes bytes in all; on a full disk the
// profiler deletes its own oldest files and tries again. A failed write is
// counted in Stats, logged at most once per interval with a count
// (WithLogger), and retried at the next interval; the program never
// notices.
//
// Useful views:
//
//	go tool pprof -top heapprofiles/heap-….pb.gz              # in-use bytes by site
//	go tool pprof -sample_index=alloc_space -top FILE         # everything allocated
//	go tool pprof -tagfocus=heap=go -top FILE                 # the Go heap only
//	go tool pprof -tagignore=heap=go -top FILE                # the hook's heaps only
//	go tool pprof -diff_base OLD NEW                          # what grew between two
//	go tool pprof -http=localhost:8080 FILE                   # flame graph
//
// # Beyond the local disk
//
// Handler serves the current profile over HTTP, for `go tool pprof URL` or
// a scraper such as Grafana Alloy. WithExporter sends every profile
// somewhere else as it is written; package
// github.com/leakhunt/profiler/pyroscope pushes them to Grafana Pyroscope.
// WithoutFiles writes none to disk. Importing
// github.com/leakhunt/profiler/auto starts the profiler from environment
// variables, with no other change to a program.
//
// # Memory, leaks and retainers
//
// A watcher polls the process's memory and writes a profile of its own
// when memory nears its limit (the cgroup's, or GOMEMLIMIT) or reaches a
// new peak, so that a process killed for its memory leaves the profile that
// explains it (WithMemoryPoll). Every profile written also feeds a leak
// detector that logs a steadily growing site as "leak suspect" (Suspects).
// WriteRetainers writes, for the sampled live objects, the chain of
// references that keeps each alive (Linux).
package profiler
