// Command benchtable measures the profiler against the targets of its
// benchmark table and prints the table with the measured values, the
// ratios and PASS or FAIL per row.
//
// It runs the benchmark bodies of package bench in this process with
// testing.Benchmark, each baseline alternating with its library
// counterpart for several rounds (ABBA order, so that drift in the machine
// falls on both alike), and judges each row on the median over rounds of
// the paired ratio. The workload row, whose target (1 %) is below the
// run-to-run noise of separate benchmark runs, uses one benchmark that
// sends each request to both services in turn, and nine rounds of it,
// whose spread (about ±1 %) is as wide as the target. The sampled-Alloc
// row likewise times both sides in one loop. It takes under two minutes
// on 2 cores.
//
// Usage:
//
//	go run ./bench/cmd/benchtable [-rounds n] [-v]
//
// -rounds overrides every row's number of rounds; -v prints each round.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakhunt/profiler/bench"
)

// A row is one line of the target table.
type row struct {
	what, target string

	baseName, libName string
	base, lib         func(*testing.B)

	// single, if set, replaces base and lib: one benchmark that measures
	// both sides in one loop and reports them as the extra metrics named
	// baseMetric and libMetric.
	single                func(*testing.B)
	baseMetric, libMetric string

	benchtime string // -test.benchtime for both sides
	rounds    int

	// value extracts the figure compared from a result; ns/op by default.
	value func(testing.BenchmarkResult) float64
	unit  string
	// judge turns the median paired figure (lib/base, or lib alone for an
	// absolute target) into the shown measure and a verdict.
	judge func(m measure) (string, bool)
}

// measure is what a row's rounds produced.
type measure struct {
	base, lib          float64 // medians of value
	ratio              float64 // median over rounds of lib/base
	ratioMin, ratioMax float64
	libAllocs          int64 // largest allocs/op seen on the library side
	baseRes, libRes    testing.BenchmarkResult
}

