//go:build linux || darwin

package leakranktest

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// Mkfifo makes a named pipe at path.
func Mkfifo(t testing.TB, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("leakranktest: %v", err)
	}
}

// RunWithDeadline runs f, and fails t if f has not returned within limit:
// most likely it is waiting to open the named pipe fifo for reading, which
// blocks until a writer opens it. Then it opens fifo for writing and closes
// it, as often as it takes for f to return, which lets each such open
// return (and read nothing): a test of code that should not open a named
// pipe fails instead of hanging, and ends what it started.
func RunWithDeadline(t testing.TB, limit time.Duration, fifo string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timeout := time.After(limit)
	var release <-chan time.Time
	for {
		select {
		case <-done:
			return
		case <-timeout:
			t.Errorf("still running after %v: blocked opening the named pipe %s?", limit, fifo)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			release = tick.C
		case <-release:
			// O_NONBLOCK: the open fails at once, instead of waiting, if
			// no one has the pipe open for reading.
			if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
		}
	}
}
