package profiler

import (
	"sync"
	"time"
)

// failureLog decides when the failures of an operation repeated in the
// background, a profile write or an export, are logged.
//
// An operation that keeps failing, on a full disk or against a dead
// backend, would otherwise log a line per attempt: one per tick, and one
// per Flush for a caller that flushes in a loop. Instead a failure is
// logged only if the last line about failures is a flush interval old,
// less a tenth of it; each line counts the failures since the one before
// (failures=N, this one included). The tenth is slack for the ticks: each
// starts its work a little late, by varying amounts, so a line due only a
// full interval after the last would skip every other tick.
//
// Failures not yet logged are logged when the operation succeeds again,
// once a line is due, and at the latest by the final attempt at Stop, so
// the counts in the log add up to the counter in Stats.
type failureLog struct {
	mu       sync.Mutex
	failures int64     // failed attempts since the last line
	err      error     // the error of the last of them
	logged   time.Time // when the last line about failures was due
}

// record notes the outcome of an attempt begun at begin, and reports
// whether a line is due now, with the failures it counts and the last of
// their errors. final says the attempt is the last one, at Stop.
func (l *failureLog) record(err error, begin time.Time, interval time.Duration, final bool) (due bool, failures int64, lastErr error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failures++
		l.err = err
	}
	failures, lastErr = l.failures, l.err
	due = failures > 0 && (l.logged.IsZero() || final || begin.Sub(l.logged) >= interval-interval/10)
	if due {
		l.failures, l.err, l.logged = 0, nil, begin
	}
	return due, failures, lastErr
}
