package bench

import "testing"

// Each benchmark runs an exported body of this package, so that
// cmd/benchtable runs the very same code in-process. Baselines are named
// Baseline… or sit beside their counterpart.

func BenchmarkBaselineNew64(b *testing.B)          { BaselineNew64(b) }
func BenchmarkAllocUnsampled(b *testing.B)         { AllocUnsampled(b) }
func BenchmarkAllocNoProfiler(b *testing.B)        { AllocNoProfiler(b) }
func BenchmarkFreeUnsampled(b *testing.B)          { FreeUnsampled(b) }
func BenchmarkAllocFreePair(b *testing.B)          { AllocFreePair(b) }
func BenchmarkAllocFreePairParallel(b *testing.B)  { AllocFreePairParallel(b) }
func BenchmarkBaselineCallersDepth32(b *testing.B) { BaselineCallersDepth32(b) }
func BenchmarkAllocSampledDepth32(b *testing.B)    { AllocSampledDepth32(b) }
func BenchmarkSampledInterleaved(b *testing.B)     { SampledInterleaved(b) }

func BenchmarkWorkloadNoHook(b *testing.B)           { WorkloadNoHook(b) }
func BenchmarkWorkloadHooked(b *testing.B)           { WorkloadHooked(b) }
func BenchmarkWorkloadHookedNoProfiler(b *testing.B) { WorkloadHookedNoProfiler(b) }
func BenchmarkWorkloadInterleaved(b *testing.B)      { WorkloadInterleaved(b) }
func BenchmarkWorkloadMemProfileRate1(b *testing.B)  { WorkloadMemProfileRate1(b) }
func BenchmarkWorkloadHookedRate1(b *testing.B)      { WorkloadHookedRate1(b) }

// The flush pair runs after the workloads in a plain `go test -bench .`;
// the runtime's buckets from WorkloadMemProfileRate1 then add to the
// baseline's, which its "buckets" metric shows. cmd/benchtable runs the
// flush pair first.
func BenchmarkBaselinePprofHeap(b *testing.B) { BaselinePprofHeap(b) }
func BenchmarkFlush(b *testing.B)             { Flush(b) }
func BenchmarkFlushGoHeap(b *testing.B)       { FlushGoHeap(b) }
func BenchmarkFlushFileGoHeap(b *testing.B)   { FlushFileGoHeap(b) }

func BenchmarkBaselineMapMemory(b *testing.B)     { BaselineMapMemory(b) }
func BenchmarkTableMemory(b *testing.B)           { TableMemory(b) }
func BenchmarkTableMemoryManyStacks(b *testing.B) { TableMemoryManyStacks(b) }
