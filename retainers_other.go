//go:build !linux

package profiler

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// takeRetainers is not available here: the dump is kept in memory with
// memfd_create and parsed by re-running /proc/self/exe, both Linux's.
func takeRetainers(context.Context, time.Duration, []uint64) (*retainersDump, error) {
	return nil, fmt.Errorf("%w on %s: retainers profiles need Linux", errRetainersUnsupported, runtime.GOOS)
}
