//go:build !linux

package heapdump

import (
	"os"
	"testing"
)

// dumpFile returns an empty file in t.TempDir() for a heap dump. Never a
// pipe: the dump stops the world, so a goroutine of this process cannot
// drain one.
func dumpFile(t *testing.T) *os.File { return tempDumpFile(t) }
