// Package pyroscope pushes the profiler's heap profiles to Grafana
// Pyroscope, self-hosted or Grafana Cloud Profiles, where they can be
// queried and compared over time next to other services' profiles.
//
//	package main
//
//	import (
//		"log"
//
//		"github.com/leakhunt/profiler"
//		"github.com/leakhunt/profiler/pyroscope"
//	)
//
//	func main() {
//		exp, err := pyroscope.New(pyroscope.Config{
//			URL:         "http://localhost:4040",
//			ServiceName: "checkout",
//			Labels:      map[string]string{"env": "prod"},
//		})
//		if err != nil {
//			log.Fatal(err)
//		}
//		p, err := profiler.Start(profiler.WithExporter(exp))
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer p.Stop()
//		// ...
//	}
//
// For Grafana Cloud, URL is the Profiles endpoint of the stack, and
// BasicAuthUser and BasicAuthPassword its user id and an access policy
// token with the profiles:write scope.
//
// # What is pushed
//
// Each profile goes to Pyroscope's push API (connect, binary protobuf,
// POST {URL}/push.v1.PusherService/Push) as one series labelled
// __name__=memory, service_name=ServiceName and the static Labels. In
// Pyroscope its four sample types are four profile types, such as
// memory:inuse_space:bytes:space:bytes and
// memory:alloc_objects:count:space:bytes.
//
// Pyroscope adds up every profile in the time range of a query. In-use
// values are pushed as the snapshot they are, so a range holding one push
// shows what was in use then; alloc_* values are pushed as what was
// allocated since the last successful push, so a range shows what was
// allocated in it. The first push carries everything allocated before it
// (for the Go heap, since the process started). A failed push moves
// nothing: its allocations arrive with the next one. Should a site's
// allocations shrink from one profile to the next, which happens only when
// the profiler moves a site's history under another frame or a value
// saturates, its difference is pushed as zero rather than negative.
//
// Samples are merged by stack and string labels. The heap label and the
// pprof labels recorded with AllocContext and TrackIn are kept, and
// Pyroscope makes each a series label, for selectors and group-by. The
// numeric labels bytes and age are dropped, as Pyroscope would drop them.
// A pprof label named like a series label (service_name or a static
// label) would be silently replaced by it in Pyroscope: it is pushed as
// sample_<name> instead, and logged once per name.
//
// # Limits
//
// Pyroscope rejects a profile of more than 16000 samples or 4 MiB
// uncompressed, by default (MaxSamples and MaxProfileBytes follow a server
// with other limits). A profile past either keeps its largest samples, by
// in-use bytes plus bytes allocated since the last push, and folds the
// rest into one sample per heap whose stack is the single frame
// "[smaller samples folded]": totals stay exact, and only where the
// smallest samples' memory was is lost. The first time it happens it is
// logged, with the numbers.
//
// # Errors
//
// Export retries network errors and 408, 429 and 5xx answers (but 501),
// with exponential backoff and full jitter from 250ms to 8s, or after the
// server's Retry-After, within the context the profiler gives it
// (profiler.WithExportTimeout). Other answers, such as a 400 for a profile
// outside the server's ingestion window, are final. An error names the
// endpoint, the status and the server's message, and never holds a
// credential.
//
// # Concurrency
//
// An Exporter's methods are safe for concurrent use. Export calls run one
// at a time, as the profiler makes them anyway.
package pyroscope
