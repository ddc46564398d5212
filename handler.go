package profiler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank"
)

// maxWindowSeconds bounds ?seconds=. Each such request holds a goroutine
// and a connection for its window; an hour is longer than anyone watches a
// scrape, and longer comparisons are what the profile files and `leakhunt
// diff` are for.
const maxWindowSeconds = 3600

// Handler returns an HTTP handler that serves the running profiler's
// current profile: a gzipped pprof heap profile, the one WriteProfile
// writes. Like the handlers of net/http/pprof it can be registered at init,
// before Start: it serves whichever Profiler runs when a request comes, and
// answers 503 Service Unavailable while none runs. Mount it at
// /debug/pprof/leakhunt,
//
//	http.Handle("GET /debug/pprof/leakhunt", profiler.Handler())
//
// and read it with
//
//	go tool pprof http://localhost:6060/debug/pprof/leakhunt
//
// The GET in the pattern matters where net/http/pprof is imported as well:
// it registers "GET /debug/pprof/", and a pattern for all methods below
// that one conflicts with it, so that http.Handle panics.
//
// Three query parameters are read, the first two as net/http/pprof's heap
// profile reads them; any other is ignored, and an empty value is the same
// as none.
//
//   - seconds=N, a whole number from 1 to 3600: take a profile, wait N
//     seconds, take another and serve the second minus the first, what was
//     allocated during the window (alloc_*) and how in-use memory changed
//     (inuse_*, negative where it shrank). `go tool pprof -seconds N URL`
//     asks for this. The result is marked as a delta in its comments, which
//     `leakhunt rank` and `leakhunt diff` refuse.
//   - gc=N, N > 0: run a garbage collection before each profile is taken,
//     so that the Go heap's in-use figures are current instead of as of the
//     GC before the last (see Accuracy in the package documentation). 0
//     runs none.
//   - retainers=1: serve the retainers profile instead, the one
//     WriteRetainers writes, named leakhunt-retainers.pb.gz: what keeps
//     each sampled object alive at the moment of the request. The whole
//     program is stopped for the heap dump it is made from; a dump whose
//     estimated pause is over the limit of WithMaxRetainersPause, one
//     second by default, is refused. It is a snapshot, so seconds cannot
//     be given with it. With gc, the collection runs before the dump and
//     finishes sweeping: the garbage made since the last collection, which
//     the dump would hold and the profile leave out as unreachable, is
//     gone, and the pause shorter for it. 0 serves the heap profile.
//
// An invalid value is answered with 400 Bad Request, naming the parameter,
// and a method other than GET or HEAD with 405. A window ends early, with
// an error, when the request's context ends (the client went away) or the
// profiler stops. If the server has a WriteTimeout, the response's write
// deadline is moved out by the window, as net/http/pprof does; where the
// ResponseWriter cannot move it, a window that would outlast the timeout is
// refused with 400 rather than cut off mid-response.
//
// A retainers profile the profiler declines to take for now, because
// another one is being taken or the dump's pause or memory would be over
// its limits, is answered with 503 Service Unavailable, as when no
// profiler runs: the same request may be served later. One that cannot be
// taken here at all, on a system other than Linux, from an executable
// without a symbol table (`go run` and `go test` build those) or with a Go
// release whose heap dumps the profiler does not know, is answered with
// 501 Not Implemented; any other failure with 500. The body is the error's
// text, and no part of a profile is sent before it is whole.
//
// Like net/http/pprof, the handler must not be exposed to untrusted
// networks: a profile reveals the program's code structure and memory use,
// each ?seconds request ties up a goroutine for its window, and each
// ?retainers request, HEAD included, stops the whole program for a heap
// dump. Serve it on a listener bound to localhost, or behind
// authentication.
//
// The handler is safe for concurrent use; the profiles of concurrent
// requests are taken one at a time, except retainers profiles, which are
// not queued: while one is taken, others are answered with 503.
func Handler() http.Handler {
	return profileHandler{}
}

// profileHandler is the handler Handler returns.
type profileHandler struct {
	// windowOpened, when set, runs after the first profile of a ?seconds
	// window is taken: a test can then act inside the window for certain,
	// where a sleep would only make it likely.
	windowOpened func()
}

