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
// directory listing reads as a time series. A profile taken because memory
// ran high has a tag before the extension saying why: -peak or -limit<N>
// (see watcher).
const timeLayout = "20060102T150405.000000000"

var (
	profileName   = regexp.MustCompile(`^heap-\d{8}T\d{6}\.\d{9}Z-\d+(-peak|-limit\d{1,3})?\.pb\.gz$`)
	retainersName = regexp.MustCompile(`^retainers-\d{8}T\d{6}\.\d{9}Z-\d+\.pb\.gz$`)
	profileTag    = regexp.MustCompile(`-(peak|limit\d{1,3})\.pb\.gz$`)
	tempPrefix    = ".heap-"
	tempSuffix    = ".tmp"
)

// fileStore writes profile files atomically and prunes old ones: it keeps
// every file from the last `all`, then one per hour back to `hourly`, and
// never more than maxFiles, nor more bytes than each write's budget. It is
// safe for concurrent use.
type fileStore struct {
	dir      string
	maxFiles int
	all      time.Duration
	hourly   time.Duration
	pid      int

	// writeTemp is writeTempFile, replaced by tests that need a full
	// disk.
	writeTemp func(dir string, data []byte) (string, error)

	mu   sync.Mutex
	last time.Time // time in the newest name, kept strictly increasing
}

func newFileStore(dir string, maxFiles int, all, hourly time.Duration) (*fileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	return &fileStore{dir: dir, maxFiles: maxFiles, all: all, hourly: hourly, pid: os.Getpid(), writeTemp: writeTempFile}, nil
}

// profileFile is a profile file in the output directory.
type profileFile struct {
	name string
	size int64
}

// write creates a new profile file holding data, its name tagged with tag
// if not empty, then deletes the files
// retention no longer wants, keeping the profile files within maxBytes in
// all. The data goes to a temporary file that is synced and renamed into
// place, so a reader never sees a partial profile; on any failure the
// temporary file is removed.
//
// If the disk is full, write deletes old profile files to make room
// (makeRoom) and tries once more. maxBytes bounds what this store takes,
// so a disk full all the same is most likely another writer's doing;
// giving up would leave every new profile, the ones that show memory as it
// is now, unwritten until a person steps in, while the oldest files have
// had their turn. Only one retry: if it fails too, the space freed went to
// another writer, and the next write tries again.
func (s *fileStore) write(now time.Time, tag string, data []byte, maxBytes int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	// The directory may have been removed since Start; recreate it rather
	// than fail every write until a restart.
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return "", fmt.Errorf("creating output directory: %w", err)
	}
	path := filepath.Join(s.dir, s.nextName(now, tag))
	err := s.place(path, data)
	if isDiskFull(err) {
		freed, rerr := s.makeRoom(now, int64(len(data)), maxBytes)
		if freed > 0 {
			err = s.place(path, data)
		}
		if err != nil && rerr != nil {
			err = errors.Join(err, fmt.Errorf("making room: %w", rerr))
		}
	}
	if err != nil {
		return "", err
	}
	syncDir(s.dir)
	if err := s.prune(now, filepath.Base(path), maxBytes); err != nil {
		return path, fmt.Errorf("removing old profile files: %w", err)
	}
	return path, nil
}

// Retainers profiles (WithLeakRetainers) are named as heap profiles are,
// retainers-<UTC time>-<pid>.pb.gz, which heap retention leaves alone: the
// directory keeps the newest maxRetainersFiles of them, of any process,
// and nothing else bounds them. They are rare (one a minute at most, and
// only on a leak warning) and about as large as a heap profile.
const maxRetainersFiles = 4

