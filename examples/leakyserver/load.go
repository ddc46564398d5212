package main

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load: every tenant's client sends a request every requestEvery, mixing
// the three endpoints. Each client behaves the same except for two quirks:
//
//   - globex runs an old client that computes an upload's checksum over
//     its first 16 KiB only, so its larger uploads fail the check, and
//     reach the upload handler's leaking error path;
//   - umbrella now and then uploads a document too large for a chunk,
//     which is rejected on an error path that does return the chunk.
const (
	requestEvery   = 10 * time.Millisecond
	leakyTenant    = "globex"
	oversizeTenant = "umbrella"
	accounts       = 60 // per tenant
)

// loadStats counts what the load generator sent.
type loadStats struct {
	requests atomic.Int64
	failed   atomic.Int64 // transport errors, not HTTP error statuses
}

// generateLoad runs one client per tenant against base until ctx ends.
func generateLoad(ctx context.Context, base string, catalogSize int) *loadStats {
	transport := &http.Transport{MaxIdleConnsPerHost: len(tenants)}
	defer transport.CloseIdleConnections() // so that Shutdown need not wait for them
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	docs := documents()

	stats := new(loadStats)
	var wg sync.WaitGroup
	for i, tenant := range tenants {
		wg.Go(func() {
			c := &tenantClient{
				tenant: tenant, base: base, client: client, docs: docs, catalogSize: catalogSize,
				rand: rand.New(rand.NewPCG(uint64(i), 99)),
			}
			tick := time.NewTicker(requestEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if err := c.send(ctx); err != nil {
					if ctx.Err() != nil {
						return // cancelled mid-request at the end of the run
					}
					stats.failed.Add(1)
				}
				stats.requests.Add(1)
			}
		})
	}
	wg.Wait()
	return stats
}

type tenantClient struct {
	tenant      string
	base        string
	client      *http.Client
	docs        string
	catalogSize int
	rand        *rand.Rand
}

// send sends one request: 45% dashboard refreshes, 40% uploads, 15%
// catalog lookups.
func (c *tenantClient) send(ctx context.Context) error {
	var req *http.Request
	var err error
	switch x := c.rand.IntN(100); {
	case x < 45:
		// The dashboard's cache-buster: the report cache's undoing.
		url := fmt.Sprintf("%s/report?account=%d&ts=%d", c.base, c.rand.IntN(accounts), time.Now().UnixNano())
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	case x < 85:
		req, err = c.uploadRequest(ctx)
	default:
		url := fmt.Sprintf("%s/catalog/%d", c.base, c.rand.IntN(c.catalogSize))
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	}
	if err != nil {
		return err
	}
	req.Header.Set("X-Tenant", c.tenant)
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body) // read to the end, so the connection is reused
	return err
}

func (c *tenantClient) uploadRequest(ctx context.Context) (*http.Request, error) {
	size := 4<<10 + c.rand.IntN(chunkSize-4<<10) // 4 KiB to 32 KiB
	if c.tenant == oversizeTenant && c.rand.IntN(20) == 0 {
		size = chunkSize + 8<<10
	}
	off := c.rand.IntN(len(c.docs) - size)
	doc := c.docs[off : off+size]
	sum := crc32.ChecksumIEEE([]byte(doc))
	if c.tenant == leakyTenant && size > 16<<10 {
		sum = crc32.ChecksumIEEE([]byte(doc[:16<<10])) // the old client's bug
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/upload", strings.NewReader(doc))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Checksum", fmt.Sprintf("%08x", sum))
	return req, nil
}

// documents returns text to cut uploads from.
func documents() string {
	r := rand.New(rand.NewPCG(3, 3))
	words := []string{"invoice", "order", "shipment", "refund", "customer", "total", "tax", "line", "item", "due"}
	var b strings.Builder
	for b.Len() < 3*chunkSize {
		for range 8 {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d\n", r.IntN(1e6))
	}
	return b.String()
}
