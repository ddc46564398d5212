package profiler

import (
	"cmp"
	"os"
	"slices"
	"sync"

	"github.com/google/pprof/profile"
)

// The mappings of a profile tie its locations to the binary they are in, by
// address range and build ID, so that pprof can find the binary's symbols
// and disassembly (-lines, -disasm) and merge our profiles with
// runtime/pprof's. readMappings, per system, finds them.

// processMappings returns fresh copies of this process's executable
// mappings, read once, sorted by address and numbered.
func processMappings() []*profile.Mapping {
	base := mappingsOnce()
	out := make([]*profile.Mapping, len(base))
	for i, m := range base {
		c := *m
		out[i] = &c
	}
	slices.SortFunc(out, func(a, b *profile.Mapping) int { return cmp.Compare(a.Start, b.Start) })
	for i, m := range out {
		m.ID = uint64(i + 1)
	}
	return out
}

var mappingsOnce = sync.OnceValue(readMappings)

// fallbackMappings returns a single mapping for the executable where the
// address ranges are unknown. Its functions are already symbolized, so
// pprof needs no more than the file name.
func fallbackMappings() []*profile.Mapping {
	exe, _ := os.Executable()
	return []*profile.Mapping{{
		ID:              1,
		File:            exe,
		HasFunctions:    true,
		HasFilenames:    true,
		HasLineNumbers:  true,
		HasInlineFrames: true,
	}}
}

// mappingID returns the id of the mapping among maps (sorted by Start)
// that holds addr, 0 for none.
func mappingID(maps []*profile.Mapping, addr uint64) uint64 {
	i, _ := slices.BinarySearchFunc(maps, addr, func(m *profile.Mapping, addr uint64) int {
		if m.Limit <= addr {
			return -1
		}
		return 1
	})
	if i < len(maps) && maps[i].Start <= addr {
		return maps[i].ID
	}
	if len(maps) == 1 && maps[0].Limit == 0 {
		return maps[0].ID // the fallback mapping stands for everything
	}
	return 0
}
