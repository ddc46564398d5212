package heapdump

import (
	"cmp"
	"slices"
)

// graph is the parsed dump with its pointers resolved to objects. Objects
// keep their dump order, so that the edges, written in that order, need
// not move; byAddr indexes them by address.
type graph struct {
	*parser

	// byAddr is start<<32 | index for every object, ascending: a binary
	// search finds the object a word falls in.
	byAddr []uint64

	// page narrows that search: the objects that start in the words
	// [k<<pageShift, (k+1)<<pageShift) are byAddr[page[k]:page[k+1]].
	// Pages are sized for about two objects each, so the table costs two
	// bytes an object and the search takes a step or two, not twenty.
	page      []uint32
	pageShift uint

	// pred is how the search reached each object: 0 not at all,
	// rootPred|i from root i, else 1 + the index of the edge.
	pred []uint32

	// interior has bit e set for each edge e that points inside its
	// target rather than at its value's start (see isInterior).
	interior []uint64
}

const rootPred = 1 << 31

// graph sorts the objects by address and resolves every edge and root to
// the object it points into, dropping those that point into none (freed
// slots, stacks, spans the dump leaves out).
func (p *parser) graph() (*graph, error) {
	if uint64(len(p.start)) >= rootPred {
		return nil, errorf("more than %d objects", rootPred-1)
	}
	if uint64(len(p.roots)) >= rootPred {
		return nil, errorf("more than %d roots", rootPred-1)
	}
	g := &graph{parser: p, byAddr: make([]uint64, len(p.start))}
	for i, s := range p.start {
		g.byAddr[i] = uint64(s)<<32 | uint64(i)
	}
	slices.Sort(g.byAddr)
	for i := 1; i < len(g.byAddr); i++ {
		prev := uint32(g.byAddr[i-1])
		if g.byAddr[i]>>32 < uint64(p.start[prev])+uint64(p.size[prev]) {
			return nil, errorf("objects at %#x and %#x overlap", g.addr(prev), g.addr(uint32(g.byAddr[i])))
		}
	}

	g.indexPages()

	// Resolve edges in place, keeping those that point into an object.
	g.interior = make([]uint64, (len(p.edgeTo)+63)/64)
	w, r := uint32(0), uint32(0)
	for i, end := range p.edgeEnd {
		for ; r < end; r++ {
			if o, ok := g.object(p.edgeTo[r]); ok && o != uint32(i) {
				if g.isInterior(p.edgeTo[r], o) {
					g.interior[w/64] |= 1 << (w % 64)
				}
				p.edgeTo[w] = o
				p.edgeOff[w] = p.edgeOff[r]
				w++
			}
		}
		p.edgeEnd[i] = w
	}
	p.edgeTo = slices.Clip(p.edgeTo[:w])
	p.edgeOff = slices.Clip(p.edgeOff[:w])
	g.interior = slices.Clip(g.interior[:(w+63)/64])

	// Resolve roots, and order them as the search takes them: strong
	// roots before finalizers, and among strong roots globals first, so
	// that of two chains of the same length the one from a global wins.
	kept := p.roots[:0]
	for _, rt := range p.roots {
		if o, ok := g.object(rt.to); ok {
			rt.interior = g.isInterior(rt.to, o)
			rt.to = o
			kept = append(kept, rt)
		}
	}
	slices.SortStableFunc(kept, func(a, b root) int {
		return cmp.Compare(rootOrder(a.kind), rootOrder(b.kind))
	})
	p.roots = slices.Clip(kept)
	return g, nil
}

// isInterior reports whether word w, in object o, is not where o's value
// starts: at o's start, or a word later for an object with a malloc
// header. A pointer there is a field's address or a subslice, and the
// type it is declared with describes the object from there on only.
func (g *graph) isInterior(w, o uint32) bool {
	switch w - g.start[o] {
	case 0:
		return false
	case 1:
		_, header := slices.BinarySearch(g.hdrObj, o)
		return !header
	}
	return true
}

// edgeInterior reports whether edge e points inside its target.
func (g *graph) edgeInterior(e uint32) bool {
	return g.interior[e/64]&(1<<(e%64)) != 0
}

func rootOrder(k RootKind) int {
	switch k {
	case RootGlobal:
		return 0
	case RootStack:
		return 1
	case RootOther:
		return 2
	}
	return 3
}

func (g *graph) indexPages() {
	words := (g.arenaEnd - g.arenaStart) >> 3
	for words>>g.pageShift > uint64(len(g.byAddr)/2+1) {
		g.pageShift++
	}
	g.page = make([]uint32, words>>g.pageShift+2)
	i := 0
	for k := range g.page {
		for i < len(g.byAddr) && g.byAddr[i]>>32>>g.pageShift < uint64(k) {
			i++
		}
		g.page[k] = uint32(i)
	}
}

// addr is the address of object o.
func (g *graph) addr(o uint32) uint64 { return g.arenaStart + uint64(g.start[o])<<3 }

// object returns the object that word w falls in.
func (g *graph) object(w uint32) (uint32, bool) {
	// The first object that starts after w, then the one before it,
	// which starts in w's page or before: in the page before, if none
	// starts in w's page before w.
	k := w >> g.pageShift
	lo, hi := g.page[k], g.page[k+1]
	i, _ := slices.BinarySearch(g.byAddr[lo:hi], uint64(w)<<32|(1<<32-1))
	i += int(lo)
	if i == 0 {
		return 0, false
	}
	o := uint32(g.byAddr[i-1])
	return o, uint64(w) < uint64(g.start[o])+uint64(g.size[o])
}

// objectAt returns the object that address a falls in.
func (g *graph) objectAt(a uint64) (uint32, bool) {
	if !g.inArena(a) {
		return 0, false
	}
	return g.object(g.word(a))
}

// search runs a breadth-first search from every strong root at once, then
// continues it from the finalizer roots, and records in pred how each
// object was first reached: the shortest chain from a strong root, else
// from a finalizer.
func (g *graph) search() {
	g.pred = make([]uint32, len(g.start))
	var queue []uint32
	head := 0
	visit := func() {
		for ; head < len(queue); head++ {
			o := queue[head]
			lo := uint32(0)
			if o > 0 {
				lo = g.edgeEnd[o-1]
			}
			for e := lo; e < g.edgeEnd[o]; e++ {
				if t := g.edgeTo[e]; g.pred[t] == 0 {
					g.pred[t] = e + 1
					queue = append(queue, t)
				}
			}
		}
	}
	strong := true
	for i, rt := range g.roots {
		if strong && rt.kind == RootFinalizer {
			visit() // everything strong roots reach, before any finalizer
			strong = false
		}
		if g.pred[rt.to] == 0 {
			g.pred[rt.to] = rootPred | uint32(i)
			queue = append(queue, rt.to)
		}
	}
	visit()
}

// source returns the object that edge e belongs to.
func (g *graph) source(e uint32) uint32 {
	i, _ := slices.BinarySearchFunc(g.edgeEnd, e, func(end, e uint32) int {
		if end <= e {
			return -1
		}
		return 1
	})
	return uint32(i)
}
