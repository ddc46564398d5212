// Package bench holds the benchmarks of the leakhunt profiler, each beside
// the baseline it is judged against, and the workloads they run.
//
// The benchmark bodies are exported functions taking a *testing.B, so that
// the same code runs under `go test -bench . ./bench/` (bench_test.go wraps
// each one as a Benchmark function) and in-process under
// `go run ./bench/cmd/benchtable`, which runs every baseline and its
// library counterpart alternately in one process and prints the target
// table with PASS or FAIL per row.
//
// Only one profiler runs at a time in a process, so every benchmark that
// starts one stops it before it returns; none of them may run in parallel
// with another.
//
// The benchmarks of the flush and of the rate-1 workload change
// runtime.MemProfileRate while they build their baseline, and restore it.
// The Go runtime never forgets a heap-profile bucket, so a baseline that
// writes the runtime's heap profile sees every stack that any earlier
// benchmark of the process allocated from at a high rate; each such
// benchmark reports the bucket count it wrote so that the comparison can be
// checked.
package bench
