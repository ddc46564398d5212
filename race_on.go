//go:build race

package profiler

// raceEnabled is true when built with -race. The sampler's countdowns are
// read and written without atomics, racily by design (see sampler.go);
// under the race detector they use atomic operations instead.
const raceEnabled = true
