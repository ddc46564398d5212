package leakrank

import (
	"cmp"
	"errors"
	"fmt"
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

// profilePaths returns the profile files args name: a directory stands
// for its files that match the first of dirPatterns that matches any, in
// name order, and any other argument for itself.
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
			out = append(out, arg)
			continue
		}
		matches, err := profilesIn(arg)
		if err != nil {
			return nil, err
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
			if ok, _ := filepath.Match(pattern, e.Name()); ok && !e.IsDir() {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, nil
}

// Load reads the profiles args name (see profilePaths) into snapshots
// ordered by time, the file name breaking ties. It fails, naming the file,
// if one cannot be read or is not a heap profile, and if two come from
// different programs.
func Load(args []string) ([]*Snapshot, error) {
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
			snaps[i], errs[i] = readSnapshot(f, cache)
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

func readSnapshot(path string, cache *siteCache) (*Snapshot, error) {
	p, err := ReadProfile(path)
	if err != nil {
		return nil, err
	}
	return newSnapshot(path, p, cache)
}
