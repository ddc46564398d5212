//go:build !linux

package profiler

import (
	"fmt"
	"runtime"
	"time"
)

// takeRetainers is not available here: the dump is kept in memory with
// memfd_create and parsed by re-running /proc/self/exe, both Linux's.
func takeRetainers(time.Duration) (*retainersDump, error) {
	return nil, fmt.Errorf("not supported on %s: retainers profiles need Linux", runtime.GOOS)
}
