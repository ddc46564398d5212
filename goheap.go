package profiler

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/google/pprof/profile"
)

// The Go heap source. The runtime samples every Go allocation with the same
// Poisson process over bytes as the hook (a per-P countdown, with mean
// runtime.MemProfileRate), so reading its profile gives Go heap samples
// with no hook call at all, and the two sources share one set of sample
// types and units.
//
// The profile is read through runtime/pprof, not runtime.MemProfile:
// MemProfile cuts stacks at 32 frames, while the heap profile runtime/pprof
// writes keeps the runtime's full profiling depth (128 frames by default).
// The cost is that the runtime symbolizes those stacks on every read; our
// symbol cache only serves the hook's samples.
//
// In-use figures lag: the runtime publishes a sampled allocation as in use
// only once the GC cycle that follows it completes, and a free once it has
// been swept, so the heap profile describes the heap as of the last
// completed GC (see the memRecord comment in runtime/mprof.go). Forcing a GC
// before each read would make the figures current at the cost of a full
// collection per flush, so it is an option (WithGCBeforeSnapshot), not the
// default.

// readGoHeap returns the runtime's current heap profile, parsed.
func readGoHeap(gcFirst bool) (*profile.Profile, error) {
	if gcFirst {
		runtime.GC()
	}
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		return nil, fmt.Errorf("reading the Go heap profile: %w", err)
	}
	prof, err := profile.Parse(&buf)
	if err != nil {
		return nil, fmt.Errorf("parsing the Go heap profile: %w", err)
	}
	return prof, nil
}

// addGoHeap adds the samples of src, a runtime heap profile, labelled
// heap=go. Values are already scaled by the runtime; they are reordered to
// this profile's sample types by name, so a change in the runtime's order
// cannot mix them up.
func (b *profileBuilder) addGoHeap(src *profile.Profile) error {
	index := make([]int, len(b.prof.SampleType))
	for i, want := range b.prof.SampleType {
		index[i] = -1
		for j, have := range src.SampleType {
			if have.Type == want.Type && have.Unit == want.Unit {
				index[i] = j
			}
		}
		if index[i] < 0 {
			return fmt.Errorf("the Go heap profile has no %s/%s values", want.Type, want.Unit)
		}
	}
	for _, s := range src.Sample {
		out := &profile.Sample{
			Location: make([]*profile.Location, 0, len(s.Location)),
			Value:    make([]int64, len(index)),
			Label:    map[string][]string{"heap": {goHeapName}},
		}
		for i, j := range index {
			out.Value[i] = s.Value[j]
		}
		if allZero(out.Value) {
			continue
		}
		if b.ownMemory(s) {
			out.Location = append(out.Location, b.synthetic(ownFrame))
		} else {
			for _, l := range s.Location {
				out.Location = append(out.Location, b.foreignLocation(l))
			}
		}
		if size, ok := s.NumLabel["bytes"]; ok {
			out.NumLabel = map[string][]int64{"bytes": size}
			out.NumUnit = map[string][]string{"bytes": {"bytes"}}
		}
		b.prof.Sample = append(b.prof.Sample, out)
	}
	return nil
}

// ownFrame stands for the profiler's own Go memory (its tables, stacks,
// the profiles it builds) in place of the stack that allocated it.
const ownFrame = "[leakhunt profiler]"

// ownPrefixes are the function name prefixes of this module's library code.
var ownPrefixes = func() []string {
	pkg := reflect.TypeFor[Profiler]().PkgPath()
	return []string{pkg + ".", pkg + "/internal/"}
}()

// ownMemory reports whether a Go heap sample was allocated by the profiler
// itself. Such memory is real and stays in the profile, but under one
// synthetic frame: with its own stack it would lead through the hook into
// the caller's code and look like the caller's allocation.
func (b *profileBuilder) ownMemory(s *profile.Sample) bool {
	for _, l := range s.Location {
		for _, line := range l.Line {
			if line.Function == nil {
				continue
			}
			for _, prefix := range ownPrefixes {
				if strings.HasPrefix(line.Function.Name, prefix) {
					return true
				}
			}
		}
	}
	return false
}

// foreignLocation returns this profile's Location for l, a Location of
// another profile already symbolized; a Location at the same address that
// a hook stack produced is shared.
func (b *profileBuilder) foreignLocation(l *profile.Location) *profile.Location {
	k := locKey{l.Address, len(l.Line)}
	if own, ok := b.locs[k]; ok {
		return own
	}
	own := b.newLocation(k)
	for _, line := range l.Line {
		if line.Function == nil {
			continue
		}
		own.Line = append(own.Line, profile.Line{
			Function: b.function(line.Function.Name, line.Function.Filename),
			Line:     line.Line,
		})
	}
	return own
}

func allZero(v []int64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}
