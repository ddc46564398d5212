package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
)

// reportCache keeps rendered reports so that a dashboard refreshing the
// same report is served without rendering it again.
//
// It is the Go heap leak: nothing ever deletes an entry, and the key is the
// request URI, which includes the ts= parameter the dashboard appends to
// defeat browser caches. No two requests share a key, so every request adds
// an entry that is never read again. No hook call is needed to see it: the
// profiler reads the Go runtime's own heap profile (heap=go).
type reportCache struct {
	mu      sync.Mutex
	entries map[string][]byte
	bytes   int
}

func newReportCache() *reportCache {
	return &reportCache{entries: make(map[string][]byte)}
}

func (c *reportCache) get(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	body, ok := c.entries[key]
	return body, ok
}

// put stores a copy of body under key and returns the copy. The copy is
// sized exactly, rather than keeping the renderer's larger scratch buffer,
// and it is this allocation that a heap profile shows growing.
func (c *reportCache) put(key string, body []byte) []byte {
	kept := make([]byte, len(body))
	copy(kept, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = kept
	c.bytes += len(kept)
	return kept
}

// stats returns the number of entries and the bytes of their bodies.
func (c *reportCache) stats() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}

// renderReport writes an account's monthly statement, 2 to 6 KiB of text
// that depends only on the account.
func renderReport(w io.Writer, account int) {
	r := rand.New(rand.NewPCG(uint64(account), 1))
	lines := 40 + account%80
	fmt.Fprintf(w, "statement for account %d\n", account)
	for i := range lines {
		fmt.Fprintf(w, "2026-01-%02d  invoice %06d  %10.2f EUR\n", 1+i%28, r.IntN(1e6), r.Float64()*1e4)
	}
}
