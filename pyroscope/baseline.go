package pyroscope

import (
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Pyroscope answers a query over a time range with the sum of every
// profile in it. The profiler's alloc_* values count everything allocated
// since it started, so pushed as they are, a site allocating steadily
// would show n(n+1)/2 times its allocations after n pushes. Each push
// therefore carries, for alloc_* values, what was allocated since the last
// successful push: the difference between the profile's values and those
// of the profile that push carried. In-use values are a snapshot and go as
// they are. The first push carries everything allocated so far.
//
// The baseline moves only when a push succeeds: a failed push, or a
// profile the profiler dropped before it reached the Exporter, loses no
// allocations, which arrive with the next push.
//
// A site's difference is held at zero when it would be negative. That
// happens when allocations leave a site's key: the profiler folds the
// allocations of recycled groups under one "[recycled groups]" frame, or
// a value saturates. The allocations then reappear under the other key,
// where they may be counted a second time, once.

// A baseline is the alloc_* values of every site at the last successful
// push. The zero value stands for no push yet. It is not safe for
// concurrent use.
type baseline struct {
	types []string           // names of the cumulative sample types, the layout of alloc's values
	alloc map[string][]int64 // by site key
	time  int64              // TimeNanos of the profile pushed
	set   bool               // a push succeeded
}

// cumulativeTypes returns the indices of the sample types whose values add
// up over the profiler's life (alloc_objects, alloc_space: any alloc_*
// type), and their names.
func cumulativeTypes(types []*profile.ValueType) (idx []int, names []string) {
	for i, t := range types {
		if strings.HasPrefix(t.Type, "alloc_") {
			idx = append(idx, i)
			names = append(names, t.Type)
		}
	}
	return idx, names
}

// delta sets each site's push values, its values less the baseline's for
// the cumulative types idx, held at 0 (see above), and returns the sites
// with a value to push. A profile whose cumulative types differ from the
// baseline's has no baseline: everything in it is pushed.
func (b *baseline) delta(sites []*site, idx []int, names []string) []*site {
	base := b.alloc
	if !slices.Equal(b.types, names) {
		base = nil
	}
	var out []*site
	for _, s := range sites {
		s.push = slices.Clone(s.values)
		if prev, ok := base[s.key]; ok {
			for j, i := range idx {
				s.push[i] = max(s.values[i]-prev[j], 0)
			}
		}
		if slices.ContainsFunc(s.push, func(v int64) bool { return v != 0 }) {
			out = append(out, s)
		}
	}
	return out
}

// advance makes the sites, the profile of time just pushed, the baseline.
// Sites that never allocated are left out: no entry stands for zero.
func (b *baseline) advance(sites []*site, idx []int, names []string, time int64) {
	flat := make([]int64, 0, len(sites)*len(idx))
	alloc := make(map[string][]int64, len(sites))
	for _, s := range sites {
		start := len(flat)
		zero := true
		for _, i := range idx {
			flat = append(flat, s.values[i])
			zero = zero && s.values[i] == 0
		}
		if zero {
			flat = flat[:start]
			continue
		}
		alloc[s.key] = flat[start:len(flat):len(flat)]
	}
	b.types, b.alloc, b.time, b.set = names, alloc, time, true
}
