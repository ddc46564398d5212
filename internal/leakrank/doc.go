// Package leakrank reads a time series of heap profiles and ranks their
// allocation sites by how steadily their in-use memory grows, which is what
// tells a leak from memory that is merely large: a cache that holds a
// gigabyte and stays flat is no leak, a site that holds a megabyte more at
// every snapshot is.
//
// A profile is read once and reduced to a Snapshot: the in-use bytes of
// every site (heap label and stack of function names) and the times they
// describe, nothing else. Load reads a directory or a list of files into
// snapshots ordered by time and checks that they come from one program;
// Runs splits them where the program restarted; Rank scores the sites of
// a series; Diff and DeltaProfile compare two snapshots.
//
// A program that watches its own profiles, as the profiler's leak detector
// does, scores its sites the same way without keeping snapshots: a Tally
// reduces each profile further, to the in-use bytes of each site by a
// hash of its key, the program keeps the figures it wants, and FitTrend,
// Monotonicity and Trend.Score score a site's series of them as Rank
// scores a site's history.
//
// A retainers profile, which the profiler's WriteRetainers writes, says
// what keeps sampled objects alive: ReadRetainers reduces one to the bytes
// each chain of references holds of each allocation stack, and Match
// attributes them to the sites of a heap profile, through its locations,
// since the two name inlined calls differently.
//
// Files come from anywhere, so reading them is guarded: only regular files
// are opened, since opening a named pipe waits for a writer; a profile is
// bounded in size, on disk and decompressed (ReadOptions), since a few
// hundred KiB of gzip can decompress to gigabytes; a delta profile, which
// DeltaProfile marks, is refused as a snapshot, and so is a retainers
// profile, by its comment, whatever its name; and in-use figures that add
// up beyond an int64 stop at math.MaxInt64 rather than turn negative.
//
// In-use figures are placed in time where they belong. Those of the hook's
// heaps are of the moment the profile was written. Those of the Go heap
// (heap=go) are the runtime's, which describe the heap as of the mark
// termination of a past GC cycle, the one before the last unless a GC was
// forced: a leak's figures trail it by one or two cycles, and cycles grow
// further apart as the heap grows. The profiler writes that moment in a
// comment (GoHeapTimeComment), and Rank measures the Go heap's growth
// against it, so that a Go heap leak's growth per hour comes out right;
// a profile without the comment is taken as of its own time.
//
// Profiles are those of github.com/leakhunt/profiler, but any pprof heap
// profile with inuse_space/bytes values is read, runtime/pprof's included.
package leakrank
