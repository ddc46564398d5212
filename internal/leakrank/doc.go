// Package leakrank reads a time series of heap profiles and ranks their
// allocation sites by how steadily their in-use memory grows, which is what
// tells a leak from memory that is merely large: a cache that holds a
// gigabyte and stays flat is no leak, a site that holds a megabyte more at
// every snapshot is.
//
// A profile is read once and reduced to a Snapshot: the in-use bytes of
// every site (heap label and stack of function names), nothing else. Load
// reads a directory or a list of files into snapshots ordered by time and
// checks that they come from one program; Runs splits them where the
// program restarted; Rank scores the sites of a series; Diff and
// DeltaProfile compare two snapshots.
//
// Profiles are those of github.com/leakhunt/profiler, but any pprof heap
// profile with inuse_space/bytes values is read, runtime/pprof's included.
package leakrank
