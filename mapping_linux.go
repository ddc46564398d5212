package profiler

import (
	"os"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/procmaps"
)

// readMappings returns the executable mappings of this process, with build
// IDs, so that pprof can match locations to binaries (-lines, -disasm) and
// merge our profiles with runtime/pprof's. The build IDs are the ones
// runtime/pprof records for the same files (see procmaps.BuildID): pprof
// keeps two mappings apart, and leakhunt diff two programs, when they differ.
func readMappings() []*profile.Mapping {
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return fallbackMappings()
	}
	var out []*profile.Mapping
	buildIDs := make(map[string]string) // by file: its text may be mapped in pieces
	for _, m := range procmaps.Parse(data) {
		id, ok := buildIDs[m.File]
		if !ok {
			id = procmaps.BuildID(m.File)
			buildIDs[m.File] = id
		}
		out = append(out, &profile.Mapping{
			ID:              uint64(len(out) + 1),
			Start:           m.Start,
			Limit:           m.Limit,
			Offset:          m.Offset,
			File:            m.File,
			BuildID:         id,
			HasFunctions:    true,
			HasFilenames:    true,
			HasLineNumbers:  true,
			HasInlineFrames: true,
		})
	}
	if len(out) == 0 {
		return fallbackMappings()
	}
	return out
}
