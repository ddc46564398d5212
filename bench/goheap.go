package bench

import "github.com/leakhunt/profiler"

// goHeapOff leaves the Go runtime's own heap profile out of the profiler's
// output, so that a benchmark measures the hook's table alone. It also
// keeps Start from setting runtime.MemProfileRate to the sampling rate,
// which at rate 1 would make the runtime record every Go allocation of the
// benchmark. FlushGoHeap, which measures the Go heap source, leaves it on.
func goHeapOff() profiler.Option { return profiler.WithGoHeap(false) }
