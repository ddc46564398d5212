// Package heapdump reads the heap dump that runtime/debug.WriteHeapDump
// writes and answers one question about it: for a sampled object, what
// holds it? Analyze turns the dump into a pointer graph, searches it
// breadth first from the roots, and returns for every sampled live object
// (and every address the caller asks about) the shortest chain of
// references from a root: a global, a goroutine's stack frame, a
// finalizer.
//
//	f, err := os.CreateTemp("", "heapdump")
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer os.Remove(f.Name())
//	debug.WriteHeapDump(f.Fd()) // not to a pipe this process reads: the world is stopped
//	f.Seek(0, io.SeekStart)
//	res, err := heapdump.Analyze(f, nil, heapdump.Options{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	for _, s := range res.Samples {
//		if s.Chain != nil {
//			fmt.Println(s.Size, "bytes held by", s.Chain[0].Name)
//		}
//	}
//
// # Contents
//
// A dump holds a copy of every byte of the heap. Analyze reads each
// object's bytes only to pick out the words its pointer map marks as
// pointers, and clears them before it reads the next record, as it clears
// its read buffer before it returns. What it keeps and returns is
// addresses, sizes, offsets and the names the dump itself carries
// (functions, files, wait reasons). The one word of contents it keeps is
// the malloc header of objects that have one, which is a pointer to the
// object's type, not data.
//
// # Format
//
// The format is the one runtime/heapdump.go writes under the header
// "go1.7 heap dump": uvarints, length-prefixed byte strings and field
// lists, in records that start with a tag. Analyze accepts 64-bit
// little-endian dumps only, whose heap arenas span at most 32 GiB: it
// stores addresses and offsets as 32-bit counts of words to halve the size
// of the graph. The runtime ignores its own write errors, so a dump cut
// short looks valid up to where it ends; Analyze requires the EOF record
// and reports a dump without it as truncated.
//
// # Accuracy
//
// The dump is written with the world stopped, after sweeping, but before
// any collection: objects that became garbage since the last GC are still
// in it. They are reachable from no root, and their Chain is nil.
//
// Roots are those the dump lists: the data and bss segments of the main
// executable (not those of plugins), the stack frames of every goroutine,
// a goroutine's closure context, defer and panic records, and finalizers.
// Objects held only by roots the dump omits (AddCleanup closures, weak
// handles, pinned or cgo-held memory, runtime structures outside the heap)
// have no chain either. So have objects held only by a variable that lives
// on the stack and has its address taken (a "stack object", such as the
// header of a map that does not escape): the runtime dumps a frame's
// pointers by its liveness map, which leaves those variables out, and
// the collector scans them by a separate table the dump does not use.
// Stack frames without a stack map are dumped
// conservatively, every word a pointer, so a stale word there can make a
// dead object look held by that frame.
//
// Finalizer roots are searched only after every strong root, so that an
// object reachable both ways is shown held by its strong root, as the
// collector would keep it. Among chains of equal length, one from a global
// is preferred to one from a stack frame.
//
// The dump carries no type per object. Options.TypeName can name the
// types of objects with a malloc header (slots larger than 512 bytes and
// smaller than 32 KiB that hold pointers), whose first word points to their
// type; other objects are unnamed. Map internals are collapsed into one
// Hop only where that names them; see Hop.Map.
//
// Stack frames, both of goroutines and of allocation stacks, are physical
// frames: an inlined function is reported under the function it was
// inlined into, with the file and line of the inlined code.
//
// # Cost
//
// WriteHeapDump stops the world for the whole dump, and the dump is as
// large as the heap. Analyze keeps about 30 bytes per object and 8 per
// pointer between objects, plus a buffer as large as the largest single
// object or segment, which it needs because a record's pointer map
// follows its contents. Run in the process that wrote the dump, it
// competes with that process for memory and its collector; a separate
// process that reads the dump from a memfd does not.
package heapdump
