package bench

import (
	"testing"
	"time"

	"github.com/leakhunt/profiler"
)

// startProfiler starts a profiler for b with opts, writing to a temporary
// directory and never flushing in the background during the measurement,
// and stops it when b's run ends (after the timer stopped).
func startProfiler(b testing.TB, opts ...profiler.Option) *profiler.Profiler {
	b.Helper()
	all := append([]profiler.Option{
		profiler.WithOutputDir(b.TempDir()),
		profiler.WithFlushInterval(time.Hour),
	}, opts...)
	p, err := profiler.Start(all...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := p.Stop(); err != nil {
			b.Errorf("Stop: %v", err)
		}
	})
	return p
}
