package leakrank

import (
	"cmp"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// A site is a heap and a stack of function names, inlined calls expanded.
// A retainers profile's allocation stack has one frame per inlined call
// too, but named by the function it was inlined into, with the inlined
// code's file and line: main.newNode inlined into main.main at main.go:36
// is "main.newNode main.go:22, main.main main.go:36" in the heap profile
// and "main.main main.go:22, main.main main.go:36" in the retainers
// profile. A function inlined into the wrapper of a go statement is named
// by the wrapper ("main.main.gowrap1"), which pprof leaves out. Names
// alone cannot tell two calls inlined into one function apart, and a
// site's stack has no lines, so retainers are matched to sites through a
// heap profile's locations, by their files and lines, and by their names
// only where those do not match.

// Holders is what holds the sampled objects of each site of one heap
// profile, by a retainers profile. It is safe for concurrent use.
type Holders struct {
	sites map[string]*Retention // by site key
	heaps map[string]bool       // the heaps the retainers profile covers (see heapClass)
}

// Retention is what keeps the sampled objects of one site alive.
type Retention struct {
	Bytes int64  // of the site's objects in the retainers profile, math.MaxInt64 for more
	Roots []Root // every root that holds some, most bytes first
}

// Root is one root of a Retention and what it holds.
type Root struct {
	// Name is the root's frame without HeldByPrefix: "main.registry",
	// "main.worker (goroutine 7, chan receive)".
	Name  string
	Bytes int64
	// Chain is the chain that holds the most of Bytes: its frames' names
	// as the retainers profile has them, the root first, last the frame
	// of what points to the object itself. It is shared: not to be
	// modified.
	Chain []string
}

// Match returns what holds the objects of each site of heap, the heap
// profile read from the file name, by r. It fails as NewSnapshot does if
// heap is no snapshot.
//
// An allocation stack of r belongs to the site of heap's samples with the
// same heap (no heap label counts as the Go heap, on either side) and the
// same frames: the same files and lines, however they are named (see the
// comment above). A stack that matches none that way, as one from another
// build of the program would, belongs to the sites whose frames have the
// same names, either as a heap dump names them or as pprof does: to all of
// them if there are several. A stack with the profiler's own code in it
// belongs to the site that stands for the profiler's own memory
// (OwnFrame), as in the heap profile. The runtime's frames at the leaf are
// left out on both sides.
func (r *Retainers) Match(name string, heap *profile.Profile) (*Holders, error) {
	inuse, err := inuseIndex(name, heap)
	if err != nil {
		return nil, err
	}
	exact := make(map[string][]string) // by frames key with lines: site keys
	byName := make(map[string][]string)
	var key strings.Builder
	for _, s := range heap.Sample {
		if s.Value[inuse] <= 0 {
			continue // as NewSnapshot, which has no site for it
		}
		key.Reset()
		writeSiteKey(&key, s)
		site := key.String()
		h := heapClass(heapLabel(s))
		// Both namings: the frames trimmed at the leaf may differ too.
		for _, logical := range []bool{false, true} {
			frames := trimRuntime(logicalFrames(s.Location, logical))
			key.Reset()
			writeFramesKey(&key, h, frames, linesOfFrames)
			exact[key.String()] = addSite(exact[key.String()], site)
			key.Reset()
			writeFramesKey(&key, h, frames, namesOfFrames)
			byName[key.String()] = addSite(byName[key.String()], site)
		}
	}

	chains := make(map[string]map[string]*heldChain) // by site key, then chain
	for _, rs := range r.stacks {
		key.Reset()
		writeFramesKey(&key, rs.heap, rs.frames, linesOfFrames)
		sites := exact[key.String()]
		if len(sites) == 0 && rs.own {
			key.Reset()
			writeFramesKey(&key, rs.heap, []frame{{name: OwnFrame}}, linesOfFrames)
			sites = exact[key.String()]
		}
		if len(sites) == 0 {
			key.Reset()
			writeFramesKey(&key, rs.heap, rs.frames, namesOfFrames)
			sites = byName[key.String()]
		}
		for _, site := range sites {
			m := chains[site]
			if m == nil {
				m = make(map[string]*heldChain)
				chains[site] = m
			}
			for k, c := range rs.chains {
				sum := m[k]
				if sum == nil {
					sum = &heldChain{frames: c.frames}
					m[k] = sum
				}
				sum.bytes = saturatingAdd(sum.bytes, c.bytes)
			}
		}
	}

	h := &Holders{sites: make(map[string]*Retention, len(chains)), heaps: r.heaps}
	for site, m := range chains {
		h.sites[site] = retention(m)
	}
	return h, nil
}

// addSite adds site to sites if it is not there yet: a sample has two
// forms of its frames, often the same, and a site many samples.
func addSite(sites []string, site string) []string {
	if slices.Contains(sites, site) {
		return sites
	}
	return append(sites, site)
}

// retention sums chains, by chain key, by root.
func retention(chains map[string]*heldChain) *Retention {
	ret := &Retention{}
	roots := make(map[string]*Root)
	best := make(map[string]int64) // bytes of each root's Chain
	// In chain order, so that of two chains that hold as much the first
	// is kept whatever the map's order.
	keys := make([]string, 0, len(chains))
	for k := range chains {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := chains[k]
		name := strings.TrimPrefix(c.frames[0], HeldByPrefix)
		root := roots[name]
		if root == nil {
			root = &Root{Name: name}
			roots[name] = root
		}
		root.Bytes = saturatingAdd(root.Bytes, c.bytes)
		if root.Chain == nil || c.bytes > best[name] {
			root.Chain, best[name] = c.frames, c.bytes
		}
		ret.Bytes = saturatingAdd(ret.Bytes, c.bytes)
	}
	for _, root := range roots {
		ret.Roots = append(ret.Roots, *root)
	}
	slices.SortFunc(ret.Roots, func(a, b Root) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Name, b.Name))
	})
	return ret
}

// Of returns what holds the objects of site s, and whether the retainers
// profile covers s's heap: the Go heap, and the heaps of objects reported
// with Track that it has samples of. A site of a covered heap with no
// objects in it has a zero Retention.
func (h *Holders) Of(s Site) (Retention, bool) {
	heap := heapClass(s.Heap)
	if heap != GoHeap && !h.heaps[heap] {
		return Retention{}, false
	}
	if ret := h.sites[s.key()]; ret != nil {
		return *ret, true
	}
	return Retention{}, true
}

// key returns the key of s, as writeSiteKey writes it for its samples.
func (s Site) key() string {
	var b strings.Builder
	b.WriteString(s.Heap)
	b.WriteByte(0)
	for _, name := range s.Stack {
		b.WriteString(name)
		b.WriteByte(0)
	}
	return b.String()
}
