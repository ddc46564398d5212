package profiler

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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
	// sampler comes first, so that its countdowns start on a cache line:
	// a Profiler is large enough for the allocator to align it to a page.
	sampler sampler

	cfg   config
	depth int
	table *liveTable
	start time.Time
	files *fileStore
	enc   *encoder

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

	filesWritten atomic.Uint64
	writeErrors  atomic.Uint64
	lastFlush    atomic.Int64 // nanoseconds
	lastErr      atomic.Pointer[error]
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
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("profiler: invalid options: %w", err)
	}

	runningMu.Lock()
	defer runningMu.Unlock()
	if running != nil {
		return nil, errors.New("profiler: Start called while a profiler is running; Stop it first")
	}
	files, err := newFileStore(cfg.dir, cfg.maxFiles, cfg.retainAll, cfg.retainHr)
	if err != nil {
		return nil, fmt.Errorf("profiler: %w", err)
	}
	p := &Profiler{
		cfg:   cfg,
		depth: cfg.depth,
		table: newLiveTable(cfg.maxLive, cfg.maxStacks),
		start: time.Now(),
		files: files,
		enc:   newEncoder(processSymbols, cfg.depth),
		done:  make(chan struct{}),
	}
	p.prevMemProfileRate = runtime.MemProfileRate
	if cfg.goHeap {
		runtime.MemProfileRate = cfg.rate
	}
	p.sampler.init(cfg.rate)
	p.table.filter.publish(&liveFilter)
	running = p
	active.Store(p)
	p.group.Go(p.loop)
	return p, nil
}

// loop writes a profile every flush interval until Stop. A failed write is
// logged and counted by writeFile; the loop carries on and retries at the
// next tick.
func (p *Profiler) loop() error {
	t := time.NewTicker(p.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return nil
		case <-t.C:
			p.flush()
		}
	}
}

// Stop stops the hook, writes a final profile, waits for the background
// goroutine and returns the first error met doing so. It is idempotent:
// later calls return the same result without doing anything.
func (p *Profiler) Stop() error {
	p.stopOnce.Do(func() {
		p.lifecycle.Lock()
		p.stopped = true
		p.lifecycle.Unlock()
		active.CompareAndSwap(p, nil)
		atomic.StorePointer(&liveFilter, unsafe.Pointer(noFilter))
		close(p.done)
		errLoop := p.group.Wait()
		_, errFlush := p.flush()
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

// Flush writes a profile file now and returns its path. Calls that overlap
// with each other or with a background write share that one write.
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
		return p.writeFile()
	})
	path, _ := v.(string)
	return path, err
}

// writeFile builds a profile, writes it atomically to a new file and prunes
// old ones. A failure is logged, counted and returned.
func (p *Profiler) writeFile() (string, error) {
	begin := time.Now()
	data, err := p.profile(begin)
	p.sampler.release() // see sampler.go: goroutines come and go
	path := ""
	if err == nil {
		path, err = p.files.write(begin, data)
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
		p.cfg.logger.Error("profiler: writing heap profile failed", "dir", p.cfg.dir, "err", err)
		return "", err
	}
	p.filesWritten.Add(1)
	p.lastErr.Store(nil)
	return path, nil
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
	return p.profile(time.Now())
}

// age returns the time since Start in whole seconds, the clock of the live
// records' birth times.
func (p *Profiler) age() uint32 {
	return uint32(time.Since(p.start) / time.Second)
}

// Stats is a snapshot of a profiler's counters.
type Stats struct {
	Samples     uint64 // sampled allocations seen since Start
	LiveSamples int64  // sampled allocations not yet freed
	Dropped     uint64 // samples not kept live: the live or group table was full (a sample dropped for a full live table still counts in alloc_*)
	Stacks      int64  // distinct stacks stored
	LabelSets   int    // distinct pprof label sets stored (AllocContext, TrackContext)

	LabelSetsDropped uint64 // sampled allocations kept without their labels: too many label sets
	FilesWritten     uint64 // profile files written
	WriteErrors      uint64 // profile writes that failed

	LastFlushDuration time.Duration // time taken by the last file write
	LastError         error         // error of the last file write, nil if it succeeded
}

// Stats returns the profiler's counters.
func (p *Profiler) Stats() Stats {
	t := p.table
	s := Stats{
		Samples:           t.samples.Load(),
		LiveSamples:       t.count.Load(),
		Dropped:           t.droppedLive.Load() + t.droppedGroup.Load(),
		Stacks:            t.stacks.count.Load(),
		LabelSets:         len(t.labels.snapshot()),
		LabelSetsDropped:  t.labels.dropped.Load(),
		FilesWritten:      p.filesWritten.Load(),
		WriteErrors:       p.writeErrors.Load(),
		LastFlushDuration: time.Duration(p.lastFlush.Load()),
	}
	if e := p.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}
