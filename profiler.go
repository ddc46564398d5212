package profiler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
)

// active is the running profiler, read by the hook on every call. nil means
// none runs and the hook returns at once.
var active atomic.Pointer[Profiler]

// running guards Start against a second concurrent profiler; unlike active,
// it stays set until Stop has finished writing the final profile.
var (
	runningMu sync.Mutex
	running   *Profiler
)

// ErrStopped is returned by Flush and WriteProfile after Stop.
var ErrStopped = errors.New("profiler: stopped")

// Profiler is a running heap profiler, returned by Start. Its methods are
// safe for concurrent use. Only one Profiler runs at a time in a process.
type Profiler struct {
	sampler sampler
	cfg     config
	depth   int
	table   *liveTable
	files   *fileStore // nil with WithoutFiles

	// encMu serializes profiles: the Go heap reader's buffers, the
	// snapshot and the encoder's tables are reused by each.
	encMu  sync.Mutex
	goHeap goHeapReader
	snap   tableSnapshot
	enc    *encoder

	// detector finds leak suspects in the profiles written, nil when
	// off; detectMu serializes its observations.
	detector *leakDetector
	detectMu sync.Mutex

	// leakRetainers counts the retainers profile taken for a leak
	// warning, at most one at a time, begun at lastLeakRetainers.
	leakRetainers     sync.WaitGroup
	leakRetainersOn   atomic.Bool
	lastLeakRetainers time.Time // guarded by leakRetainersOn

	// The memory watcher, nil when off; the background goroutine alone
	// uses them.
	mem   *memoryReader
	watch *watcher

	exports   []*exportQueue
	exporting sync.WaitGroup // the exporters' goroutines

	group   errgroup.Group
	flights singleflight.Group
	done    chan struct{} // closed by Stop to end the background loop

	// lifecycle orders Stop after any Flush or WriteProfile that began
	// before it: they hold it shared, Stop takes it to set stopped.
	lifecycle sync.RWMutex
	stopped   bool
	stopOnce  sync.Once
	stopErr   error

	// prevMemProfileRate is runtime.MemProfileRate before Start, restored
	// by Stop when the Go heap source changed it.
	prevMemProfileRate int

	filesWritten atomic.Int64
	writeErrors  atomic.Int64
	lastFlush    atomic.Int64 // nanoseconds
	lastErr      atomic.Pointer[error]
	writeFails   failureLog

	exported      atomic.Int64
	exportErrors  atomic.Int64
	exportDropped atomic.Int64

	statsMu      sync.Mutex
	goHeapCounts []runtime.MemProfileRecord // Stats' buffer
}