func nsPerOp(r testing.BenchmarkResult) float64 {
	if r.N == 0 {
		return math.NaN()
	}
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

func extra(name string) func(testing.BenchmarkResult) float64 {
	return func(r testing.BenchmarkResult) float64 {
		v, ok := r.Extra[name]
		if !ok {
			return math.NaN()
		}
		return v
	}
}

func rows() []row {
	ratioAtMost := func(limit float64, zeroAllocs bool) func(measure) (string, bool) {
		return func(m measure) (string, bool) {
			s := fmt.Sprintf("%.3f×", m.ratio)
			ok := m.ratio <= limit
			if zeroAllocs {
				s += fmt.Sprintf(", %d allocs/op", m.libAllocs)
				ok = ok && m.libAllocs == 0
			}
			return s, ok
		}
	}
	return []row{
		{
			what: "unsampled `Alloc` at the default rate", target: "≤ 0.15 × `new([64]byte)`; 0 allocs",
			baseName: "new([64]byte)", libName: "Alloc(key, 64)",
			base: bench.BaselineNew64, lib: bench.AllocUnsampled,
			benchtime: "100ms", rounds: 9, unit: "ns/op",
			judge: ratioAtMost(0.15, true),
		},
		{
			what: "`Free` of a key that was never sampled", target: "≤ 0.10 × `new([64]byte)`; 0 allocs",
			baseName: "new([64]byte)", libName: "Free(key), 16k live",
			base: bench.BaselineNew64, lib: bench.FreeUnsampled,
			benchtime: "100ms", rounds: 9, unit: "ns/op",
			judge: ratioAtMost(0.10, true),
		},
		{
			what: "Alloc+Free pair, `b.RunParallel` on 2 cores", target: "ns/op ≤ the single-goroutine ns/op",
			baseName: "1 goroutine", libName: fmt.Sprintf("RunParallel, GOMAXPROCS=%d", runtime.GOMAXPROCS(0)),
			base: bench.AllocFreePair, lib: bench.AllocFreePairParallel,
			benchtime: "100ms", rounds: 9, unit: "ns/op",
			judge: ratioAtMost(1, false),
		},
		{
			what: "sampled `Alloc` (stack depth 32)", target: "≤ 1.2 × `runtime.Callers` at the same depth",
			baseName: "runtime.Callers, 32 slots", libName: "Alloc at rate 1, depth 32",
			single: bench.SampledInterleaved, baseMetric: "callers-ns/op", libMetric: "sampled-ns/op",
			benchtime: "200ms", rounds: 9, unit: "ns/op",
			judge: ratioAtMost(1.2, false),
		},
		{
			what: "hooking every allocation of an allocation-heavy workload at the default rate", target: "≤ 1 % throughput loss vs no hook",
			baseName: "no hook", libName: "hooked, default rate",
			single: bench.WorkloadInterleaved, baseMetric: "nohook-ns/req", libMetric: "hooked-ns/req",
			benchtime: "1s", rounds: 9, unit: "ns/req",
			judge: func(m measure) (string, bool) {
				loss := m.ratio - 1
				return fmt.Sprintf("%+.2f %% (rounds %+.2f…%+.2f %%)", 100*loss, 100*(m.ratioMin-1), 100*(m.ratioMax-1)), loss <= 0.01
			},
		},
		{
			what: "rate 1 (every allocation recorded)", target: "no slower than the same workload with `runtime.MemProfileRate = 1`",
			baseName: "MemProfileRate=1, no hook", libName: "hooked at rate 1",
			base: bench.WorkloadMemProfileRate1, lib: bench.WorkloadHookedRate1,
			benchtime: "300ms", rounds: 3, unit: "ns/req",
			judge: ratioAtMost(1, false),
		},
		{
			what: "one flush (WriteProfile, Go heap off), ~100k live samples over ~6.5k distinct stacks, steady state", target: "≥ 2× faster than `pprof.Lookup(\"heap\").WriteTo` over the same distinct stacks in the same process",
			baseName: "pprof heap WriteTo", libName: "WriteProfile",
			base: bench.BaselinePprofHeap, lib: bench.Flush,
			benchtime: "500ms", rounds: 3, unit: "ns/op",
			judge: func(m measure) (string, bool) {
				speedup := 1 / m.ratio
				return fmt.Sprintf("%.2f× faster", speedup), speedup >= 2
			},
		},
		{
			what: "table memory", target: "≤ 64 bytes per live sample, stacks stored once",
			baseName: "map[uintptr]uint64", libName: "live table, 1 stack",
			base: bench.BaselineMapMemory, lib: bench.TableMemory,
			benchtime: "2x", rounds: 1, unit: "B/sample",
			value: extra("bytes/sample"),
			judge: func(m measure) (string, bool) {
				return fmt.Sprintf("%.1f B/sample", m.lib), m.lib <= 64
			},
		},
		{
			what: "one profile with the Go heap on and the hook's table empty, ~6.5k Go heap stacks of ~45 frames, steady state", target: "≤ 1.5 × `pprof.Lookup(\"heap\").WriteTo` of the same heap",
			baseName: "pprof heap WriteTo", libName: "WriteProfile",
			base: bench.BaselinePprofHeap, lib: bench.FlushGoHeap,
			benchtime: "500ms", rounds: 5, unit: "ns/op",
			judge: ratioAtMost(1.5, false),
		},
	}
}

// runOrder runs the flush rows first: the runtime never forgets a heap
// profile bucket, so after the MemProfileRate=1 workload its profile would
// hold that workload's stacks too, and the baselines would write more.
var runOrder = []int{6, 8, 7, 0, 1, 2, 3, 4, 5}

func main() {
	testing.Init()
	rounds := flag.Int("rounds", 0, "rounds per row (0: each row's default)")
	verbose := flag.Bool("v", false, "print every round")
	flag.Parse()

	start := time.Now()
	loadBefore := loadAverage()
	table := rows()
	results := make([]measure, len(table))
	for _, i := range runOrder {
		r := table[i]
		if *rounds > 0 {
			r.rounds = *rounds
		}
		fmt.Fprintf(os.Stderr, "row %d: %s …\n", i+1, r.what)
		results[i] = run(r, *verbose)
	}

	fmt.Printf("go version: %s %s/%s, GOMAXPROCS=%d, NumCPU=%d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("cpu: %s\n", cpuModel())
	fmt.Printf("load average (1, 5, 15 min) before: %s, after: %s\n\n", loadBefore, loadAverage())
	fmt.Println("| # | what | target | baseline | library | measured | result |")
	fmt.Println("|---|---|---|---|---|---|---|")
	pass := 0
	for i, r := range table {
		m := results[i]
		shown, ok := r.judge(m)
		verdict := "FAIL"
		if ok {
			verdict, pass = "PASS", pass+1
		}
		fmt.Printf("| %d | %s | %s | %s: %s | %s: %s | %s | %s |\n",
			i+1, r.what, r.target, r.baseName, format(m.base, r.unit), r.libName, format(m.lib, r.unit), shown, verdict)
	}
	fmt.Printf("\n%d of %d rows pass; medians over rounds; took %v\n", pass, len(table), time.Since(start).Round(time.Second))
	fmt.Println()
	printHookModel(results)
	printDetails(table, results)
}

// printHookModel prints what row 5's hook calls would cost if each cost
// what rows 1, 2 and 4 measured in a tight loop. The workload measures
// more when the hook's memory (the key filter above all) is out of cache
// by the time the next call comes.
func printHookModel(results []measure) {
	lib := results[4].libRes
	calls, samples := lib.Extra["hook-calls/req"], lib.Extra["samples/req"]
	alloc, free, sampled := results[0].lib, results[1].lib, results[3].lib
	// The service pairs every Alloc with a Free.
	est := calls/2*alloc + calls/2*free + samples*sampled
	fmt.Printf("row 5 cost model: %.1f hook calls/req × (%.2f ns Alloc + %.2f ns Free)/2 + %.4f samples/req × %.0f ns = %.0f ns/req, %.2f %% of %s\n\n",
		calls, alloc, free, samples, sampled, est, 100*est/results[4].base, format(results[4].base, "ns/req"))
}

// loadAverage returns the first three fields of /proc/loadavg: whether
// other processes competed for the CPUs during the run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// run measures one row: rounds of base and lib in ABBA order.
func run(r row, verbose bool) measure {
	value := r.value
	if value == nil {
		value = nsPerOp
	}
	if err := flag.Set("test.benchtime", r.benchtime); err != nil {
		panic(err)
	}
	var bases, libs, ratios []float64
	var m measure
	for round := range r.rounds {
		var rb, rl testing.BenchmarkResult
		if r.single != nil {
			res := benchmark(r.libName, r.single)
			vb, vl := extra(r.baseMetric)(res), extra(r.libMetric)(res)
			bases, libs, ratios = append(bases, vb), append(libs, vl), append(ratios, vl/vb)
			m.baseRes, m.libRes = res, res
			if verbose {
				fmt.Fprintf(os.Stderr, "  round %d: %s | ratio %.4f\n", round+1, res, vl/vb)
			}
			continue
		}
		if round%2 == 0 {
			rb, rl = benchmark(r.baseName, r.base), benchmark(r.libName, r.lib)
		} else {
			rl, rb = benchmark(r.libName, r.lib), benchmark(r.baseName, r.base)
		}
		vb, vl := value(rb), value(rl)
		bases, libs, ratios = append(bases, vb), append(libs, vl), append(ratios, vl/vb)
		m.libAllocs = max(m.libAllocs, rl.AllocsPerOp())
		m.baseRes, m.libRes = rb, rl
		if verbose {
			fmt.Fprintf(os.Stderr, "  round %d: %s %s | %s %s | ratio %.4f\n", round+1, r.baseName, rb, r.libName, rl, vl/vb)
		}
	}
	m.base, m.lib, m.ratio = median(bases), median(libs), median(ratios)
	m.ratioMin, m.ratioMax = slices.Min(ratios), slices.Max(ratios)
	return m
}

func benchmark(name string, f func(*testing.B)) testing.BenchmarkResult {
	r := testing.Benchmark(f)
	if r.N == 0 {
		// testing.Benchmark discards a failing benchmark's log.
		fmt.Fprintf(os.Stderr, "benchtable: %s failed; run it with go test -bench to see why\n", name)
		os.Exit(1)
	}
	return r
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func format(v float64, unit string) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v >= 1e6 && strings.HasPrefix(unit, "ns"):
		return fmt.Sprintf("%.2f ms", v/1e6)
	case v >= 1e4 && strings.HasPrefix(unit, "ns"):
		return fmt.Sprintf("%.1f µs", v/1e3)
	case v < 100:
		return fmt.Sprintf("%.2f %s", v, unit)
	}
	return fmt.Sprintf("%.0f %s", v, unit)
}

// printDetails prints the last round's full results, with every extra
// metric (p99 latency, buckets, bytes per profile...).
func printDetails(table []row, results []measure) {
	fmt.Println("last round of each row (go test -bench format):")
	for i, r := range table {
		m := results[i]
		if r.single != nil {
			fmt.Printf("  %d both  %-28s %s %s\n", i+1, "interleaved", m.libRes.String(), m.libRes.MemString())
			continue
		}
		fmt.Printf("  %d base  %-28s %s %s\n", i+1, r.baseName, m.baseRes.String(), m.baseRes.MemString())
		fmt.Printf("  %d lib   %-28s %s %s\n", i+1, r.libName, m.libRes.String(), m.libRes.MemString())
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "unknown".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
