package main

import (
	"fmt"
	"math/rand/v2"
)

// catalog is the service's product catalog, loaded once at startup and
// only read afterwards. It is the largest thing on the heap and stays
// exactly that large: big, but no leak, which is what `leakhunt rank`
// tells apart from the leaks and `go tool pprof -top` alone does not.
type catalog struct {
	items []item
}

type item struct {
	ID          int
	Name        string
	PriceCents  int
	Description []byte // 1 KiB each
}

func loadCatalog(n int) *catalog {
	r := rand.New(rand.NewPCG(7, 7))
	c := &catalog{items: make([]item, n)}
	for i := range c.items {
		desc := make([]byte, 1024)
		for j := range desc {
			desc[j] = 'a' + byte(r.IntN(26))
		}
		c.items[i] = item{ID: i, Name: fmt.Sprintf("product-%05d", i), PriceCents: 100 + r.IntN(100000), Description: desc}
	}
	return c
}

func (c *catalog) lookup(id int) (item, bool) {
	if id < 0 || id >= len(c.items) {
		return item{}, false
	}
	return c.items[id], true
}
