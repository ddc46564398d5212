// Command leakyserver runs a small HTTP service with two memory leaks
// hidden in ordinary traffic, drives it with its own load generator on
// 127.0.0.1, profiles it with leakhunt, and prints the commands that find
// the leaks in the profiles it wrote.
//
// The service (server.go) has three endpoints, each called by four
// tenants' clients (load.go):
//
//   - GET /report renders an account statement and caches it; the cache
//     is keyed by the full request URI, cache-buster included, and never
//     evicts (reports.go): a leak in the Go heap, found with no hook call;
//   - POST /upload reads a document into a 32 KiB chunk of a C-style buffer
//     pool (bufpool.go) reported through the hook as heap=bufpool with the
//     request's pprof labels; the checksum error path forgets to return the
//     chunk, and only tenant globex's client sends bad checksums;
//   - GET /catalog/{id} reads a large catalog loaded at startup
//     (catalog.go): big and flat, the thing that is not a leak.
//
// Usage:
//
//	go run ./examples/leakyserver [-duration 20s] [-interval 1s] [-out DIR] [-rate BYTES]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/leakhunt/profiler"
)

type config struct {
	duration    time.Duration // of the load
	interval    time.Duration // between profiles
	out         string        // profile directory
	rate        int           // sampling rate in bytes
	catalogSize int           // items of 1 KiB
	retainers   string        // file for a retainers profile at the end of the load; "" for none
}

func main() {
	cfg := config{catalogSize: 20000}
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long to run the load")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "how often to write a heap profile (at least 1s)")
	flag.StringVar(&cfg.out, "out", "heapprofiles-leakyserver", "directory for the heap profiles")
	// 64 KiB, an eighth of the default: enough samples in a 20 s demo.
	flag.IntVar(&cfg.rate, "rate", 64<<10, "sampling rate: mean bytes between samples")
	flag.StringVar(&cfg.retainers, "retainers", "", "write a retainers profile, what keeps the memory alive, to this file at the end of the load (Linux; a binary from go build, which keeps its symbols)")
	flag.Parse()

	// Ctrl-C ends the load early; the program still shuts down in order
	// and writes its final profile.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "leakyserver: %v\n", err)
		os.Exit(1)
	}
	res.print(os.Stdout, cfg)
}

// result is what a run did and wrote.
type result struct {
	addr          string
	stats         *loadStats
	reportEntries int
	reportBytes   int
	chunksInUse   int
	slabs         int
	rejected      map[string]map[string]int
	dir           string   // absolute
	files         []string // this run's profiles, oldest first, absolute
}

