package leakrank

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"

	"github.com/google/pprof/profile"
)

// DefaultMaxProfileSize bounds a profile when ReadOptions.MaxSize is zero:
// 256 MiB, both the file and, if it is gzipped, its decompressed contents.
// The profiler's profiles are a few MiB decompressed, and stay within tens
// of MiB even at its default bounds with every sample at a different stack
// of full depth; the rest leaves room for raised bounds and other programs'
// profiles. Beyond that a profile is more likely a gzip bomb, a few hundred
// KiB that decompress to gigabytes, and parsing takes several times the
// decompressed size in memory.
const DefaultMaxProfileSize = 256 << 20

// ErrTooLarge is what the error for a profile larger than
// ReadOptions.MaxSize wraps.
var ErrTooLarge = errors.New("profile too large")

// ReadOptions tune how profiles are read. The zero value means the
// documented defaults.
type ReadOptions struct {
	// MaxSize bounds the bytes of a profile file and, if it is gzipped,
	// of its decompressed contents; zero means DefaultMaxProfileSize. A
	// larger profile is an error that wraps ErrTooLarge.
	MaxSize int64
}

// maxSize returns the bound MaxSize stands for, or an error that names it
// if it is negative.
func (o ReadOptions) maxSize() (int64, error) {
	switch {
	case o.MaxSize == 0:
		return DefaultMaxProfileSize, nil
	case o.MaxSize < 0:
		return 0, fmt.Errorf("leakrank: ReadOptions.MaxSize %d: must be positive, or 0 for the default", o.MaxSize)
	}
	return o.MaxSize, nil
}

// ReadProfile reads and parses the profile file at path. It reads only a
// regular file, or a link to one; anything else is an error, a named pipe
// above all, whose open would wait for a writer that may never come. A file
// larger than opts.MaxSize, on disk or decompressed, is an error that
// wraps ErrTooLarge.
func ReadProfile(path string, opts ReadOptions) (*profile.Profile, error) {
	limit, err := opts.maxSize()
	if err != nil {
		return nil, err
	}
	data, err := readFile(path, limit)
	if err != nil {
		return nil, err
	}
	return parseProfile(path, data, limit)
}

// ParseProfile parses data, a pprof profile (gzipped or not) named name.
// It is what `go tool pprof` runs on a file, so what it rejects pprof
// would too; but data larger than opts.MaxSize, as given or decompressed,
// is an error that wraps ErrTooLarge.
func ParseProfile(name string, data []byte, opts ReadOptions) (*profile.Profile, error) {
	limit, err := opts.maxSize()
	if err != nil {
		return nil, err
	}
	if n := int64(len(data)); n > limit {
		return nil, fmt.Errorf("%s: %w: %s, more than %s", name, ErrTooLarge, formatSize(n), formatSize(limit))
	}
	return parseProfile(name, data, limit)
}

func parseProfile(name string, data []byte, limit int64) (*profile.Profile, error) {
	if isGzip(data) {
		var err error
		if data, err = gunzip(name, data, limit); err != nil {
			return nil, err
		}
		// profile.ParseData would decompress this layer too, and with no
		// bound; pprof, which decompresses once, rejects it anyway.
		if isGzip(data) {
			return nil, fmt.Errorf("%s: not a pprof profile: gzip within gzip", name)
		}
	}
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a pprof profile: %v", name, err)
	}
	return p, nil
}

// isGzip reports whether data starts with the gzip magic number, the test
// profile.ParseData makes.
func isGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// gunzip returns the decompressed contents of data, a gzip stream, if they
// are no more than limit bytes; profile.ParseData would decompress them
// with no bound. It decompresses twice: first only to count the bytes,
// through a small buffer, so that a gzip bomb costs the time to
// decompress up to limit bytes but no memory; then into a buffer of the
// size counted, allocated once. For a real profile the second pass is
// little beside the parsing that follows.
func gunzip(name string, data []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: not a pprof profile: decompressing: %v", name, err)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(zr, saturatingAdd(limit, 1)))
	if err != nil {
		return nil, fmt.Errorf("%s: not a pprof profile: decompressing: %v", name, err)
	}
	if n > limit || n > math.MaxInt { // the latter only where int has 32 bits
		return nil, fmt.Errorf("%s: %w: more than %s decompressed", name, ErrTooLarge, formatSize(limit))
	}
	if err := zr.Reset(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%s: not a pprof profile: decompressing: %v", name, err)
	}
	out := make([]byte, n)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, fmt.Errorf("%s: not a pprof profile: decompressing: %v", name, err)
	}
	return out, nil
}

// readFile returns the contents of path, which must be a regular file of
// at most limit bytes, or a link to one.
func readFile(path string, limit int64) ([]byte, error) {
	// Stat before Open: opening a named pipe for reading blocks until
	// something opens it for writing. Stat follows links, so a link to a
	// pipe is caught too.
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(path, info.Mode()); err != nil {
		return nil, err
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %s on disk, more than %s", path, ErrTooLarge, formatSize(info.Size()), formatSize(limit))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if hint := info.Size() + bytes.MinRead; hint <= math.MaxInt {
		buf.Grow(int(hint)) // room to see EOF without growing
	}
	// Bounded again: the file may have grown since Stat.
	if _, err := buf.ReadFrom(io.LimitReader(f, saturatingAdd(limit, 1))); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("%s: %w: more than %s on disk", path, ErrTooLarge, formatSize(limit))
	}
	return buf.Bytes(), nil
}

// checkRegular returns an error naming path and what it is if mode is not
// that of a regular file.
func checkRegular(path string, mode fs.FileMode) error {
	if mode.IsRegular() {
		return nil
	}
	var kind string
	switch {
	case mode.IsDir():
		kind = "a directory"
	case mode&fs.ModeNamedPipe != 0:
		kind = "a named pipe"
	case mode&fs.ModeSocket != 0:
		kind = "a socket"
	case mode&fs.ModeDevice != 0:
		kind = "a device"
	default:
		kind = "mode " + mode.Type().String()
	}
	return fmt.Errorf("%s: not a regular file (%s)", path, kind)
}

// formatSize formats n bytes exactly, in the largest binary unit that
// divides it: "256MiB", "1536KiB", "1000B".
func formatSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	u := 0
	for n != 0 && n%1024 == 0 && u < len(units)-1 {
		n /= 1024
		u++
	}
	return fmt.Sprintf("%d%s", n, units[u])
}
