package main

import (
	"context"
	"sync"

	"github.com/leakhunt/profiler"
)

// poolHeap labels the pool's chunks in profiles: heap=bufpool. The Go heap
// sees only the pool's slabs, allocated in grow; which code holds which
// chunk is something only the hook can tell.
var poolHeap = profiler.NewHeap("bufpool")

// bufPool hands out fixed-size chunks carved from large slabs it allocates
// itself and never gives back, the way a C allocator or an arena does. It is
// the kind of memory a Go heap profile cannot attribute: to the runtime the
// pool is a few big []byte, whoever holds the chunks.
type bufPool struct {
	chunkSize int
	perSlab   int

	mu    sync.Mutex
	slabs [][]byte
	free  []int // ids of free chunks: slab index × perSlab + chunk index
	inUse int
}

func newBufPool(chunkSize, perSlab int) *bufPool {
	return &bufPool{chunkSize: chunkSize, perSlab: perSlab}
}

// buffer is a chunk on loan from the pool; give it back with put.
type buffer struct {
	id   int
	data []byte
}

// get lends a chunk, growing the pool by a slab when none is free. The
// chunk is reported to the hook with the caller's pprof labels, so its
// samples say which tenant and endpoint took it.
func (p *bufPool) get(ctx context.Context) buffer {
	p.mu.Lock()
	if len(p.free) == 0 {
		p.grow()
	}
	id := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.inUse++
	slab := p.slabs[id/p.perSlab]
	p.mu.Unlock()

	// The chunk id is the key: unique for as long as the chunk is lent.
	poolHeap.AllocContext(ctx, uintptr(id), p.chunkSize)
	off := (id % p.perSlab) * p.chunkSize
	// Capped, so that an append cannot spill into the next chunk.
	return buffer{id: id, data: slab[off : off+p.chunkSize : off+p.chunkSize]}
}

// put returns a chunk to the pool.
func (p *bufPool) put(b buffer) {
	// Free before the id is free again: once it is, another get may report
	// the same key, and a late Free would forget that allocation instead.
	poolHeap.Free(uintptr(b.id))
	p.mu.Lock()
	p.free = append(p.free, b.id)
	p.inUse--
	p.mu.Unlock()
}

// grow adds a slab. Called with p.mu held.
func (p *bufPool) grow() {
	p.slabs = append(p.slabs, make([]byte, p.chunkSize*p.perSlab))
	first := (len(p.slabs) - 1) * p.perSlab
	for i := p.perSlab - 1; i >= 0; i-- {
		p.free = append(p.free, first+i)
	}
}

// stats returns the chunks lent out and the slabs allocated.
func (p *bufPool) stats() (inUse, slabs int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inUse, len(p.slabs)
}
