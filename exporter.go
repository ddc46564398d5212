package profiler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// A Profile is one profile the profiler took, as handed to an Exporter.
type Profile struct {
	// Data is the gzipped pprof protocol buffer, the bytes a profile file
	// holds. Every exporter is handed the same slice: read it, never
	// modify it. It may be kept after Export returns.
	Data []byte

	// Time is when the profile was taken, its TimeNanos.
	Time time.Time

	// Trigger is why the profile was taken: "" for the flush interval,
	// Flush and Stop; "peak" or "limit<percent>" for a profile the memory
	// watcher took (see WithMemoryPoll), as in its file's name.
	Trigger string
}

// An Exporter sends profiles somewhere beyond the local disk: a
// continuous-profiling backend, an object store. Each one given to
// WithExporter is handed every profile the profiler writes, in order, from
// a goroutine of its own, so a slow or dead destination holds up neither
// the program nor the profile files nor other exporters.
//
// Export is never called concurrently for one exporter. It should retry
// what is worth retrying within ctx, which is cancelled at the export
// timeout (WithExportTimeout); the error it returns is counted in Stats
// and logged at most about once per flush interval, so it must not hold
// credentials. If Export implements fmt.Stringer, its String names it in
// those log lines.
type Exporter interface {
	Export(ctx context.Context, p Profile) error
}

// exportQueueLen is how many profiles wait for one exporter at most.
const exportQueueLen = 2

// exportQueue hands profiles to one exporter, from a goroutine of its own
// (run). It never blocks the profiler: offer drops the oldest waiting
// profile when the queue is full.
type exportQueue struct {
	exp   Exporter
	name  string
	fails failureLog

	mu      sync.Mutex
	ready   sync.Cond // signalled when pending grows or the queue closes
	pending []Profile
	closed  bool
	cancel  context.CancelFunc // of the export in flight, nil if none
}

func newExportQueue(e Exporter) *exportQueue {
	q := &exportQueue{exp: e, name: fmt.Sprintf("%T", e)}
	if s, ok := e.(fmt.Stringer); ok {
		q.name = s.String()
	}
	q.ready.L = &q.mu
	return q
}

// offer queues prof, and returns how many waiting profiles it pushed out.
func (q *exportQueue) offer(prof Profile) (dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 1
	}
	if len(q.pending) == exportQueueLen {
		q.pending = append(q.pending[:0], q.pending[1:]...)
		dropped = 1
	}
	q.pending = append(q.pending, prof)
	q.ready.Signal()
	return dropped
}

// close keeps only the newest waiting profile, the one written at Stop,
// and cancels the export in flight if that is an older one: the newest
// carries all the others would have. It returns how many waiting profiles
// that dropped.
func (q *exportQueue) close() (dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n := len(q.pending); n > 1 {
		dropped = n - 1
		q.pending = append(q.pending[:0], q.pending[n-1])
	}
	if q.cancel != nil && len(q.pending) > 0 {
		q.cancel()
	}
	q.closed = true
	q.ready.Signal()
	return dropped
}

// next waits for the next profile to export and returns it with the
// context to export it in and that context's cancel, or false when the
// queue is closed and empty.
func (q *exportQueue) next(timeout time.Duration) (Profile, context.Context, context.CancelFunc, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.cancel = nil
	for len(q.pending) == 0 && !q.closed {
		q.ready.Wait()
	}
	if len(q.pending) == 0 {
		return Profile{}, nil, nil, false
	}
	prof := q.pending[0]
	q.pending = append(q.pending[:0], q.pending[1:]...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if !q.closed {
		// The final profile's export is never cancelled by close.
		q.cancel = cancel
	}
	return prof, ctx, cancel, true
}

// exportAll hands prof to every exporter's queue.
func (p *Profiler) exportAll(prof Profile) {
	for _, q := range p.exports {
		if n := q.offer(prof); n > 0 {
			p.dropped(q, n)
		}
	}
}

// runExports sends q's profiles until it is closed and empty.
func (p *Profiler) runExports(q *exportQueue) {
	var lastErr error
	for {
		prof, ctx, cancel, ok := q.next(p.cfg.exportTTL)
		if !ok {
			// No export follows: log the failures not logged yet.
			due, failures, err := q.fails.record(nil, time.Now(), p.cfg.interval, true)
			p.logExport(q, lastErr, due, failures, err)
			return
		}
		begin := time.Now()
		err := q.exp.Export(ctx, prof)
		stopped := ctx.Err() == context.Canceled // by close
		cancel()
		switch {
		case err == nil:
			p.exported.Add(1)
		case stopped:
			p.exportDropped.Add(1)
			err = errExportCancelled
		default:
			p.exportErrors.Add(1)
		}
		lastErr = err
		due, failures, lastFailure := q.fails.record(err, begin, p.cfg.interval, false)
		p.logExport(q, err, due, failures, lastFailure)
	}
}

var (
	errExportDropped   = errors.New("a profile was dropped unsent: the exporter is slower than the flush interval")
	errExportCancelled = errors.New("an export was cancelled at Stop, for the final profile")
)

// dropped counts n profiles pushed out of q unsent, and logs them as
// failures when a line is due.
func (p *Profiler) dropped(q *exportQueue, n int) {
	p.exportDropped.Add(int64(n))
	for range n {
		due, failures, lastFailure := q.fails.record(errExportDropped, time.Now(), p.cfg.interval, false)
		p.logExport(q, errExportDropped, due, failures, lastFailure)
	}
}

// logExport logs, when a line is due (see failureLog), the failures of q
// since the last line: as an error if err, the outcome of the last
// attempt, is one, else as a recovery.
func (p *Profiler) logExport(q *exportQueue, err error, due bool, failures int64, lastFailure error) {
	switch {
	case !due:
	case err != nil:
		p.cfg.logger.Error("profiler: exporting heap profile failed", "exporter", q.name, "err", lastFailure, "failures", failures)
	default:
		p.cfg.logger.Warn("profiler: exporting heap profiles again after failures", "exporter", q.name, "err", lastFailure, "failures", failures)
	}
}

// stopExports closes every exporter's queue, after the final profile is
// queued, and waits for the exports to end, at most the export timeout
// and a second of grace for an exporter slow to heed its context's end:
// Stop must return even if an exporter never does.
func (p *Profiler) stopExports() {
	if len(p.exports) == 0 {
		return
	}
	for _, q := range p.exports {
		if n := q.close(); n > 0 {
			p.dropped(q, n)
		}
	}
	ended := make(chan struct{})
	go func() {
		p.exporting.Wait()
		close(ended)
	}()
	t := time.NewTimer(p.cfg.exportTTL + time.Second)
	defer t.Stop()
	select {
	case <-ended:
	case <-t.C:
		p.cfg.logger.Error("profiler: an exporter did not return in time at Stop; its last export may be lost", "timeout", p.cfg.exportTTL)
	}
}
