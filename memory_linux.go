package profiler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The memory cgroup of the process (Documentation/admin-guide/cgroup-v2.rst
// and cgroup-v1/memory.rst in the kernel's tree).
//
// Usage is the working set, as the kubelet counts it for eviction (and
// cAdvisor for container_memory_working_set_bytes): the memory charged to
// the cgroup less the file pages on its inactive list. The kernel reclaims
// those first when the cgroup reaches its limit, and kills only when
// reclaim fails, so the working set is what approaches the limit before an
// OOM kill, while the charge sits near the limit whenever the page cache
// has filled it.
//
// The limit is the one that kills. In v2 that is memory.max; memory.high
// only throttles and reclaims. A limit set on an ancestor binds too (a
// Kubernetes pod's cgroup holds one for all its containers), so the
// effective limit is the lowest memory.max of the cgroup and its ancestors
// up to the root of the mount. Ancestors above it, hidden by a cgroup
// namespace, cannot be read; in practice the container's own cgroup holds
// its limit. In v1 memory.stat's hierarchical_memory_limit already folds in
// the ancestors; memory.limit_in_bytes, the cgroup's own, serves where it
// is missing.
//
// Limits change at run time (a vertical pod autoscaler resizes pods in
// place), so they are read on every read, like the usage. Every file is
// opened once, when the cgroup is found, and read again from its start
// with pread, which makes cgroupfs generate it afresh: one system call a
// file and no allocation, where opening each time would cost three calls
// and an os.File.

// cgroupMemory reads the memory figures of the process's cgroup. It is not
// safe for concurrent use.
type cgroupMemory struct {
	v1    bool
	dir   string   // the cgroup's directory
	top   string   // the directory its file system is mounted on
	usage *os.File // v2 memory.current, v1 memory.usage_in_bytes
	stat  *os.File // memory.stat

	// limits holds, in v2, memory.max of the cgroup and of each ancestor
	// that has one; in v1, memory.limit_in_bytes, read only when memory.stat
	// has no hierarchical_memory_limit.
	limits []*os.File

	buf []byte // the last file read, kept for the next

	// failed is why the figures are unknown; once set, read reads nothing.
	failed error
}

// noLimit is the least value that is no limit. v1 shows "unlimited" as
// PAGE_COUNTER_MAX pages: math.MaxInt64 rounded down to the page size,
// 9223372036854771712 with 4 KiB pages and less with larger ones. No
// machine has anywhere near 4 EiB, so anything from there up is none.
const noLimit = 1 << 62

var (
	errCgroupClosed = errors.New("memory reader closed")
	errNoMemoryLine = errors.New("no memory cgroup in /proc/self/cgroup")
)

// open finds the memory cgroup of the process, under root, opens its files
// and reads them once, so that failed says at once whether they can be
// read.
func (c *cgroupMemory) open(root string) {
	if err := c.find(root); err != nil {
		c.failed = err
		return
	}
	if err := c.openFiles(); err != nil {
		c.fail(err)
		return
	}
	c.buf = make([]byte, 8<<10) // fits memory.stat; grown if not
	c.read()
}

// describe names the cgroup in errors.
func (c *cgroupMemory) describe() string {
	if c.v1 {
		return "memory cgroup v1 " + c.dir
	}
	return "cgroup v2 " + c.dir
}

// find sets c.dir, c.top and c.v1 from /proc/self/cgroup and
// /proc/self/mountinfo under root.
func (c *cgroupMemory) find(root string) error {
	cgroups, err := os.ReadFile(filepath.Join(root, "/proc/self/cgroup"))
	if err != nil {
		return fmt.Errorf("not in a cgroup: %w", err)
	}
	mounts, err := os.ReadFile(filepath.Join(root, "/proc/self/mountinfo"))
	if err != nil {
		return fmt.Errorf("finding the cgroup file system: %w", err)
	}
	dir, top, v1, err := memoryCgroupDir(string(cgroups), string(mounts))
	if err != nil {
		return err
	}
	c.dir, c.top, c.v1 = filepath.Join(root, dir), filepath.Join(root, top), v1
	return nil
}

// memoryCgroupDir returns the directory of the memory cgroup that
// procCgroup (the text of /proc/self/cgroup) names, and the mount point of
// its file system, from mountinfo (/proc/self/mountinfo); v1 is whether it
// is a cgroup v1 hierarchy.
//
// Each line of /proc/self/cgroup is "hierarchy-ID:controllers:path". v2 has
// ID 0 and no controllers; a v1 hierarchy lists its controllers, comma
// separated. A controller is in one hierarchy at most, so a v1 memory line
// wins over the v2 one: a hybrid host mounts v2 for systemd alone.
func memoryCgroupDir(procCgroup, mountinfo string) (dir, top string, v1 bool, err error) {
	var path string
	found := false
	for line := range strings.Lines(procCgroup) {
		id, rest, ok1 := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
		controllers, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			continue
		}
		if id != "0" && hasField(controllers, "memory") {
			path, v1, found = p, true, true
			break
		}
		if id == "0" && controllers == "" {
			path, found = p, true
		}
	}
	if !found {
		return "", "", false, errNoMemoryLine
	}
	if dir, top, ok := cgroupMountDir(mountinfo, path, v1); ok {
		return dir, top, v1, nil
	}
	fsType := "cgroup2"
	if v1 {
		fsType = "cgroup memory"
	}
	return "", "", v1, fmt.Errorf("no %s mount holding %s in /proc/self/mountinfo", fsType, path)
}

