//go:build !linux

package profiler

import "github.com/google/pprof/profile"

// readMappings returns one mapping for the executable; other systems have
// no /proc/self/maps to read address ranges and build IDs from.
func readMappings() []*profile.Mapping { return fallbackMappings() }
