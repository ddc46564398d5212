package profiler

import (
	"context"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Label sets: the pprof labels (pprof.WithLabels, pprof.Do) found in the
// context given to AllocContext or TrackIn, kept per sampled
// allocation as a small id so that records stay small, and written as
// string labels on its profile samples (-tagfocus=tenant=acme).

// maxLabelSets bounds the distinct label sets kept per profiler, since
// labels often carry request-scoped values; samples beyond it are kept
// without labels and counted.
const maxLabelSets = 4096

type labelPair struct{ key, value string }

// labelTable interns label sets. Id 0 is the empty set. It is safe for
// concurrent use.
type labelTable struct {
	mu      sync.Mutex
	byKey   map[string]uint32
	sets    [][]labelPair // index is id-1
	dropped atomic.Int64  // samples whose label set did not fit
}

// intern returns the id of the labels in ctx, 0 if there are none or the
// table is full. It runs only on the sampled path.
func (t *labelTable) intern(ctx context.Context) uint32 {
	var pairs []labelPair
	pprof.ForLabels(ctx, func(k, v string) bool {
		pairs = append(pairs, labelPair{k, v})
		return true
	})
	if len(pairs) == 0 {
		return 0
	}
	slices.SortFunc(pairs, func(a, b labelPair) int { return strings.Compare(a.key, b.key) })
	var key strings.Builder
	for _, p := range pairs {
		key.WriteString(p.key)
		key.WriteByte(0)
		key.WriteString(p.value)
		key.WriteByte(0)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.byKey[key.String()]; ok {
		return id
	}
	if len(t.sets) >= maxLabelSets {
		t.dropped.Add(1)
		return 0
	}
	if t.byKey == nil {
		t.byKey = make(map[string]uint32)
	}
	t.sets = append(t.sets, pairs)
	id := uint32(len(t.sets))
	t.byKey[key.String()] = id
	return id
}

// snapshot returns the label sets by id-1; the sets themselves never change.
func (t *labelTable) snapshot() [][]labelPair {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sets[:len(t.sets):len(t.sets)]
}
