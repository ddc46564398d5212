package heapdump

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"unsafe"
)

// memfdCreate is the number of the memfd_create system call, which the
// syscall package does not define for amd64.
var memfdCreate = map[string]uintptr{"amd64": 319, "arm64": 279, "riscv64": 279, "loong64": 279, "ppc64le": 360}

// dumpFile returns an empty file for a heap dump: a memfd, which holds the
// dump in memory only, else a file in t.TempDir(). Never a pipe: the dump
// stops the world, so a goroutine of this process cannot drain one.
func dumpFile(t *testing.T) *os.File {
	if nr, ok := memfdCreate[runtime.GOARCH]; ok {
		name := []byte("heapdump-test\x00")
		fd, _, errno := syscall.Syscall(nr, uintptr(unsafe.Pointer(&name[0])), 1 /* MFD_CLOEXEC */, 0)
		if errno == 0 {
			f := os.NewFile(fd, "memfd:heapdump-test")
			t.Cleanup(func() { f.Close() })
			return f
		}
		t.Logf("memfd_create: %v; using a file", errno)
	}
	return tempDumpFile(t)
}
