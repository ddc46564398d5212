package heapdump

import (
	"math/rand/v2"
	"testing"
)

// TestObjectLookup compares the paged binary search of graph.object with
// a linear scan, over layouts dense and sparse.
func TestObjectLookup(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		objects int
		gap     uint32 // largest gap between objects, in words
		span    uint64 // arena bytes
	}{
		{0, 0, 1 << 20},
		{1, 0, 1 << 20},
		{100, 2, 1 << 20},
		{1000, 500, 64 << 20},
		{1000, 1 << 20, 1 << 34},
	} {
		p := &parser{arenaStart: arenaLo, arenaEnd: arenaLo + tc.span}
		w := uint32(r.IntN(16))
		for range tc.objects {
			size := uint32(1 + r.IntN(64))
			if uint64(w+size)*8 > tc.span {
				break
			}
			p.start = append(p.start, w)
			p.size = append(p.size, size)
			w += size + uint32(r.IntN(int(tc.gap)+1))
		}
		// Dump order is not address order.
		r.Shuffle(len(p.start), func(i, j int) {
			p.start[i], p.start[j] = p.start[j], p.start[i]
			p.size[i], p.size[j] = p.size[j], p.size[i]
		})
		p.edgeEnd = make([]uint32, len(p.start))
		g, err := p.graph()
		if err != nil {
			t.Fatal(err)
		}
		for range 10000 {
			w := uint32(r.Uint64N(tc.span >> 3))
			got, ok := g.object(w)
			want, wantOK := uint32(0), false
			for i, s := range p.start {
				if w >= s && w < s+p.size[i] {
					want, wantOK = uint32(i), true
				}
			}
			if ok != wantOK || (ok && got != want) {
				t.Fatalf("%d objects, span %d: object(%d) = %d, %v; want %d, %v", len(p.start), tc.span, w, got, ok, want, wantOK)
			}
		}
	}
}
