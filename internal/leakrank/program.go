package leakrank

import (
	"fmt"
	"strings"

	"github.com/google/pprof/profile"
)

// Program identifies the executable a profile was taken from, by its main
// mapping: pprof's convention is that the first mapping is the main binary.
type Program struct {
	File    string
	BuildID string
}

func mainProgram(p *profile.Profile) Program {
	if len(p.Mapping) == 0 {
		return Program{}
	}
	return Program{File: p.Mapping[0].File, BuildID: p.Mapping[0].BuildID}
}

// Same reports whether p and q may be the same program: their build IDs
// match when both have one, else the base names of their files match when
// both have one. Profiles that say nothing about their program match any.
func (p Program) Same(q Program) bool {
	if p.BuildID != "" && q.BuildID != "" {
		return p.BuildID == q.BuildID
	}
	a, b := baseName(p.File), baseName(q.File)
	return a == "" || b == "" || a == b
}

func (p Program) String() string {
	switch {
	case p.File == "" && p.BuildID == "":
		return "an unnamed program"
	case p.BuildID == "":
		return p.File
	case p.File == "":
		return "build ID " + p.BuildID
	}
	return fmt.Sprintf("%s (build ID %s)", p.File, p.BuildID)
}

// baseName is the last element of a path written on any platform: the
// profile may come from Windows and be read on Linux.
func baseName(file string) string {
	return file[strings.LastIndexAny(file, `/\`)+1:]
}

// CheckProgram returns an error naming two snapshots from different
// programs, if there are any. Each snapshot is compared with one of every
// distinct Program before it, not just with the first snapshot: a first
// profile that names no program would match everything.
func CheckProgram(snaps []*Snapshot) error {
	var seen []*Snapshot
	for _, s := range snaps {
		known := false
		for _, o := range seen {
			if !o.Program.Same(s.Program) {
				return fmt.Errorf("profiles from different programs: %s is from %s, %s is from %s; pass the profiles of one program",
					o.Path, o.Program, s.Path, s.Program)
			}
			known = known || o.Program == s.Program
		}
		if !known {
			seen = append(seen, s)
		}
	}
	return nil
}
