package profiler

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// residentSet reads the resident set size of the process, the memory it
// has in RAM whoever allocated it (Go, C, mmap), from the second field of
// /proc/self/statm, in pages. The file is opened once and read again from
// its start, which makes procfs generate it afresh. It is not safe for
// concurrent use.
type residentSet struct {
	f        *os.File
	buf      [128]byte
	pageSize uint64
}

func (r *residentSet) open(root string) {
	r.f, _ = os.Open(filepath.Join(root, "proc", "self", "statm"))
	r.pageSize = uint64(os.Getpagesize())
}

// read returns the resident bytes, 0 if unknown.
func (r *residentSet) read() uint64 {
	if r.f == nil {
		return 0
	}
	n, err := r.f.ReadAt(r.buf[:], 0)
	if err != nil && err != io.EOF {
		return 0
	}
	// "size resident shared text lib data dt": skip size.
	_, rest, ok := bytes.Cut(r.buf[:n], []byte(" "))
	if !ok {
		return 0
	}
	var pages uint64
	digits := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			break
		}
		pages = pages*10 + uint64(c-'0')
		digits++
	}
	if digits == 0 || digits > 18 {
		return 0
	}
	return pages * r.pageSize
}

func (r *residentSet) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}
