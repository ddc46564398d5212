//go:build !unix

package bench

import "time"

// processCPUTime reports false: there is no portable way to read the
// process's CPU time here, and the benchmarks then report wall time alone.
func ProcessCPUTime() (time.Duration, bool) { return 0, false }
