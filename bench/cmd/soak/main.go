// Command soak runs the profiler for minutes at rate 1 under hook traffic
// that varies everything a group is made of, and reports whether it holds:
// memory flat after warm-up, no sample dropped while live samples are under
// their bound, and totals exact.
//
// Workers allocate through the hook from thousands of distinct stacks, with
// sizes drawn freely (so nearly every sample is a new group, and groups
// must be recycled), under a thousand pprof label sets, on keys they free
// and reuse, sometimes allocating over a live key without a Free. Another
// goroutine writes a profile every few hundred milliseconds. Every report
// interval the command prints the Go heap in use after a GC, the samples
// and drops so far; at the end it compares the final profile's totals with
// what the workers did.
//
// Usage:
//
//	go run ./bench/cmd/soak [-duration 3m] [-workers 4] [-every 300ms] [-report 15s]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/bench"
)

const (
	keysPerWorker = 20_000
	labelSets     = 1000
	maxSize       = 64 << 10
)

// call is what a worker's next hook call reports; leaf reads it from the
// deepest frame of a generated call path.
type call struct {
	ctx  context.Context
	key  uintptr
	size int
}

var (
	heap  = profiler.NewHeap("soak")
	calls [64]call // by worker
)

func leaf(w int) {
	c := &calls[w]
	heap.AllocContext(c.ctx, c.key, c.size)
}

// truth is what one worker did, kept exactly.
type truth struct {
	allocs, bytes int64
	live          map[uintptr]int // size by key
}

func main() {
	duration := flag.Duration("duration", 3*time.Minute, "how long to run")
	workers := flag.Int("workers", 4, "goroutines calling the hook")
	every := flag.Duration("every", 300*time.Millisecond, "time between profiles")
	report := flag.Duration("report", 15*time.Second, "time between reports")
	flag.Parse()
	if *workers < 1 || *workers > len(calls) {
		log.Fatalf("soak: -workers must be between 1 and %d", len(calls))
	}

	dir, err := os.MkdirTemp("", "soak")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p, err := profiler.Start(profiler.WithSamplingRate(1), profiler.WithGoHeap(false), profiler.WithOutputDir(dir), profiler.WithFlushInterval(time.Hour))
	if err != nil {
		log.Fatal(err)
	}

	ctxs := make([]context.Context, labelSets)
	for i := range ctxs {
		ctxs[i] = pprof.WithLabels(context.Background(), pprof.Labels(
			"tenant", fmt.Sprintf("t%03d", i%100), "endpoint", fmt.Sprintf("/e%d", i/100)))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	truths := make([]truth, *workers)
	for w := range *workers {
		truths[w].live = make(map[uintptr]int)
		wg.Go(func() { work(w, &truths[w], ctxs, stop) })
	}
	var profiles int
	wg.Go(func() {
		t := time.NewTicker(*every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := p.Flush(); err != nil {
					log.Fatal(err)
				}
				profiles++
			}
		}
	})

	fmt.Printf("soak: %d workers at rate 1 for %v, a profile every %v\n", *workers, *duration, *every)
	fmt.Println("elapsed  samples     live    dropped  heap in use (after GC)")
	start := time.Now()
	tick := time.NewTicker(*report)
	done := time.After(*duration)
run:
	for {
		select {
		case <-tick.C:
			printReport(p, start)
		case <-done:
			break run
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	printReport(p, start)

	var buf bytes.Buffer
	if err := p.WriteProfile(&buf); err != nil {
		log.Fatal(err)
	}
	if err := p.Stop(); err != nil {
		log.Fatal(err)
	}
	check(&buf, truths, p.Stats(), profiles)
}

// work calls the hook until stop: on a random key of its own, an Alloc of a
// random size from a random path if the key is free, else a Free, or, one
// time in eight, an Alloc over the live key without a Free.
func work(w int, t *truth, ctxs []context.Context, stop <-chan struct{}) {
	r := rand.New(rand.NewPCG(uint64(w), 1))
	base := uintptr(w+1) << 24 // room for keysPerWorker keys, on 32 bits too
	for i := 0; ; i++ {
		if i%1024 == 0 {
			select {
			case <-stop:
				return
			default:
			}
		}
		key := base + uintptr(r.IntN(keysPerWorker))
		if _, live := t.live[key]; live && r.IntN(8) != 0 {
			heap.Free(key)
			delete(t.live, key)
			continue
		}
		// Sizes spread over four orders of magnitude, most of them small.
		size := 1 + int(float64(maxSize)*r.Float64()*r.Float64()*r.Float64())
		calls[w] = call{ctx: ctxs[r.IntN(len(ctxs))], key: key, size: size}
		bench.CallPath(r.IntN(bench.NumPaths), w, leaf)
		t.allocs++
		t.bytes += int64(size)
		t.live[key] = size // an Alloc over a live key ends its record

	}
}

func printReport(p *profiler.Profiler, start time.Time) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s := p.Stats()
	fmt.Printf("%7.0fs %9d %8d %10d  %6.1f MiB\n", time.Since(start).Seconds(), s.Samples, s.LiveSamples, s.Dropped, float64(m.HeapInuse)/(1<<20))
}

// check compares the final profile's totals with the truth: at rate 1
// every allocation is in alloc_objects and alloc_space, every live one in
// inuse_objects and inuse_space, exactly.
func check(data *bytes.Buffer, truths []truth, s profiler.Stats, profiles int) {
	prof, err := profile.Parse(data)
	if err != nil {
		log.Fatal(err)
	}
	var want [4]int64
	for _, t := range truths {
		want[0] += t.allocs
		want[1] += t.bytes
		want[2] += int64(len(t.live))
		for _, size := range t.live {
			want[3] += int64(size)
		}
	}
	var got [4]int64
	for _, smp := range prof.Sample {
		if h := smp.Label["heap"]; len(h) != 1 || h[0] != heap.Name() {
			continue
		}
		for i := range got {
			got[i] += smp.Value[i]
		}
	}
	fmt.Printf("\n%d profiles written meanwhile; %d samples, %d dropped, %d stacks, %d label sets\n", profiles, s.Samples, s.Dropped, s.Stacks, s.LabelSets)
	fmt.Printf("totals in the final profile: %v (alloc_objects, alloc_space, inuse_objects, inuse_space)\n", got)
	fmt.Printf("what the workers did:        %v\n", want)
	if got != want {
		fmt.Println("NOT EXACT")
		os.Exit(1)
	}
	fmt.Println("exact")
}
