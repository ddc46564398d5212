//go:build unix

package bench

import (
	"syscall"
	"time"
)

// ProcessCPUTime returns the user and system CPU time this process has
// used, all threads together (the GC's workers included), and true.
func ProcessCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
