//go:build !race

package profiler

// raceEnabled says the tests run under the race detector (race_test.go).
const raceEnabled = false
