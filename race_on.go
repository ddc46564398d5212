//go:build race

package profiler

// raceEnabled is true when built with -race. The race detector does not
// know that a pinned goroutine has its P to itself, so per-P counters use
// atomic operations under it.
const raceEnabled = true