// cgroupMountDir returns the directory of cgroup path, and its mount point,
// in the first cgroup2 mount (if v1, cgroup mount with the memory
// controller) of mountinfo whose root holds path.
//
// A line of mountinfo (proc_pid_mountinfo(5)) is
//
//	36 35 98:0 /root /mount/point rw,noatime master:1 - fstype source super,options
//
// with spaces, tabs, newlines and backslashes in paths escaped in octal.
// The cgroup's directory is the mount point joined with the path less the
// mount's root. In a container with a cgroup namespace, the cgroup path is
// "/" and so is the root of the mount, which is the container's cgroup. A
// path outside the namespace starts with "/.."; no mount reaches it.
func cgroupMountDir(mountinfo, path string, v1 bool) (dir, top string, found bool) {
	for line := range strings.Lines(mountinfo) {
		fields, super, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " - ")
		if !ok {
			continue
		}
		f := strings.Fields(fields)
		s := strings.Fields(super)
		if len(f) < 5 || len(s) < 1 {
			continue
		}
		switch {
		case v1 && s[0] == "cgroup" && len(s) >= 3 && hasField(s[2], "memory"):
		case !v1 && s[0] == "cgroup2":
		default:
			continue
		}
		root, mnt := unescapeMountPath(f[3]), unescapeMountPath(f[4])
		rel := path
		if root != "/" {
			r, ok := strings.CutPrefix(path, root)
			if !ok || (r != "" && r[0] != '/') {
				continue // not under this mount's root
			}
			rel = r
		}
		if rel == "/.." || strings.HasPrefix(rel, "/../") {
			continue
		}
		return filepath.Join(mnt, rel), mnt, true
	}
	return "", "", false
}

// hasField reports whether the comma-separated list holds field.
func hasField(list, field string) bool {
	for f := range strings.SplitSeq(list, ",") {
		if f == field {
			return true
		}
	}
	return false
}

// unescapeMountPath undoes the octal escapes (\040 for a space) of a path
// in mountinfo (mangle_path in the kernel's fs/seq_file.c).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }

