// Package dwarftypes names the pointers of a Go executable's memory by
// its DWARF: for a package-level variable, or an object whose runtime
// type is known, it says which field holds the pointer at a given offset
// ("registry.byName", "conns[3]") and what type that pointer points to.
// A chain of references from a heap dump can then be shown as
// "[main.Session] .conns" rather than "[704 B object] +40".
//
//	x, err := dwarftypes.Open("/proc/self/exe")
//	if errors.Is(err, dwarftypes.ErrNoDWARF) {
//		return // built with -ldflags=-w: fall back to offsets
//	} else if err != nil {
//		log.Fatal(err)
//	}
//	t, ok := x.Global("main.registry")
//	if !ok {
//		return
//	}
//	path, pointee, ok := t.Field(8) // the pointer 8 bytes into main.registry
//	if ok {
//		fmt.Println("main.registry"+path, "points to a", pointee.Name())
//		// main.registry.byName points to a map[string]*main.Session
//	}
//
// # Paths
//
// Type.Field walks from a type down to the pointer word at an offset
// and returns the way it took, in Go's syntax: ".name" for a struct
// field (an embedded field by its type's name, as Go names it),
// "[i]" for an array element. What the walk ends on decides the rest:
//
//   - *T: the pointee is T.
//   - a slice: its data pointer, at the slice's own offset; the pointee
//     is the slice's element repeated (see Type.Repeated), named "[]T".
//   - a string: its data pointer; the bytes have no type, and no pointee.
//   - a map, a channel or a func: the pointee is the map, channel or func
//     type itself, of Kind Map, Chan or Func, standing for the runtime
//     object behind the value: the map's header, the channel's hchan,
//     the closure. The DWARF does not lay those out under that type
//     (Field of it describes a variable of the type, a single pointer),
//     so a caller shows the object as one hop.
//   - an interface: its second word, the data pointer, adds nothing to
//     the path and has no pointee, since the dynamic type is not in the
//     DWARF; its first word is named ".(type)", or ".(itab)" for an
//     interface with methods, also without pointee.
//   - unsafe.Pointer: no pointee.
//
// An offset that lands on a word that is not a pointer, in padding, or
// past the end of the type is reported as false.
//
// # Names
//
// Names are the linker's, which it gives the DWARF: those of the type
// descriptors' symbols, less their escapes and marks (see goName). They
// qualify a named type with its package's path where reflect uses the
// package's name ("*net/http.Client", not "*http.Client"; the same for
// package main), and otherwise write types as Go does: "[]*main.Conn",
// "[4]*main.Conn", "map[string]*main.Conn", "chan *main.Conn", "func()",
// "interface {}", "error". A generic instance lists its type arguments
// without spaces ("main.Pair[string,main.Conn]"), as reflect does, and
// an unnamed struct qualifies its unexported fields with their package's path
// ("struct { main.mu sync.Mutex; ... }"). The runtime's internals of a
// map or channel appear under names of the linker's own
// ("map<string,*main.Conn>", "hchan<*main.Conn>"), and a map's groups as
// "map.group[string]*main.Conn", as reflect names them too.
//
// # Runtime types
//
// Index.RuntimeType takes the link address of a type descriptor, the
// address the executable's symbol table would give it: the first word of
// an object with a malloc header, less the process's load bias. The
// DWARF records each type's descriptor as an offset from the symbol
// runtime.types (cmd/link/internal/ld/dwarf.go writes
// DW_AT_go_runtime_type with an R_ADDROFF relocation, relative to the
// section runtime.types starts), so an executable without a symbol table
// has no runtime types to look up.
//
// # Accuracy
//
// The DWARF describes each type's layout exactly; the walk is only as
// right as the type and offset it starts from. A pointer may point into
// the middle of an object (a subslice, the address of a field), and the
// pointee then describes the memory from there, not from the start of
// the object that holds it: the index of an element of a repeated type
// counts from where the pointer points. An object's offsets count from
// the start of its value: a slot with a malloc header has its value a
// word later.
//
// # Cost
//
// Open reads the sections that entries are decoded from (not the line
// tables, call frames or location lists, most of a Go program's DWARF),
// decompressing them if they are compressed, and keeps them: a few
// megabytes for a large program. It decodes one entry per compilation
// unit, to list the units by package. The rest is read on first use and
// kept: Global indexes the variables of the package a name begins with,
// RuntimeType all the runtime types at once, and a type's name, size and
// fields are read when first asked for. Indexing a package decodes every
// entry of its units, its functions' too, since nothing tells where they
// end without.
//
// # Concurrency
//
// An Index and its Types are safe for concurrent use; lookups that read
// the DWARF take a lock.
package dwarftypes
