package pyroscope_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Concurrent Export calls run one at a time, each against the baseline the
// one before left: the same profile exported by many at once has its
// allocations pushed once in all, and its in-use snapshot by each.
func TestConcurrentExports(t *testing.T) {
	srv := newPushServer(t, nil)
	exp := newExporter(t, srv.URL)
	in := heapProfile(t, time.Now(), 1, synthSample{stack: []frame{fn("main.f")}, heap: "h", age: -1, values: [4]int64{10, 1000, 4, 400}})
	const n = 8
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := exp.Export(context.Background(), in); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var sum [4]int64
	got := srv.requests()
	for _, r := range got {
		v := siteValues(r.profile(t))["main.f@h"]
		for i := range sum {
			sum[i] += v[i]
		}
	}
	if len(got) != n || sum != [4]int64{10, 1000, 4 * n, 400 * n} {
		t.Errorf("%d pushes adding up to %v; want %d adding up to [10 1000 %d %d]", len(got), sum, n, 4*n, 400*n)
	}
}

// An Export waiting for the one before gives up when its context ends.
func TestExportWaitsWithinContext(t *testing.T) {
	release := make(chan struct{})
	srv := newPushServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-release
		}
		ok(w)
	})
	exp := newExporter(t, srv.URL)
	in := oneSample(t)
	first := make(chan error)
	go func() { first <- exp.Export(context.Background(), in) }()
	for len(srv.requests()) == 0 {
		time.Sleep(time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := exp.Export(ctx, in)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for the export before") {
		t.Errorf("second Export: %v; want it to give up waiting at its deadline", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Export: %v", err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}