// openFiles opens the cgroup's files: those of c.dir, and in v2 memory.max
// of each ancestor up to c.top that has one (the host's root cgroup has
// none; neither has a cgroup whose parent does not enable the memory
// controller for it).
func (c *cgroupMemory) openFiles() error {
	usageName, limitName := "memory.current", "memory.max"
	if c.v1 {
		usageName, limitName = "memory.usage_in_bytes", "memory.limit_in_bytes"
	}
	var err error
	if c.usage, err = os.Open(filepath.Join(c.dir, usageName)); err != nil {
		return err
	}
	if c.stat, err = os.Open(filepath.Join(c.dir, "memory.stat")); err != nil {
		return err
	}
	if c.v1 {
		f, err := os.Open(filepath.Join(c.dir, limitName))
		if err != nil {
			return err
		}
		c.limits = append(c.limits, f)
		return nil
	}
	for d := c.dir; ; d = filepath.Dir(d) {
		f, err := os.Open(filepath.Join(d, limitName))
		switch {
		case err == nil:
			c.limits = append(c.limits, f)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if d == c.top || filepath.Dir(d) == d {
			return nil
		}
	}
}

// read returns the cgroup's working set and its effective limit (0 if
// none), both 0 once a file has failed to read or parse, failed saying why.
func (c *cgroupMemory) read() (usage, limit uint64) {
	if c.failed != nil {
		return 0, 0
	}
	usage, limit, err := c.readFiles()
	if err != nil {
		c.fail(err)
		return 0, 0
	}
	return usage, limit
}

// fail makes the figures unknown for err, for good: a cgroup file that
// fails once has no reason to read the next time, and figures that came
// and went would show a limit that vanishes and returns.
func (c *cgroupMemory) fail(err error) {
	c.closeFiles()
	c.failed = fmt.Errorf("%s: %w", c.describe(), err)
}

func (c *cgroupMemory) readFiles() (usage, limit uint64, err error) {
	b, err := c.load(c.usage)
	if err != nil {
		return 0, 0, err
	}
	charged, ok := parseCgroupNumber(b)
	if !ok {
		return 0, 0, fmt.Errorf("%s: %q is not a number", c.relName(c.usage), b)
	}
	if b, err = c.load(c.stat); err != nil {
		return 0, 0, err
	}
	inactiveKey := "inactive_file"
	if c.v1 {
		// Of the cgroup and its descendants, as memory.usage_in_bytes is.
		inactiveKey = "total_inactive_file"
	}
	inactive, hierLimit, hasHier, err := parseMemoryStat(b, inactiveKey)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", c.relName(c.stat), err)
	}
	if charged > inactive {
		// The two files are read at different moments; the working set
		// can be seen to go below zero when the cgroup is nearly empty.
		usage = charged - inactive
	}

	if c.v1 && hasHier {
		return usage, limitOrNone(hierLimit), nil
	}
	for _, f := range c.limits {
		if b, err = c.load(f); err != nil {
			return 0, 0, err
		}
		l, ok := parseCgroupLimit(b)
		if !ok {
			return 0, 0, fmt.Errorf("%s: %q is not a limit", c.relName(f), b)
		}
		if l > 0 && (limit == 0 || l < limit) {
			limit = l
		}
	}
	return usage, limit, nil
}

// relName names f relative to the cgroup's directory, which errors name
// already: "memory.current", "../memory.max".
func (c *cgroupMemory) relName(f *os.File) string {
	if rel, err := filepath.Rel(c.dir, f.Name()); err == nil {
		return rel
	}
	return f.Name()
}

// load reads all of f, from its start, into c.buf, which it grows if f
// does not fit, and returns the bytes read.
func (c *cgroupMemory) load(f *os.File) ([]byte, error) {
	for {
		n, err := f.ReadAt(c.buf, 0)
		if err == io.EOF {
			return c.buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
		c.buf = make([]byte, 2*len(c.buf)) // full: there may be more
	}
}

// parseMemoryStat returns, from the text of memory.stat, the value of
// inactiveKey and that of hierarchical_memory_limit (v1), if present. Lines
// are "key value"; others are skipped, unknown keys too, but inactiveKey
// must be there.
func parseMemoryStat(stat []byte, inactiveKey string) (inactive, hierLimit uint64, hasHier bool, err error) {
	hasInactive := false
	for len(stat) > 0 {
		var line []byte
		line, stat, _ = bytes.Cut(stat, []byte("\n"))
		key, value, ok := bytes.Cut(line, []byte(" "))
		if !ok {
			continue
		}
		switch string(key) {
		case inactiveKey:
			inactive, hasInactive = parseCgroupNumber(value)
		case "hierarchical_memory_limit":
			hierLimit, hasHier = parseCgroupNumber(value)
		}
	}
	if !hasInactive {
		return 0, 0, false, fmt.Errorf("no %s", inactiveKey)
	}
	return inactive, hierLimit, hasHier, nil
}

// parseCgroupNumber parses a decimal number, as cgroup files hold them,
// with or without a newline.
func parseCgroupNumber(b []byte) (uint64, bool) {
	n, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	return n, err == nil
}

// parseCgroupLimit parses v2's memory.max or v1's memory.limit_in_bytes,
// returning 0 for no limit: "max" in v2, a number from noLimit up in v1.
func parseCgroupLimit(b []byte) (uint64, bool) {
	if string(bytes.TrimSpace(b)) == "max" {
		return 0, true
	}
	n, ok := parseCgroupNumber(b)
	return limitOrNone(n), ok
}

// limitOrNone returns limit, or 0 if it is so high it is none.
func limitOrNone(limit uint64) uint64 {
	if limit >= noLimit {
		return 0
	}
	return limit
}

// close closes the cgroup's files; read reads nothing after.
func (c *cgroupMemory) close() {
	c.closeFiles()
	if c.failed == nil {
		c.failed = errCgroupClosed
	}
}

func (c *cgroupMemory) closeFiles() {
	for _, f := range append([]*os.File{c.usage, c.stat}, c.limits...) {
		if f != nil {
			f.Close() // read only: nothing to lose
		}
	}
	c.usage, c.stat, c.limits = nil, nil, nil
}
