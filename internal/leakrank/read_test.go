package leakrank

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// A gzip bomb, 300 KiB that decompress to 300 MiB, fails at the limit
// without taking the memory it claims, and so does one wrapped in a
// second layer of gzip, which is small enough decompressed once: reading
// either allocates less than 16 MiB, a sixteenth of the default limit,
// where keeping what was decompressed would take all 256 MiB of it.
func TestParseProfileGzipBomb(t *testing.T) {
	bomb := leakranktest.GzipBomb(t, 300<<20)
	var twice bytes.Buffer
	zw := gzip.NewWriter(&twice)
	zw.Write(bomb)
	zw.Close()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"bomb.pb.gz", bomb, "bomb.pb.gz: profile too large: more than 256MiB decompressed"},
		{"twice.pb.gz", twice.Bytes(), "twice.pb.gz: not a pprof profile: gzip within gzip"},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := ParseProfile(tc.name, tc.data, ReadOptions{})
		runtime.ReadMemStats(&after)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if errors.Is(err, ErrTooLarge) != strings.Contains(tc.want, "too large") {
			t.Errorf("%s: errors.Is(%v, ErrTooLarge) = %v", tc.name, err, errors.Is(err, ErrTooLarge))
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
			t.Errorf("%s: %d bytes allocated, want less than 16 MiB", tc.name, alloc)
		}
	}
}

// A profile exactly MaxSize bytes long, decompressed or on disk, is read;
// one byte more is not.
func TestReadProfileMaxSize(t *testing.T) {
	p := leakranktest.LeakSeries(1)[0]
	gz := p.Encode(t)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gzPath, rawPath := filepath.Join(dir, "p.pb.gz"), filepath.Join(dir, "p.pb")
	if err := os.WriteFile(gzPath, gz, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rawPath, raw.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if int64(len(gz)) >= int64(raw.Len()) {
		t.Fatalf("gzipped profile of %d bytes, not smaller than its %d bytes", len(gz), raw.Len())
	}
	size := int64(raw.Len())
	for _, tc := range []struct {
		name  string
		read  func(ReadOptions) error
		limit int64
		want  string // "" for no error
	}{
		{"gzipped, at the limit", parseOf(gz), size, ""},
		{"gzipped, over", parseOf(gz), size - 1, "p: profile too large: more than " + formatSize(size-1) + " decompressed"},
		{"raw, at the limit", parseOf(raw.Bytes()), size, ""},
		{"raw, over", parseOf(raw.Bytes()), size - 1, "p: profile too large: " + formatSize(size) + ", more than " + formatSize(size-1)},
		{"file, at the limit", readOf(rawPath), size, ""},
		{"file, over", readOf(rawPath), size - 1, rawPath + ": profile too large: " + formatSize(size) + " on disk, more than " + formatSize(size-1)},
		{"gzipped file, at the limit", readOf(gzPath), size, ""},
		{"gzipped file, over", readOf(gzPath), size - 1, gzPath + ": profile too large: more than " + formatSize(size-1) + " decompressed"},
		{"gzipped file, over on disk", readOf(gzPath), int64(len(gz)) - 1, gzPath + ": profile too large: " + formatSize(int64(len(gz))) + " on disk"},
		{"negative limit", readOf(gzPath), -1, "leakrank: ReadOptions.MaxSize -1: must be positive, or 0 for the default"},
	} {
		err := tc.read(ReadOptions{MaxSize: tc.limit})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		case tc.want != "" && errors.Is(err, ErrTooLarge) != strings.Contains(tc.want, "too large"):
			t.Errorf("%s: errors.Is(%v, ErrTooLarge) = %v", tc.name, err, errors.Is(err, ErrTooLarge))
		}
	}
	if _, err := Load([]string{gzPath}, ReadOptions{MaxSize: -1}); err == nil || !strings.Contains(err.Error(), "ReadOptions.MaxSize -1") {
		t.Errorf("Load with a negative MaxSize: error %v", err)
	}
}

func parseOf(data []byte) func(ReadOptions) error {
	return func(o ReadOptions) error { _, err := ParseProfile("p", data, o); return err }
}

func readOf(path string) func(ReadOptions) error {
	return func(o ReadOptions) error { _, err := ReadProfile(path, o); return err }
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0B", 1000: "1000B", 1024: "1KiB", 1536 << 10: "1536KiB", DefaultMaxProfileSize: "256MiB", 1 << 62: "4EiB", -2048: "-2KiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
