package heapdump

import (
	"fmt"
	"slices"
)

// result builds the samples, then the targets, with their chains.
func (g *graph) result(targets []uint64, opts *Options) *Result {
	res := &Result{
		Samples: make([]Sample, 0, len(g.samples)+len(targets)),
		Objects: len(g.start),
		Edges:   len(g.edgeTo),
	}
	n := namer{g: g, opts: opts, types: make(map[uint64]string)}
	for _, s := range g.samples {
		smp := Sample{Addr: s.addr}
		if b := g.buckets[s.bucket]; b != nil {
			smp.Stack, smp.BucketSize = b.stack, b.size
		}
		n.fill(&smp)
		res.Samples = append(res.Samples, smp)
	}
	for _, a := range targets {
		smp := Sample{Addr: a, Target: true}
		n.fill(&smp)
		res.Samples = append(res.Samples, smp)
	}
	return res
}

// namer names roots and objects on chains, calling the functions of
// Options once per global slot or type.
type namer struct {
	g     *graph
	opts  *Options
	types map[uint64]string // header word -> type name, "" if unknown
}

// fill sets the size and chain of s.
func (n *namer) fill(s *Sample) {
	o, ok := n.g.objectAt(s.Addr)
	if !ok {
		return
	}
	s.Size = uint64(n.g.size[o]) << 3
	s.Chain = collapseMaps(n.chain(o))
}

// chain follows pred from object o back to its root and returns the hops
// from the root on; nil if no root reaches o.
func (n *namer) chain(o uint32) []Hop {
	g := n.g
	if g.pred[o] == 0 {
		return nil
	}
	var hops []Hop
	for {
		h := Hop{Size: uint64(g.size[o]) << 3}
		h.Name, h.Type = n.typeName(o)
		pr := g.pred[o]
		if pr&rootPred != 0 {
			rt := g.roots[pr&^rootPred]
			rh, off := n.root(rt)
			h.Offset, h.Interior = off, rt.interior
			hops = append(hops, h, rh)
			break
		}
		e := pr - 1
		h.Offset, h.Interior = uint64(g.edgeOff[e])<<3, g.edgeInterior(e)
		hops = append(hops, h)
		o = g.source(e)
	}
	slices.Reverse(hops)
	return hops
}

// typeName names the type of object o from its malloc header, if any,
// and returns the header.
func (n *namer) typeName(o uint32) (string, uint64) {
	g := n.g
	i, ok := slices.BinarySearch(g.hdrObj, o)
	if !ok {
		return "", 0
	}
	t := g.hdrType[i]
	name, ok := n.types[t]
	if !ok {
		if n.opts.TypeName != nil {
			name, ok = n.opts.TypeName(t)
		}
		if !ok {
			name = g.types[t]
		}
		n.types[t] = name
	}
	return name, t
}

// root returns the hop for rt and the offset of its pointer within it.
func (n *namer) root(rt root) (Hop, uint64) {
	h := Hop{Root: rt.kind}
	g := n.g
	switch rt.what {
	case whatData, whatBSS:
		slot := g.segments[rt.what] + rt.off
		if n.opts.Global != nil {
			if name, off, ok := n.opts.Global(slot); ok {
				h.Name = name
				return h, off
			}
		}
		seg := "data"
		if rt.what == whatBSS {
			seg = "bss"
		}
		h.Name = fmt.Sprintf("%s %#x", seg, slot)
		return h, 0
	case whatFrame:
		f := g.frames[rt.desc]
		h.Name = f.fn + " (" + g.goroutineName(f.g) + ")"
		return h, rt.off
	case whatOtherRoot:
		h.Name = g.others[rt.desc]
		return h, 0
	}
	var what string
	switch rt.what {
	case whatContext:
		what = "closure context"
	case whatDefer:
		what = "defer record"
	case whatDeferFunc:
		what = "deferred function"
	case whatPanic:
		what = "panic record"
	case whatPanicValue:
		what = "panic value"
	case whatFinalizerObject:
		h.Name = "object with finalizer"
		return h, 0
	case whatFinalizerFunc:
		h.Name = "finalizer function"
		return h, 0
	case whatQueuedObject:
		h.Name = "queued finalizer object"
		return h, 0
	case whatQueuedFunc:
		h.Name = "queued finalizer function"
		return h, 0
	}
	h.Name = what + " (" + g.goroutineName(rt.desc) + ")"
	return h, 0
}

// goroutineName is "goroutine 7, chan receive", or without the wait
// reason if there is none.
func (g *graph) goroutineName(i uint32) string {
	gr := g.goroutines[i]
	s := fmt.Sprintf("goroutine %d", gr.id)
	if gr.reason != "" {
		s += ", " + gr.reason
	}
	return s
}
