//go:build race

package profiler

// raceEnabled says the tests run under the race detector, which slows
// single-goroutine computation tenfold and has nothing to check in it.
const raceEnabled = true
