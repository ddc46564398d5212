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
// Two query parameters are read, as net/http/pprof's heap profile reads
// them; any other is ignored, and an empty value is the same as none.
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
//
// An invalid value is answered with 400 Bad Request, naming the parameter,
// and a method other than GET or HEAD with 405. A window ends early, with
// an error, when the request's context ends (the client went away) or the
// profiler stops. If the server has a WriteTimeout, the response's write
// deadline is moved out by the window, as net/http/pprof does; where the
// ResponseWriter cannot move it, a window that would outlast the timeout is
// refused with 400 rather than cut off mid-response.
//
// Like net/http/pprof, the handler must not be exposed to untrusted
// networks: a profile reveals the program's code structure and memory use,
// and each ?seconds request ties up a goroutine for its window. Serve it on
// a listener bound to localhost, or behind authentication.
//
// The handler is safe for concurrent use; the profiles of concurrent
// requests are taken one at a time.
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
	var window time.Duration
	if s := q.Get("seconds"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > maxWindowSeconds {
			http.Error(w, fmt.Sprintf(`invalid value %q for "seconds": want a whole number of seconds from 1 to %d`, s, maxWindowSeconds), http.StatusBadRequest)
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
	if window == 0 {
		data, err = p.takeProfile(gc)
	} else {
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
