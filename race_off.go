//go:build !race

package profiler

// raceEnabled is true when built with -race; see race_on.go.
const raceEnabled = false