func (h profileHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, fmt.Sprintf("method %s not allowed: use GET or HEAD", r.Method), http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	// net/http/pprof reads gc with Atoi and takes any value above 0 as
	// yes; a value that is not a number, or negative, is refused here
	// instead of read as no.
	gc := false
	if s := q.Get("gc"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf(`invalid value %q for "gc": want 0 (no) or a positive integer (yes)`, s), http.StatusBadRequest)
			return
		}
		gc = n > 0
	}
	// Only 0 and 1: a retainers request stops the world, and is not to
	// be made by a value that meant something else.
	retainers := false
	switch s := q.Get("retainers"); s {
	case "", "0":
	case "1":
		retainers = true
	default:
		http.Error(w, fmt.Sprintf(`invalid value %q for "retainers": want 1 (the retainers profile) or 0 (the heap profile)`, s), http.StatusBadRequest)
		return
	}
	var window time.Duration
	if s := q.Get("seconds"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > maxWindowSeconds {
			http.Error(w, fmt.Sprintf(`invalid value %q for "seconds": want a whole number of seconds from 1 to %d`, s, maxWindowSeconds), http.StatusBadRequest)
			return
		}
		if retainers {
			http.Error(w, `"seconds" cannot be given with "retainers": a retainers profile is a snapshot, with no delta over a window`, http.StatusBadRequest)
			return
		}
		window = time.Duration(n) * time.Second
		if err := extendWriteDeadline(w, r, window); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}

	p := active.Load()
	if p == nil {
		http.Error(w, "no heap profiler is running: call profiler.Start first", http.StatusServiceUnavailable)
		return
	}
	var data []byte
	var err error
	name := "leakhunt-heap.pb.gz"
	switch {
	case retainers:
		data, err = p.retainersProfile(r.Context(), gc)
		name = "leakhunt-retainers.pb.gz"
	case window == 0:
		data, err = p.takeProfile(gc)
	default:
		data, err = h.delta(r.Context(), p, window, gc)
		name = "leakhunt-heap-delta.pb.gz"
	}
	if err != nil {
		serveFailure(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data) // the client may be gone; there is no one left to tell
}

// extendWriteDeadline moves the write deadline of the response out by the
// window, when the server has a WriteTimeout, which would otherwise cut the
// response off: the timeout runs from the end of the request's headers.
// net/http/pprof does the same since golang/go#62358; before, it refused a
// window as long as the timeout (golang/go#18755), which this still does
// where the ResponseWriter offers no SetWriteDeadline.
func extendWriteDeadline(w http.ResponseWriter, r *http.Request, window time.Duration) error {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	if !ok || srv.WriteTimeout <= 0 {
		return nil
	}
	err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(srv.WriteTimeout + window))
	if err != nil && window >= srv.WriteTimeout {
		return fmt.Errorf(`"seconds": a window of %v does not fit in the server's WriteTimeout of %v, and this response's write deadline cannot be moved: %v`,
			window, srv.WriteTimeout, err)
	}
	return nil
}

// errWindowEnded is the error of a window whose request ended first.
var errWindowEnded = errors.New("the request ended before the profile window did")

// serveFailure answers a request whose profile could not be made.
func serveFailure(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrStopped):
		http.Error(w, "the heap profiler was stopped: no profile to serve", http.StatusServiceUnavailable)
	case errors.Is(err, errRetainersBusy), errors.Is(err, errRetainersRefused):
		// The profiler's own guards declined, for the program's state
		// now: a client may retry later, when the other dump is done or
		// the heap smaller. Not a 4xx: nothing in the request would
		// change the answer, and no parameter may raise the limits.
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case errors.Is(err, errRetainersUnsupported):
		// However often it is asked, this system or executable cannot.
		http.Error(w, err.Error(), http.StatusNotImplemented)
	case errors.Is(err, context.DeadlineExceeded):
		// As net/http/pprof answers a window its request's deadline cut
		// short.
		http.Error(w, err.Error(), http.StatusRequestTimeout)
	default:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// takeProfile returns the current profile, after a garbage collection if
// gc is set.
func (p *Profiler) takeProfile(gc bool) ([]byte, error) {
	if gc {
		runtime.GC()
	}
	return p.currentProfile()
}

// retainersProfile returns the retainers profile, after a garbage
// collection if gc is set; a client that goes away stops the helper. runtime.GC returns once its collection has
// swept (runtime/mgc.go), and the dump sweeps whatever is unswept with the
// world stopped (runtime/heapdump.go, mdump): after a collection, the dump
// has no sweeping to do and none of the garbage made before it to write.
func (p *Profiler) retainersProfile(ctx context.Context, gc bool) ([]byte, error) {
	if gc {
		runtime.GC()
	}
	var buf bytes.Buffer
	if err := p.writeRetainers(ctx, &buf, p.maxRetainersPause()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// delta takes a profile, waits for the window, takes another from the same
// profiler and returns the second minus the first, gzipped. The
// subtraction is leakrank.DeltaProfile's, the one `leakhunt diff -o`
// writes: it drops the age label first, without which every live object
// would show as removed at one age and added at an older one.
func (h profileHandler) delta(ctx context.Context, p *Profiler, window time.Duration, gc bool) ([]byte, error) {
	first, err := p.takeProfile(gc)
	if err != nil {
		return nil, err
	}
	if h.windowOpened != nil {
		h.windowOpened()
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errWindowEnded, context.Cause(ctx))
	}
	second, err := p.takeProfile(gc)
	if err != nil {
		return nil, err
	}

	before, err := profile.ParseData(first)
	if err != nil {
		return nil, fmt.Errorf("parsing the profile at the start of the window: %w", err)
	}
	after, err := profile.ParseData(second)
	if err != nil {
		return nil, fmt.Errorf("parsing the profile at the end of the window: %w", err)
	}
	d, err := leakrank.DeltaProfile(before, after, profileAt(before), profileAt(after))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := d.Write(&buf); err != nil {
		return nil, fmt.Errorf("encoding the delta profile: %w", err)
	}
	return buf.Bytes(), nil
}

// profileAt names a profile in a delta's comment by its time.
func profileAt(p *profile.Profile) string {
	return "the profile at " + time.Unix(0, p.TimeNanos).UTC().Format(time.RFC3339Nano)
}
