package profiler

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// With WithLeakRetainers, a leak warning also puts on disk what holds the
// leak: a retainers profile, written beside the heap profiles. It is taken
// in a goroutine of its own, since the helper's parse takes seconds that
// the background loop's next profile should not wait for, and Stop waits
// for it, ending the parse early.

// leakRetainersGap is the least time between two retainers profiles taken
// for leak warnings: each stops the world.
const leakRetainersGap = time.Minute

// startLeakRetainers takes a retainers profile for the warning about top,
// at the profile taken at `at`, unless one is being taken, one was begun
// less than leakRetainersGap before, or Stop has begun.
func (p *Profiler) startLeakRetainers(top Suspect, at time.Time) {
	select {
	case <-p.done:
		return // the last profile of Stop: nothing may outlive it
	default:
	}
	if !p.leakRetainersOn.CompareAndSwap(false, true) {
		return
	}
	if !p.lastLeakRetainers.IsZero() && at.Sub(p.lastLeakRetainers) < leakRetainersGap {
		p.leakRetainersOn.Store(false)
		return
	}
	p.lastLeakRetainers = at
	p.leakRetainers.Add(1)
	go func() {
		defer p.leakRetainers.Done()
		defer p.leakRetainersOn.Store(false)
		p.writeLeakRetainers(top)
	}()
}

// writeLeakRetainers takes a retainers profile and writes it to the output
// directory, logging where, or why not.
func (p *Profiler) writeLeakRetainers(top Suspect) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var buf bytes.Buffer
	err := p.writeRetainers(ctx, &buf, p.maxRetainersPause())
	path := ""
	if err == nil {
		path, err = p.files.writeRetainers(time.Now(), buf.Bytes())
	}
	switch {
	case path != "":
		p.cfg.logger.Info("leak suspect retainers profile", "function", top.Function, "heap", top.Heap, "path", path)
		if err != nil { // written; only the deletion of old ones failed
			p.cfg.logger.Warn("profiler: pruning old retainers profiles failed", "dir", p.cfg.dir, "err", err)
		}
	case errors.Is(err, ErrStopped) || ctx.Err() != nil:
		// Stop came first: not a failure to report.
	default:
		p.cfg.logger.Warn("profiler: no retainers profile for the leak suspect", "function", top.Function, "heap", top.Heap, "err", err)
	}
}
