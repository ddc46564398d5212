package leakrank

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"
)

// dirPatterns match the profile files of a directory, tried in order: the
// profiler's own names first, so that a delta profile or another program's
// profile saved beside them is not taken for a snapshot; else any gzipped
// profile, for a directory of profiles saved under other names.
var dirPatterns = []string{"heap-*.pb.gz", "*.pb.gz"}

// RetainersPattern matches the names of retainers profiles, which the
// profiler may write beside its heap profiles: a directory's profiles are
// never those (NewSnapshot would refuse them), whatever pattern matches.
const RetainersPattern = "retainers-*.pb.gz"

// profilePaths returns the profile files args name: a directory stands
// for its regular files that match the first of dirPatterns that matches
// any, in name order, retainers profiles' names (RetainersPattern) aside,
// and any other argument for itself. Only regular files are profiles,
// since opening a named pipe for reading waits for a writer: given by
// name, anything else is an error; in a directory, it is skipped. A link
// counts as what it leads to.
func profilePaths(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("no profiles given")
	}
	var out []string
	for _, arg := range args {
		info, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if err := checkRegular(arg, info.Mode()); err != nil {
				return nil, err
			}
			out = append(out, arg)
			continue
		}
		matches, err := profilesIn(arg)
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 && len(RetainersFiles([]string{arg})) > 0 {
			return nil, fmt.Errorf("no heap profiles in %s, only retainers profiles (%s), which are no snapshots", arg, RetainersPattern)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("no profiles in %s: no file matches %s", arg, strings.Join(dirPatterns, " or "))
		}
		out = append(out, matches...)
	}
	return out, nil
}

// profilesIn returns the paths of the profile files in dir, in name order.
func profilesIn(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	for _, pattern := range dirPatterns {
		var out []string
		for _, e := range entries {
			if ok, _ := filepath.Match(pattern, e.Name()); !ok || isRetainersName(e.Name()) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			regular, err := isRegular(path, e)
			if err != nil {
				return nil, err
			}
			if regular {
				out = append(out, path)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, nil
}

func isRetainersName(name string) bool {
	ok, _ := filepath.Match(RetainersPattern, name)
	return ok
}

// RetainersFiles returns the retainers profiles in the directories among
// args, the regular files whose names match RetainersPattern, in name
// order, which is the order of time for the profiler's names. It is for a
// hint: a directory that cannot be read has none.
func RetainersFiles(args []string) []string {
	var out []string
	for _, arg := range args {
		entries, err := os.ReadDir(arg)
		if err != nil {
			continue // not a directory, or Load has said why
		}
		for _, e := range entries {
			path := filepath.Join(arg, e.Name())
			if !isRetainersName(e.Name()) {
				continue
			}
			if regular, err := isRegular(path, e); err == nil && regular {
				out = append(out, path)
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(filepath.Base(a), filepath.Base(b)) })
	return out
}

// isRegular reports whether e, found at path, is a regular file or a link
// to one. A link that leads nowhere is not.
func isRegular(path string, e fs.DirEntry) (bool, error) {
	if e.Type()&fs.ModeSymlink == 0 {
		return e.Type().IsRegular(), nil
	}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return info.Mode().IsRegular(), nil
}

// Load reads the profiles args name (see profilePaths) into snapshots
// ordered by time, the file name breaking ties. It fails, naming the file,
// if one cannot be read (see ReadProfile) or is not a heap snapshot (see
// NewSnapshot), and if two come from different programs.
func Load(args []string, opts ReadOptions) ([]*Snapshot, error) {
	if _, err := opts.maxSize(); err != nil {
		return nil, err
	}
	paths, err := profilePaths(args)
	if err != nil {
		return nil, err
	}
	snaps := make([]*Snapshot, len(paths))
	errs := make([]error, len(paths))
	cache := newSiteCache()
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, f := range paths {
		g.Go(func() error {
			snaps[i], errs[i] = readSnapshot(f, opts, cache)
			return nil
		})
	}
	g.Wait()
	// The first failure in file order, not in time, so the message is the
	// same on every run.
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(snaps, func(a, b *Snapshot) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	if err := CheckProgram(snaps); err != nil {
		return nil, err
	}
	return snaps, nil
}

func readSnapshot(path string, opts ReadOptions, cache *siteCache) (*Snapshot, error) {
	p, err := ReadProfile(path, opts)
	if err != nil {
		return nil, err
	}
	return newSnapshot(path, p, cache)
}
