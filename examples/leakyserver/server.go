package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"net/http"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// tenants are the customers the service knows. A pprof label value must
// come from a bounded set: the profiler keeps at most 4096 distinct label
// sets, and a value per request (an id, a URL) would use them up.
var tenants = []string{"acme", "globex", "initech", "umbrella"}

const (
	chunkSize     = 32 << 10 // bufPool chunk, also the largest upload
	chunksPerSlab = 32       // 1 MiB slabs
)

type server struct {
	catalog *catalog
	reports *reportCache
	pool    *bufPool

	mu       sync.Mutex
	rejected map[string]map[string]int // tenant → reason → uploads rejected
}

func newServer(c *catalog) *server {
	return &server{
		catalog:  c,
		reports:  newReportCache(),
		pool:     newBufPool(chunkSize, chunksPerSlab),
		rejected: make(map[string]map[string]int),
	}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	// The labels wrap each route, inside the mux, so that the request's
	// Pattern (the endpoint label) is known.
	mux.Handle("GET /report", withLabels{http.HandlerFunc(s.report)})
	mux.Handle("POST /upload", withLabels{http.HandlerFunc(s.upload)})
	mux.Handle("GET /catalog/{id}", withLabels{http.HandlerFunc(s.item)})
	return mux
}

// withLabels runs its handler under pprof labels naming the tenant and the
// endpoint. Memory the handler reports through the hook with AllocContext
// carries them, so `go tool pprof -tagfocus=tenant=globex` shows one
// tenant's memory. (The Go runtime's heap profile records no labels: they
// reach only the hook's samples.)
type withLabels struct{ h http.Handler }

func (m withLabels) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	labels := pprof.Labels("tenant", tenantOf(r), "endpoint", endpointOf(r))
	pprof.Do(r.Context(), labels, func(ctx context.Context) {
		m.h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// tenantOf returns the request's tenant, from the X-Tenant header or the
// tenant query parameter, or "unknown" for anything not in tenants.
func tenantOf(r *http.Request) string {
	t := r.Header.Get("X-Tenant")
	if t == "" {
		t = r.URL.Query().Get("tenant")
	}
	if slices.Contains(tenants, t) {
		return t
	}
	return "unknown"
}

// endpointOf returns the path of the route that matched, such as
// /catalog/{id}: bounded, unlike the request's own path.
func endpointOf(r *http.Request) string {
	if _, path, ok := strings.Cut(r.Pattern, " "); ok {
		return path
	}
	return r.Pattern
}

// report serves an account's statement from the report cache, rendering
// it on a miss.
func (s *server) report(w http.ResponseWriter, r *http.Request) {
	key := r.URL.RequestURI() // the leak: includes ts=, see reportCache
	body, ok := s.reports.get(key)
	if !ok {
		account, err := strconv.Atoi(r.URL.Query().Get("account"))
		if err != nil {
			http.Error(w, "bad account", http.StatusBadRequest)
			return
		}
		var scratch bytes.Buffer // churn: garbage once copied into the cache
		renderReport(&scratch, account)
		body = s.reports.put(key, scratch.Bytes())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(body)
}

var errTooLarge = errors.New("body too large")

// upload stores a document whose CRC-32 the client sends in X-Checksum.
// The body is read into a pool chunk, checked and indexed.
func (s *server) upload(w http.ResponseWriter, r *http.Request) {
	want, err := strconv.ParseUint(r.Header.Get("X-Checksum"), 16, 32)
	if err != nil {
		http.Error(w, "bad X-Checksum", http.StatusBadRequest)
		return
	}
	buf := s.pool.get(r.Context())
	n, err := readInto(buf.data, r.Body)
	if err != nil {
		s.pool.put(buf) // this error path does give the chunk back
		status, reason := http.StatusBadRequest, "read error"
		if errors.Is(err, errTooLarge) {
			status, reason = http.StatusRequestEntityTooLarge, "too large"
		}
		s.reject(r, reason)
		http.Error(w, err.Error(), status)
		return
	}
	doc := buf.data[:n]
	if crc32.ChecksumIEEE(doc) != uint32(want) {
		// The leak: this early return forgets s.pool.put(buf), so the
		// chunk stays lent forever. Only a client that sends wrong
		// checksums reaches it.
		s.reject(r, "bad checksum")
		http.Error(w, "checksum mismatch", http.StatusBadRequest)
		return
	}
	lines := bytes.Count(doc, []byte("\n"))
	words := len(bytes.Fields(doc)) // churn: a short-lived slice per upload
	s.pool.put(buf)
	fmt.Fprintf(w, "stored %d bytes: %d lines, %d words\n", n, lines, words)
}

// readInto reads all of body into dst and returns its length, or
// errTooLarge if it does not fit.
func readInto(dst []byte, body io.Reader) (int, error) {
	n, err := io.ReadFull(body, dst)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return n, nil // shorter than dst: all read
	case err != nil:
		return n, err
	}
	var probe [1]byte
	if m, _ := io.ReadFull(body, probe[:]); m > 0 {
		return n, errTooLarge
	}
	return n, nil
}

func (s *server) reject(r *http.Request, reason string) {
	t := tenantOf(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejected[t] == nil {
		s.rejected[t] = make(map[string]int)
	}
	s.rejected[t][reason]++
}

// rejections returns the uploads rejected, by tenant and reason.
func (s *server) rejections() map[string]map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[string]int, len(s.rejected))
	for t, m := range s.rejected {
		out[t] = maps.Clone(m)
	}
	return out
}

// item serves one catalog entry as JSON: short-lived allocations only.
func (s *server) item(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		http.Error(w, "bad id", http.StatusBadRequest)
		return
	}
	it, ok := s.catalog.lookup(id)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		ID          int    `json:"id"`
		Name        string `json:"name"`
		PriceCents  int    `json:"price_cents"`
		Description string `json:"description"`
	}{it.ID, it.Name, it.PriceCents, string(it.Description)})
}
