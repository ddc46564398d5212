package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"slices"
	"unsafe"

	"github.com/leakhunt/profiler"
)

// The workload is an order-pricing service: it decodes a JSON order,
// prices its lines from a catalog (map lookups), keeps priced baskets in an
// LRU cache with churn and eviction, applies the customer's discount and
// encodes a JSON response. Every buffer and object the handler itself
// makes is reported to the hook when hooked is set: Alloc when it is made,
// Free when the request ends or the cache evicts it. The allocations made
// inside encoding/json are Go-heap allocations the hook does not see; the
// runtime's own profiler does, which is what the rate-1 comparison is
// about.

// OrderRequest is the decoded request body.
type OrderRequest struct {
	RequestID string            `json:"request_id"`
	Customer  Customer          `json:"customer"`
	Items     []LineItem        `json:"items"`
	Coupon    string            `json:"coupon,omitempty"`
	Currency  string            `json:"currency"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Customer is who places an order.
type Customer struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Email   string  `json:"email"`
	Tier    string  `json:"tier"`
	Address Address `json:"address"`
}

// Address is a postal address.
type Address struct {
	Street  string `json:"street"`
	City    string `json:"city"`
	Zip     string `json:"zip"`
	Country string `json:"country"`
}

// LineItem is one line of an order.
type LineItem struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
	Note     string `json:"note,omitempty"`
}

// OrderResponse is the encoded response body.
type OrderResponse struct {
	RequestID  string       `json:"request_id"`
	CustomerID string       `json:"customer_id"`
	Lines      []PricedLine `json:"lines"`
	Subtotal   int64        `json:"subtotal_cents"`
	Discount   int64        `json:"discount_cents"`
	Tax        int64        `json:"tax_cents"`
	Total      int64        `json:"total_cents"`
	Currency   string       `json:"currency"`
	Warnings   []string     `json:"warnings,omitempty"`
}

// PricedLine is a line with its price.
type PricedLine struct {
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	Quantity  int    `json:"quantity"`
	UnitPrice int64  `json:"unit_price_cents"`
	LineTotal int64  `json:"line_total_cents"`
}

type product struct {
	name  string
	price int64 // cents
	stock int
}

// Service handles order requests. It is not safe for concurrent use.
type Service struct {
	hooked   bool
	catalog  map[string]product
	discount map[string]int64 // per mille, by tier and coupon
	cache    basketCache
	seed     maphash.Seed
}

// hookCalls counts the hook calls the services make (Alloc and Free),
// so that a benchmark can report them per request.
var hookCalls int

// NewService returns a service with a catalog of products and a basket
// cache of cacheSize entries. If hooked, every allocation the handler makes
// is reported to the profiler's hook.
func NewService(hooked bool, products, cacheSize int) *Service {
	s := &Service{
		hooked:   hooked,
		catalog:  make(map[string]product, products),
		discount: map[string]int64{"gold": 100, "silver": 50, "bronze": 20, "SPRING10": 100, "VIP25": 250},
		seed:     maphash.MakeSeed(),
	}
	s.cache.init(cacheSize, hooked)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range products {
		s.catalog[skuName(i)] = product{
			name:  fmt.Sprintf("Product %d (%s)", i, adjectives[r.IntN(len(adjectives))]),
			price: 99 + r.Int64N(99_900),
			stock: r.IntN(1000),
		}
	}
	return s
}

var adjectives = []string{"red", "large", "organic", "refurbished", "compact", "deluxe", "travel size", "bulk"}

func skuName(i int) string { return fmt.Sprintf("SKU-%06d", i) }

// Requests returns n distinct request bodies over a catalog of products
// entries, drawn from a few hundred customers and skewed towards popular
// products, and the order in which a benchmark sends them: a skewed
// sequence of seqLen indexes, so that the basket cache both hits and
// churns.
func Requests(n, products, seqLen int) (bodies [][]byte, seq []int) {
	r := rand.New(rand.NewPCG(3, 4))
	zipfSKU := rand.NewZipf(r, 1.1, 4, uint64(products-1))
	tiers := []string{"gold", "silver", "bronze", "standard", "standard"}
	coupons := []string{"", "", "", "SPRING10", "VIP25"}
	for i := range n {
		c := r.IntN(300)
		req := OrderRequest{
			RequestID: fmt.Sprintf("req-%08x", r.Uint32()),
			Customer: Customer{
				ID:    fmt.Sprintf("cust-%05d", c),
				Name:  fmt.Sprintf("Customer Number %d", c),
				Email: fmt.Sprintf("customer%d@example.com", c),
				Tier:  tiers[c%len(tiers)],
				Address: Address{
					Street:  fmt.Sprintf("%d Long Street Name", 1+c%200),
					City:    []string{"Lisbon", "Oslo", "Austin", "Nairobi", "Osaka"}[c%5],
					Zip:     fmt.Sprintf("%05d", 10000+c*7),
					Country: []string{"PT", "NO", "US", "KE", "JP"}[c%5],
				},
			},
			Coupon:   coupons[i%len(coupons)],
			Currency: "EUR",
			Metadata: map[string]string{"channel": []string{"web", "ios", "android"}[i%3], "ab_bucket": fmt.Sprint(i % 7)},
		}
		for range 2 + r.IntN(10) {
			it := LineItem{SKU: skuName(int(zipfSKU.Uint64())), Quantity: 1 + r.IntN(5)}
			if r.IntN(4) == 0 {
				it.Note = "gift wrap, please"
			}
			req.Items = append(req.Items, it)
		}
		body, err := json.Marshal(req)
		if err != nil {
			panic(err)
		}
		bodies = append(bodies, body)
	}
	zipfReq := rand.NewZipf(r, 1.05, 8, uint64(n-1))
	seq = make([]int, seqLen)
	for i := range seq {
		seq[i] = int(zipfReq.Uint64())
	}
	return bodies, seq
}

// Serve handles one request: body is the request as read from the network,
// the response is written to w.
func (s *Service) Serve(w io.Writer, body []byte) error {
	// The request buffer a server reads the body into.
	in := make([]byte, len(body))
	copy(in, body)
	s.allocBytes(in)
	defer s.freeBytes(in)

	req := new(OrderRequest)
	s.alloc(unsafe.Pointer(req), int(unsafe.Sizeof(*req)))
	defer s.free(unsafe.Pointer(req))
	if err := json.Unmarshal(in, req); err != nil {
		return fmt.Errorf("decoding request: %w", err)
	}

	basket := s.price(req)
	resp := &OrderResponse{
		RequestID:  req.RequestID,
		CustomerID: req.Customer.ID,
		Lines:      basket.lines,
		Subtotal:   basket.subtotal,
		Currency:   req.Currency,
		Warnings:   basket.warnings,
	}
	s.alloc(unsafe.Pointer(resp), int(unsafe.Sizeof(*resp)))
	defer s.free(unsafe.Pointer(resp))
	resp.Discount = resp.Subtotal * (s.discount[req.Customer.Tier] + s.discount[req.Coupon]) / 1000
	resp.Tax = (resp.Subtotal - resp.Discount) * 23 / 100
	resp.Total = resp.Subtotal - resp.Discount + resp.Tax

	out, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encoding response: %w", err)
	}
	s.allocBytes(out)
	defer s.freeBytes(out)
	_, err = w.Write(out)
	return err
}

// price returns the priced basket for req's items, from the cache or
// computed and cached.
func (s *Service) price(req *OrderRequest) *basket {
	var h maphash.Hash
	h.SetSeed(s.seed)
	for _, it := range req.Items {
		h.WriteString(it.SKU)
		h.WriteByte(byte(it.Quantity))
	}
	key := h.Sum64()
	if b := s.cache.get(key); b != nil {
		return b
	}
	b := &basket{key: key, lines: make([]PricedLine, 0, len(req.Items))}
	for _, it := range req.Items {
		p, ok := s.catalog[it.SKU]
		if !ok {
			b.warnings = append(b.warnings, "unknown sku "+it.SKU)
			continue
		}
		if p.stock < it.Quantity {
			b.warnings = append(b.warnings, "low stock for "+it.SKU)
		}
		line := PricedLine{SKU: it.SKU, Name: p.name, Quantity: it.Quantity, UnitPrice: p.price, LineTotal: p.price * int64(it.Quantity)}
		b.lines = append(b.lines, line)
		b.subtotal += line.LineTotal
	}
	slices.SortFunc(b.lines, func(x, y PricedLine) int { return cmp.Compare(y.LineTotal, x.LineTotal) })
	s.cache.put(b)
	return b
}

// basket is a cache entry: priced lines for one combination of items.
type basket struct {
	key        uint64
	lines      []PricedLine
	subtotal   int64
	warnings   []string
	prev, next *basket // LRU list, most recent first
}

// size is the footprint the hook is told about.
func (b *basket) size() int {
	return int(unsafe.Sizeof(*b)) + cap(b.lines)*int(unsafe.Sizeof(PricedLine{}))
}

// basketCache is an LRU cache of baskets with an intrusive list, so that it
// makes no allocation of its own per entry beyond the map's.
type basketCache struct {
	hooked  bool
	max     int
	entries map[uint64]*basket
	head    basket // sentinel: head.next is the most recent
	hits    int
	misses  int
	evicted int
}

func (c *basketCache) init(max int, hooked bool) {
	c.hooked, c.max = hooked, max
	c.entries = make(map[uint64]*basket, max)
	c.head.prev, c.head.next = &c.head, &c.head
}

func (c *basketCache) get(key uint64) *basket {
	b := c.entries[key]
	if b == nil {
		c.misses++
		return nil
	}
	c.hits++
	c.unlink(b)
	c.pushFront(b)
	return b
}

func (c *basketCache) put(b *basket) {
	if c.hooked {
		hookCalls++
		profiler.Alloc(uintptr(unsafe.Pointer(b)), b.size())
	}
	c.entries[b.key] = b
	c.pushFront(b)
	for len(c.entries) > c.max {
		old := c.head.prev
		c.unlink(old)
		delete(c.entries, old.key)
		c.evicted++
		if c.hooked {
			hookCalls++
			profiler.Free(uintptr(unsafe.Pointer(old)))
		}
	}
}

// Clear evicts every entry, reporting each to the hook.
func (c *basketCache) clear() {
	for c.head.next != &c.head {
		old := c.head.next
		c.unlink(old)
		delete(c.entries, old.key)
		if c.hooked {
			profiler.Free(uintptr(unsafe.Pointer(old)))
		}
	}
}

func (c *basketCache) unlink(b *basket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (c *basketCache) pushFront(b *basket) {
	b.prev, b.next = &c.head, c.head.next
	c.head.next.prev = b
	c.head.next = b
}

// Close evicts the whole cache, reporting the frees to the hook.
func (s *Service) Close() { s.cache.clear() }

// CacheStats returns the cache's hits, misses and evictions so far.
func (s *Service) CacheStats() (hits, misses, evicted int) {
	return s.cache.hits, s.cache.misses, s.cache.evicted
}

func (s *Service) alloc(p unsafe.Pointer, size int) {
	if s.hooked {
		hookCalls++
		profiler.Alloc(uintptr(p), size)
	}
}

func (s *Service) free(p unsafe.Pointer) {
	if s.hooked {
		hookCalls++
		profiler.Free(uintptr(p))
	}
}

func (s *Service) allocBytes(b []byte) {
	if s.hooked && cap(b) > 0 {
		hookCalls++
		profiler.Alloc(uintptr(unsafe.Pointer(unsafe.SliceData(b))), cap(b))
	}
}

func (s *Service) freeBytes(b []byte) {
	if s.hooked && cap(b) > 0 {
		hookCalls++
		profiler.Free(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	}
}