// run profiles the service under load for cfg.duration, then stops the
// load, shuts the server down and stops the profiler, which writes a final
// profile. Background failures of the profiler are logged to logw.
func run(ctx context.Context, cfg config, logw io.Writer) (*result, error) {
	// Start before anything allocates: it sets runtime.MemProfileRate,
	// and Go heap samples taken earlier at another rate would be scaled
	// wrongly.
	p, err := profiler.Start(
		profiler.WithSamplingRate(cfg.rate),
		profiler.WithOutputDir(cfg.out),
		profiler.WithFlushInterval(cfg.interval),
		profiler.WithGoHeap(true),
		// The Go heap's in-use figures are those of the last GC; a
		// GC per profile keeps them current, which a series one second
		// apart needs. With the default minute-long interval in
		// production, leave it off.
		profiler.WithGCBeforeSnapshot(true),
		profiler.WithLogger(slog.New(slog.NewTextHandler(logw, nil))),
	)
	if err != nil {
		return nil, err
	}
	defer p.Stop() // on early returns; the normal path stops it below

	srv := newServer(loadCatalog(cfg.catalogSize))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv.routes(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	loadCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	stats := generateLoad(loadCtx, "http://"+ln.Addr().String(), cfg.catalogSize)
	if cfg.retainers != "" {
		if err := writeRetainers(p, cfg.retainers); err != nil {
			return nil, err
		}
	}

	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return nil, fmt.Errorf("shutting the server down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return nil, fmt.Errorf("serving: %w", err)
	}
	if err := p.Stop(); err != nil {
		return nil, fmt.Errorf("stopping the profiler: %w", err)
	}

	res := &result{addr: ln.Addr().String(), stats: stats, rejected: srv.rejections()}
	res.reportEntries, res.reportBytes = srv.reports.stats()
	res.chunksInUse, res.slabs = srv.pool.stats()
	// The final profile is taken after a GC: had the server become
	// unreachable before Stop, its leaked cache would be gone from it.
	runtime.KeepAlive(srv)

	if res.dir, err = filepath.Abs(cfg.out); err != nil {
		return nil, err
	}
	// The directory may hold earlier runs' profiles too; this run's end
	// in -<pid>.pb.gz.
	res.files, err = filepath.Glob(filepath.Join(res.dir, fmt.Sprintf("heap-*-%d.pb.gz", os.Getpid())))
	if err != nil {
		return nil, err
	}
	slices.Sort(res.files) // names start with the UTC time
	return res, nil
}

// writeRetainers writes p's retainers profile to path, while the server
// still holds what it leaked.
func writeRetainers(p *profiler.Profiler, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := p.WriteRetainers(f); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

func (r *result) print(w io.Writer, cfg config) {
	fmt.Fprintf(w, "leakyserver: %v of load on http://%s from %d tenants: %d requests (%d failed)\n",
		cfg.duration, r.addr, len(tenants), r.stats.requests.Load(), r.stats.failed.Load())
	fmt.Fprintf(w, "  report cache: %d entries, %s\n", r.reportEntries, mib(r.reportBytes))
	fmt.Fprintf(w, "  bufpool:      %d chunks of %d KiB lent out (%s) in %d slabs\n",
		r.chunksInUse, chunkSize>>10, mib(r.chunksInUse*chunkSize), r.slabs)
	var rejected []string
	for _, t := range slices.Sorted(maps.Keys(r.rejected)) {
		for _, reason := range slices.Sorted(maps.Keys(r.rejected[t])) {
			rejected = append(rejected, fmt.Sprintf("%s %d (%s)", t, r.rejected[t][reason], reason))
		}
	}
	if len(rejected) == 0 {
		rejected = []string{"none"}
	}
	fmt.Fprintf(w, "  uploads rejected: %s\n", strings.Join(rejected, ", "))
	if len(r.files) == 0 {
		fmt.Fprintf(w, "no profiles written to %s\n", r.dir)
		return
	}
	first, last := quote(r.files[0]), quote(r.files[len(r.files)-1])
	dir := quote(r.dir)
	age := ageFilter(cfg.duration)
	fmt.Fprintf(w, "\n%d heap profiles in %s\n", len(r.files), r.dir)
	fmt.Fprintf(w, "\nfind the leaks (install leakhunt with go install ./cmd/leakhunt):\n")
	for _, c := range []string{
		// -old: the default, 1h, is for production; this run is short.
		"leakhunt rank -old " + age + " " + dir,
		"leakhunt diff " + first + " " + last,
		"go tool pprof -top -tagfocus=age=" + age + ": " + last,
		"go tool pprof -top -tagfocus=tenant=" + leakyTenant + " " + last,
		"go tool pprof -top -tagfocus=heap=bufpool " + last,
		"go tool pprof -http=localhost:8080 " + last,
	} {
		fmt.Fprintf(w, "  %s\n", c)
	}
}

// ageFilter returns the age that half the run reached, as a -tagfocus
// value: one of the profiler's age steps, which it rounds ages down to,
// and in seconds, since pprof needs the unit.
func ageFilter(run time.Duration) string {
	steps := []int{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600}
	age := steps[0]
	for _, s := range steps {
		if time.Duration(s)*time.Second <= run/2 {
			age = s
		}
	}
	return fmt.Sprintf("%ds", age)
}

func mib(n int) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// quote quotes a path for a POSIX shell if it needs it.
func quote(s string) string {
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
