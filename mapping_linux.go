package profiler

import (
	"os"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/procmaps"
)

// readMappings returns the executable mappings of this process, with build
// IDs, so that pprof can match locations to binaries (-lines, -disasm) and
// merge our profiles with runtime/pprof's.
func readMappings() []*profile.Mapping {
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return fallbackMappings()
	}
	var out []*profile.Mapping
	for _, m := range procmaps.Parse(data) {
		out = append(out, &profile.Mapping{
			ID:              uint64(len(out) + 1),
			Start:           m.Start,
			Limit:           m.Limit,
			Offset:          m.Offset,
			File:            m.File,
			BuildID:         procmaps.BuildID(m.File),
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
