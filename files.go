package profiler

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Profile files are named heap-<UTC time>-<pid>.pb.gz, the time to the
// nanosecond first, so that names sort by time across processes and a
// directory listing reads as a time series.
const timeLayout = "20060102T150405.000000000"

var (
	profileName = regexp.MustCompile(`^heap-\d{8}T\d{6}\.\d{9}Z-\d+\.pb\.gz$`)
	tempPrefix  = ".heap-"
	tempSuffix  = ".tmp"
)

// fileStore writes profile files atomically and prunes old ones: it keeps
// every file from the last `all`, then one per hour back to `hourly`, and
// never more than maxFiles. It is safe for concurrent use.
type fileStore struct {
	dir      string
	maxFiles int
	all      time.Duration
	hourly   time.Duration
	pid      int

	mu   sync.Mutex
	last time.Time // time in the newest name, kept strictly increasing
}

func newFileStore(dir string, maxFiles int, all, hourly time.Duration) (*fileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	return &fileStore{dir: dir, maxFiles: maxFiles, all: all, hourly: hourly, pid: os.Getpid()}, nil
}

// write creates a new profile file holding data, then deletes the files
// retention no longer wants. The data goes to a temporary file that is
// synced and renamed into place, so a reader never sees a partial profile;
// on any failure the temporary file is removed.
func (s *fileStore) write(now time.Time, data []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	// The directory may have been removed since Start; recreate it rather
	// than fail every write until a restart.
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return "", fmt.Errorf("creating output directory: %w", err)
	}
	f, err := os.CreateTemp(s.dir, tempPrefix+"*"+tempSuffix) // mode 0600
	if err != nil {
		return "", fmt.Errorf("creating profile file: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing profile file: %w", err)
	}

	path := filepath.Join(s.dir, s.nextName(now))
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("renaming profile file: %w", err)
	}
	syncDir(s.dir)
	if err := s.prune(now, filepath.Base(path)); err != nil {
		return path, fmt.Errorf("removing old profile files: %w", err)
	}
	return path, nil
}

// nextName returns a file name for a profile taken at now, unique within
// this process even for two writes in the same nanosecond.
func (s *fileStore) nextName(now time.Time) string {
	now = now.UTC().Round(0)
	if !now.After(s.last) {
		now = s.last.Add(time.Nanosecond)
	}
	s.last = now
	return "heap-" + now.Format(timeLayout) + "Z-" + strconv.Itoa(s.pid) + ".pb.gz"
}

// prune deletes the profile files that retention no longer wants, judged
// by the time in their names, never the one just written (newest), and
// temporary files that a crashed writer left behind more than an hour ago.
func (s *fileStore) prune(now time.Time, newest string) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var profiles []string
	var errs []error
	remove := func(name string) {
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case profileName.MatchString(name):
			profiles = append(profiles, name)
		case isStaleTemp(e):
			remove(name)
		}
	}
	slices.Sort(profiles) // oldest first
	for _, name := range s.expired(profiles, now, newest) {
		remove(name)
	}
	return errors.Join(errs...)
}

// expired returns the files among profiles (sorted, oldest first) to
// delete at time now: a file older than `all` survives only as the oldest
// of its hour while it is younger than `hourly`, so a leak that takes a day
// to show still has a day of hourly snapshots to rank; past that, and past
// maxFiles files in all, the oldest go first. newest, the file just
// written, is never deleted, so files dated in the future (another host's
// clock, a clock stepped back) cannot push it out. A name whose time does
// not parse is left alone and not counted: it is not one of ours.
func (s *fileStore) expired(profiles []string, now time.Time, newest string) []string {
	var keep, drop []string
	lastHour := time.Time{}
	for _, name := range profiles {
		t, ok := fileTime(name)
		if !ok {
			continue
		}
		age := now.Sub(t)
		switch {
		case name == newest || age <= s.all:
			keep = append(keep, name)
		case age <= s.hourly && !t.Truncate(time.Hour).Equal(lastHour):
			lastHour = t.Truncate(time.Hour)
			keep = append(keep, name)
		default:
			drop = append(drop, name)
		}
	}
	for extra := len(keep) - s.maxFiles; extra > 0; keep = keep[1:] {
		if keep[0] != newest {
			drop = append(drop, keep[0])
			extra--
		}
	}
	return drop
}

// fileTime returns the time in a profile file's name.
func fileTime(name string) (time.Time, bool) {
	stamp := strings.TrimPrefix(name, "heap-")
	if len(stamp) < len(timeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(timeLayout, stamp[:len(timeLayout)])
	return t, err == nil
}

func isStaleTemp(e fs.DirEntry) bool {
	name := e.Name()
	if len(name) < len(tempPrefix)+len(tempSuffix) || name[:len(tempPrefix)] != tempPrefix || filepath.Ext(name) != tempSuffix {
		return false
	}
	info, err := e.Info()
	return err == nil && time.Since(info.ModTime()) > time.Hour
}

// syncDir makes a rename durable where the platform allows it; failures
// are ignored because the file itself is already synced and complete.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