// writeRetainers creates a new retainers profile file holding data, as
// write does, then deletes all but the newest maxRetainersFiles of them.
// On a full disk it fails: room is made for heap profiles, not these.
func (s *fileStore) writeRetainers(now time.Time, data []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return "", fmt.Errorf("creating output directory: %w", err)
	}
	path := filepath.Join(s.dir, "retainers-"+strings.TrimPrefix(s.nextName(now, ""), "heap-"))
	if err := s.place(path, data); err != nil {
		return "", err
	}
	syncDir(s.dir)
	entries, err := os.ReadDir(s.dir) // sorted by name: oldest first
	if err != nil {
		return path, fmt.Errorf("removing old retainers profiles: %w", err)
	}
	var names []string
	for _, e := range entries {
		if retainersName.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	var errs []error
	for _, name := range names[:max(0, len(names)-maxRetainersFiles)] {
		if name != filepath.Base(path) {
			errs = append(errs, s.remove(name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return path, fmt.Errorf("removing old retainers profiles: %w", err)
	}
	return path, nil
}

// place writes data to a temporary file and renames it to path.
func (s *fileStore) place(path string, data []byte) error {
	tmp, err := s.writeTemp(s.dir, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("renaming profile file: %w", err)
	}
	return nil
}

// writeTempFile writes data to a new temporary file in dir, synced, and
// returns its path; on failure it removes the file.
func writeTempFile(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*"+tempSuffix) // mode 0600
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
	return tmp, nil
}

// isDiskFull reports whether err says the disk, or the file system, has no
// room left.
func isDiskFull(err error) bool {
	for _, full := range diskFullErrors {
		if errors.Is(err, full) {
			return true
		}
	}
	return false
}

// nextName returns a file name for a profile taken at now, tagged with tag
// if not empty, unique within this process even for two writes in the same
// nanosecond.
func (s *fileStore) nextName(now time.Time, tag string) string {
	now = now.UTC().Round(0)
	if !now.After(s.last) {
		now = s.last.Add(time.Nanosecond)
	}
	s.last = now
	if tag != "" {
		tag = "-" + tag
	}
	return "heap-" + now.Format(timeLayout) + "Z-" + strconv.Itoa(s.pid) + tag + ".pb.gz"
}

// fileTag returns the tag of a profile file's name, "" if it has none.
func fileTag(name string) string {
	if m := profileTag.FindStringSubmatch(name); m != nil {
		return m[1]
	}
	return ""
}

// pinned returns the files retention keeps whatever their age, count or
// size: the newest of each tag, so that the profiles that explain the
// highest memory the process reached, and its nearest approach to its
// limit, are never the first deleted.
func pinned(profiles []profileFile) map[string]bool {
	newest := map[string]string{}
	for _, f := range profiles { // oldest first
		if tag := fileTag(f.name); tag != "" {
			newest[tag] = f.name
		}
	}
	pins := make(map[string]bool, len(newest))
	for _, name := range newest {
		pins[name] = true
	}
	return pins
}

// list returns the profile files in the directory, oldest first, and the
// temporary files that a crashed writer left behind more than an hour ago.
func (s *fileStore) list() (profiles, staleTemps []profileFile, err error) {
	entries, err := os.ReadDir(s.dir) // sorted by name: profiles oldest first
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		isProfile := profileName.MatchString(name)
		if !isProfile && !isTemp(name) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed since the listing
		}
		f := profileFile{name, info.Size()}
		switch {
		case isProfile:
			profiles = append(profiles, f)
		case time.Since(info.ModTime()) > time.Hour:
			staleTemps = append(staleTemps, f)
		}
	}
	return profiles, staleTemps, nil
}

// remove deletes the named file of the directory; one already gone is not
// an error.
func (s *fileStore) remove(name string) error {
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// prune deletes the profile files that retention no longer wants, judged
// by the time in their names and their sizes, never the one just written
// (newest), and temporary files that a crashed writer left behind more
// than an hour ago.
func (s *fileStore) prune(now time.Time, newest string, maxBytes int64) error {
	profiles, staleTemps, err := s.list()
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range staleTemps {
		errs = append(errs, s.remove(f.name))
	}
	for _, name := range s.expired(profiles, now, newest, maxBytes) {
		errs = append(errs, s.remove(name))
	}
	return errors.Join(errs...)
}

// makeRoom deletes files until need bytes are freed, or no candidate is
// left, and returns the bytes freed. It deletes first the temporary files
// that prune would, then the profile files that retention would delete
// anyway, then the oldest of those it would keep. Like retention, it
// deletes only profile files whose names hold a time, whichever process
// wrote them, and never any other file.
func (s *fileStore) makeRoom(now time.Time, need, maxBytes int64) (int64, error) {
	profiles, order, err := s.list()
	if err != nil {
		return 0, err
	}
	// No file is written yet to spare, hence no newest.
	expired := s.expired(profiles, now, "", maxBytes)
	for _, f := range profiles {
		if slices.Contains(expired, f.name) {
			order = append(order, f)
		}
	}
	pins := pinned(profiles)
	for _, f := range profiles {
		if _, ok := fileTime(f.name); ok && !slices.Contains(expired, f.name) && !pins[f.name] {
			order = append(order, f)
		}
	}
	for _, f := range profiles {
		if pins[f.name] {
			order = append(order, f)
		}
	}
	var freed int64
	var errs []error
	for _, f := range order {
		if freed >= need {
			break
		}
		if err := s.remove(f.name); err != nil {
			errs = append(errs, err)
			continue
		}
		freed += f.size
	}
	return freed, errors.Join(errs...)
}

// expired returns the files among profiles (sorted, oldest first) to
// delete at time now: a file older than `all` survives only as the oldest
// of its hour while it is younger than `hourly`, so a leak that takes a day
// to show still has a day of hourly snapshots to rank; past that, and past
// maxFiles files or maxBytes bytes in all, the oldest go first. newest, the
// file just written, is never deleted, so files dated in the future
// (another host's clock, a clock stepped back) cannot push it out, nor can
// its own size; nor are the pinned files, the newest of each tag. A name
// whose time does not parse is left alone and not counted: it is not one
// of ours.
func (s *fileStore) expired(profiles []profileFile, now time.Time, newest string, maxBytes int64) []string {
	pins := pinned(profiles)
	var keep []profileFile
	var drop []string
	lastHour := time.Time{}
	for _, f := range profiles {
		t, ok := fileTime(f.name)
		if !ok {
			continue
		}
		age := now.Sub(t)
		switch {
		case f.name == newest || pins[f.name] || age <= s.all:
			keep = append(keep, f)
		case age <= s.hourly && !t.Truncate(time.Hour).Equal(lastHour):
			lastHour = t.Truncate(time.Hour)
			keep = append(keep, f)
		default:
			drop = append(drop, f.name)
		}
	}
	files, bytes := len(keep), int64(0)
	for _, f := range keep {
		bytes += f.size
	}
	for _, f := range keep {
		if files <= s.maxFiles && bytes <= maxBytes {
			break
		}
		if f.name != newest && !pins[f.name] {
			drop = append(drop, f.name)
			files--
			bytes -= f.size
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

// isTemp reports whether name is that of a temporary file of a write,
// finished or not.
func isTemp(name string) bool {
	return len(name) >= len(tempPrefix)+len(tempSuffix) && strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, tempSuffix)
}

// syncDir makes a rename durable where the platform allows it; failures
// are ignored because the file itself is already synced and complete.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