// Start validates opts, starts the process-wide profiler and its background
// goroutine, and returns it. It fails if any option is invalid (the error
// names each one) or if a profiler is already running.
func Start(opts ...Option) (*Profiler, error) {
	cfg := defaultConfig()
	var errs []error
	for _, o := range opts {
		if o == nil {
			errs = append(errs, errors.New("nil Option"))
			continue
		}
		if err := o.apply(&cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.leakRetainers && (cfg.dir == "" || !cfg.leakWarn) {
		errs = append(errs, errors.New("WithLeakRetainers(true) needs the output directory and leak warnings"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("profiler: invalid options: %w", err)
	}

	runningMu.Lock()
	defer runningMu.Unlock()
	if running != nil {
		return nil, errors.New("profiler: Start called while a profiler is running; Stop it first")
	}
	var files *fileStore
	if cfg.dir != "" {
		var err error
		if files, err = newFileStore(cfg.dir, cfg.maxFiles, cfg.retainAll, cfg.retainHr); err != nil {
			return nil, fmt.Errorf("profiler: %w", err)
		}
	}
	p := &Profiler{
		cfg:   cfg,
		depth: cfg.depth,
		table: newLiveTable(time.Now(), cfg.rate, cfg.depth, cfg.maxLive, cfg.maxStacks),
		files: files,
		enc:   newEncoder(processSymbols.lookup, processMappings()),
		done:  make(chan struct{}),
	}
	p.prevMemProfileRate = runtime.MemProfileRate
	if cfg.goHeap {
		runtime.MemProfileRate = cfg.rate
	}
	if cfg.leakWarn {
		p.detector = newLeakDetector()
	}
	if cfg.memPoll > 0 {
		p.mem = newMemoryReader()
		p.watch = newWatcher(cfg.fractions, cfg.peakMargin, p.mem.read())
	}
	seed := cfg.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	p.sampler.init(cfg.rate, seed)
	for _, e := range cfg.exporters {
		q := newExportQueue(e)
		p.exports = append(p.exports, q)
		p.exporting.Go(func() { p.runExports(q) })
	}
	running = p
	active.Store(p)
	p.group.Go(p.loop)
	return p, nil
}

// firstProfileDelay is when the first profile is written, if the flush
// interval is longer: a program stopped early, by Ctrl-C or a crash, still
// leaves a profile behind, and a person trying the profiler sees a file at
// once. It is not at Start itself, where the heap holds nothing yet.
const firstProfileDelay = time.Second

// loop writes a profile soon after Start and then every flush interval
// until Stop, and polls the memory watcher. A failed write is counted, and
// logged when due, by writeFile; the loop carries on and retries at the
// next tick.
func (p *Profiler) loop() error {
	first := time.NewTimer(min(firstProfileDelay, p.cfg.interval))
	defer first.Stop()
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	var ticks, polls <-chan time.Time
	if p.watch != nil {
		poll := time.NewTicker(p.cfg.memPoll)
		defer poll.Stop()
		polls = poll.C
		defer p.mem.close()
	}
	for {
		select {
		case <-p.done:
			return nil
		case <-first.C:
			ticker = time.NewTicker(p.cfg.interval)
			ticks = ticker.C
			p.flush()
		case <-ticks:
			p.flush()
		case <-polls:
			p.pollMemory()
		}
	}
}

// pollMemory reads the memory and writes the profile the watcher calls
// for, if any.
func (p *Profiler) pollMemory() {
	m := p.mem.read()
	tr, ok := p.watch.check(m, time.Now())
	if !ok {
		return
	}
	tr.reason += "; " + m.describe()
	path, err := p.writeFile(tr)
	if err != nil {
		return // counted and logged by writeFile
	}
	// Near the memory limit is worth an operator's look; a new peak is
	// routine, and its file says so.
	level := slog.LevelDebug
	if tr.tag != "peak" {
		level = slog.LevelWarn
	}
	p.cfg.logger.Log(context.Background(), level, "profiler: heap profile taken for memory", "trigger", tr.tag, "reason", tr.reason, "path", path)
}

// Stop stops the hook, writes a final profile and hands it to the
// exporters, waits for the background goroutine and for the exports (at
// most the export timeout, see WithExportTimeout), and returns the first
// error met writing. It is idempotent: later calls return the same result
// without doing anything.
func (p *Profiler) Stop() error {
	p.stopOnce.Do(func() {
		p.lifecycle.Lock()
		p.stopped = true
		p.lifecycle.Unlock()
		active.CompareAndSwap(p, nil)
		close(p.done)
		errLoop := p.group.Wait()
		_, errFlush := p.flush()
		p.leakRetainers.Wait()
		p.stopExports()
		p.stopErr = errors.Join(errLoop, errFlush)
		if p.cfg.goHeap {
			runtime.MemProfileRate = p.prevMemProfileRate
		}

		runningMu.Lock()
		running = nil
		runningMu.Unlock()
	})
	return p.stopErr
}

// Flush writes a profile file now, hands it to the exporters, and returns
// its path: empty with WithoutFiles. Calls that overlap with each other or
// with a background write share that one write.
func (p *Profiler) Flush() (string, error) {
	p.lifecycle.RLock()
	defer p.lifecycle.RUnlock()
	if p.stopped {
		return "", ErrStopped
	}
	return p.flush()
}

func (p *Profiler) flush() (string, error) {
	v, err, _ := p.flights.Do("flush", func() (any, error) {
		return p.writeFile(trigger{})
	})
	path, _ := v.(string)
	return path, err
}

// writeFile builds a profile, hands it to the exporters, writes it
// atomically to a new file and prunes old ones. A failure is counted,
// returned, and logged at most about once per flush interval (see
// failureLog).
//
// Failures of Flush count and log like the background ones. Flush returns
// its error, but its caller (a signal handler, a debug endpoint) may drop
// it while the log is the record an operator reads; and a Flush that
// overlaps a tick shares its write, so a failure can be both. One count for
// all keeps the log's counts summing to Stats().WriteErrors.
func (p *Profiler) writeFile(tr trigger) (string, error) {
	begin := time.Now()
	data, err := p.profile(begin, tr)
	if err == nil {
		p.exportAll(Profile{Data: data, Time: begin, Trigger: tr.tag})
	}
	path := ""
	if err == nil && p.files != nil {
		path, err = p.files.write(begin, tr.tag, data, p.cfg.maxBytes)
	}
	p.lastFlush.Store(int64(time.Since(begin)))
	if err != nil && path != "" {
		// The profile is written; only the deletion of old files failed.
		p.cfg.logger.Warn("profiler: pruning old heap profiles failed", "dir", p.cfg.dir, "err", err)
		err = nil
	}
	if err != nil {
		p.writeErrors.Add(1)
		p.lastErr.Store(&err)
	} else {
		p.detect(data, begin, path)
		if p.files != nil {
			p.filesWritten.Add(1)
		}
		p.lastErr.Store(nil)
	}

	stopping := false
	select {
	case <-p.done:
		stopping = true
	default:
	}
	due, failures, lastErr := p.writeFails.record(err, begin, p.cfg.interval, stopping)
	switch {
	case due && err != nil:
		p.cfg.logger.Error("profiler: writing heap profile failed", "dir", p.cfg.dir, "err", err, "failures", failures)
	case due:
		p.cfg.logger.Warn("profiler: writing heap profiles again after failures", "dir", p.cfg.dir, "err", lastErr, "failures", failures)
	}
	if err != nil {
		return "", err
	}
	return path, nil
}

// detect feeds a profile written, taken at `at`, to the leak detector, and
// logs the suspects it warns about.
func (p *Profiler) detect(data []byte, at time.Time, path string) {
	if p.detector == nil {
		return
	}
	prof, err := profile.ParseData(data)
	if err != nil {
		return // the profile is ours: it parses
	}
	p.detectMu.Lock()
	warn := p.detector.observe(prof, at, path)
	p.detectMu.Unlock()
	for _, s := range warn {
		p.cfg.logger.Warn("leak suspect", "function", s.Function, "inuse_bytes", s.InuseBytes,
			"growth_bytes_per_hour", int64(math.Round(s.GrowthBytesPerHour)), "score", s.Score, "heap", s.Heap, "profile", s.Profile)
	}
	if len(warn) > 0 && p.cfg.leakRetainers {
		p.startLeakRetainers(warn[0], at)
	}
}

// Suspects returns the allocation sites whose in-use memory the leak
// detector finds growing steadily, most suspicious first; nil with
// WithLeakWarnings(false).
//
// Every profile written feeds the detector the in-use bytes of each site
// (leaf function and heap, as `leakhunt rank` names them). It keeps a
// history of 64 figures per site, the older thinned to cover the whole run,
// for at most 256 sites at once, the suspects and the largest: at most 367
// KiB on a 64-bit system, whatever the run's length (214 KB after 10,000
// profiles of 12,000 distinct sites in the tests). A site becomes a
// suspect when over at least 20 profiles spanning at least 15 s its
// in-use bytes rose at almost every step (Kendall's tau at least 0.8),
// still rise in the latter half as fast, and have about doubled; and stays
// one until it fails that for 3 profiles in a row. At a 1 s flush interval
// a steady leak is a suspect after 22 profiles. A cache filled once, churn
// of any size, a warm-up that levels off and the profiler's own memory
// are not.
func (p *Profiler) Suspects() []Suspect {
	if p.detector == nil {
		return nil
	}
	return p.detector.suspects()
}

// WriteProfile writes the current profile to w as a gzipped pprof protocol
// buffer, the format `go tool pprof` reads.
func (p *Profiler) WriteProfile(w io.Writer) error {
	data, err := p.currentProfile()
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// currentProfile is the profile WriteProfile writes, taken under the
// lifecycle lock so that it cannot race with Stop.
func (p *Profiler) currentProfile() ([]byte, error) {
	p.lifecycle.RLock()
	defer p.lifecycle.RUnlock()
	if p.stopped {
		return nil, ErrStopped
	}
	return p.profile(time.Now(), trigger{})
}

// profile returns the profile of the current state, gzipped, taken for tr
// (the zero trigger: by the clock or on demand). The Go heap, when on, is
// read first, close in time to the table's snapshot, after a GC if the
// options ask for one or tr is the watcher's. The result is the caller's
// own: writing it, however slowly, holds up no other profile.
func (p *Profiler) profile(now time.Time, tr trigger) ([]byte, error) {
	p.encMu.Lock()
	defer p.encMu.Unlock()
	var goHeap *goHeapProfile
	if p.cfg.goHeap {
		var err error
		if goHeap, err = p.goHeap.read(p.cfg.gcFirst || tr.tag != "", p.prevMemProfileRate); err != nil {
			return nil, err
		}
	}
	p.table.snapshot(&p.snap, now)
	p.snap.heapNames = appendHeapNames(p.snap.heapNames[:0])
	p.snap.trigger = tr.reason
	return p.enc.encode(&p.snap, goHeap)
}

// Stats is a snapshot of a profiler's counters. The Go heap's counts are
// the runtime's sampled objects since the process started, read when Stats
// is called (in use as of the GC before the last, as in the profiles), and
// zero with the Go heap source off.
type Stats struct {
	Samples           int64 // sampled allocations: the hook's since Start, and the Go heap's
	LiveSamples       int64 // sampled allocations not yet freed, of both
	GoHeapSamples     int64 // the Go heap's part of Samples
	GoHeapLiveSamples int64 // the Go heap's part of LiveSamples

	Dropped          int64 // hook samples not kept live: the live or group table was full (a sample dropped for a full live table still counts in alloc_*)
	TrackRejected    int64 // sampled Track calls on memory outside the Go heap, never recorded
	Stacks           int64 // distinct hook stacks stored
	LabelSets        int64 // distinct pprof label sets stored (AllocContext, TrackIn)
	LabelSetsDropped int64 // hook samples kept without their labels: too many label sets
	Suspects         int64 // allocation sites the leak detector finds growing steadily (see Suspects)
	FilesWritten     int64 // profile files written
	WriteErrors      int64 // profile writes that failed
	Exported         int64 // profiles an exporter sent (WithExporter), counted once per exporter
	ExportErrors     int64 // Export calls that failed, retries included
	ExportDropped    int64 // profiles an exporter never sent: pushed out of its full queue, or cut short by Stop

	LastFlushDuration time.Duration // time taken by the last file write
	LastError         error         // error of the last file write, nil if it succeeded
}

// Stats returns the profiler's counters.
func (p *Profiler) Stats() Stats {
	t := p.table
	s := Stats{
		Dropped:           t.droppedLive.Load() + t.droppedGroup.Load(),
		TrackRejected:     t.trackRejected.Load(),
		Stacks:            t.stacks.count.Load(),
		LabelSets:         int64(len(t.labels.snapshot())),
		LabelSetsDropped:  t.labels.dropped.Load(),
		Suspects:          int64(len(p.Suspects())),
		FilesWritten:      p.filesWritten.Load(),
		WriteErrors:       p.writeErrors.Load(),
		Exported:          p.exported.Load(),
		ExportErrors:      p.exportErrors.Load(),
		ExportDropped:     p.exportDropped.Load(),
		LastFlushDuration: time.Duration(p.lastFlush.Load()),
	}
	if p.cfg.goHeap {
		p.statsMu.Lock()
		s.GoHeapSamples, s.GoHeapLiveSamples, p.goHeapCounts = goHeapSampleCounts(p.goHeapCounts)
		p.statsMu.Unlock()
	}
	s.Samples = t.samples.Load() + s.GoHeapSamples
	s.LiveSamples = t.count.Load() + s.GoHeapLiveSamples
	if e := p.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}
