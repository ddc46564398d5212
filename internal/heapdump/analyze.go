package heapdump

import (
	"bufio"
	"io"
)

// scrub overwrites the buffer of br, which holds the last bytes of the
// dump it read, with zeros: bufio has no call that clears it, but filling
// it from a reader of zeros does.
func scrub(br *bufio.Reader) {
	br.Reset(zeros{})
	br.Peek(br.Size())
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// Options configures Analyze. The zero value names roots by kind and
// address, leaves types unknown and keeps any number of objects.
type Options struct {
	// Global names the global variable at addr, and gives the offset of
	// addr into it, typically from the executable's symbol table. Nil, or
	// ok false: the root is named by segment and address.
	Global func(addr uint64) (name string, off uint64, ok bool)

	// TypeName names the runtime type whose *_type is at addr: the first
	// word of an object with a malloc header. Nil, or ok false: the names
	// of the types the dump records itself (those of itabs), else unknown.
	TypeName func(addr uint64) (string, bool)

	// MaxObjects bounds the objects Analyze keeps; a dump with more is an
	// error, before the graph grows past it. Zero means no bound; a
	// negative value is an error.
	MaxObjects int
}

// Result is what Analyze found. It holds no byte of any object's
// contents. It is not safe to modify concurrently with reading.
type Result struct {
	Samples []Sample // sampled objects, in dump order, then targets, in the order given
	Objects int      // objects in the dump
	Edges   int      // pointers kept between distinct objects
}

// Sample is one object and the chain that keeps it alive.
type Sample struct {
	Addr       uint64  // as recorded or given; may be interior to its object
	Size       uint64  // the slot size of the object Addr falls in; 0 if none
	Target     bool    // from the targets of Analyze rather than the dump's samples
	Stack      []Frame // the allocation stack, leaf first; empty for targets; shared by the samples of one stack
	BucketSize uint64  // the allocation size the profiler recorded; 0 for targets

	// Chain[0] is the root; one Hop follows for each object on the way,
	// the last being the object itself. Nil if no root reaches it.
	Chain []Hop
}

// Frame is one physical frame of an allocation stack.
type Frame struct {
	Func, File string
	Line       int
}

// Hop is one step of a chain: a root, an object, or a map's internals.
type Hop struct {
	// Root is the kind of root for Chain[0], RootNone for the others.
	Root RootKind

	// Name is, for a root, the global's name ("main.registry"), a stack
	// frame's function with its goroutine's id and wait reason
	// ("main.worker (goroutine 7, chan receive)"), or a description of
	// the root; for an object, its type's name if known, else "".
	Name string

	// Size is the slot size of an object; for a Map hop, the sum of those
	// of the objects it stands for. Zero for roots.
	Size uint64

	// Offset is the offset, within the previous hop (the object, stack
	// frame or global), of the pointer to this one. Zero for roots. Within
	// a frame it counts from the frame's stack pointer; within a global
	// not named by Options.Global it is zero, and the root's Name gives
	// the pointer's own address. After a Map hop, it is the offset within
	// the map's array of groups, the last object the Map hop stands for.
	Offset uint64

	// Type is, for an object with a malloc header, the header: the
	// address of its type's descriptor in the dumped process; for a Map
	// hop, the header of the map's array of groups. Zero for other
	// objects and for roots. Offsets within an object with a header count
	// from the header, a word before its value.
	Type uint64

	// Interior reports that the pointer to this object points inside it,
	// not where its value starts: a field's address, a subslice. False
	// for roots.
	Interior bool

	// Map reports that the hop stands for the internals of a Go map: its
	// header, directory, tables and groups, as one hop named after the
	// map's type ("map[string]*main.Node"). It is set only where the
	// groups' type is known by name (Options.TypeName on their malloc
	// header), and the hops before them have the runtime's layout of a
	// map; a map whose groups have no malloc header (all of at most 512
	// bytes) or is unnamed shows as plain hops.
	Map bool
}

// RootKind is the kind of root a chain starts from.
type RootKind int

const (
	RootNone      RootKind = iota // not a root: an object
	RootGlobal                    // a pointer in the data or bss segment
	RootStack                     // a pointer in a goroutine's stack frame
	RootFinalizer                 // an object with a finalizer, or its function
	RootOther                     // a goroutine's context, a defer or panic record
)

func (k RootKind) String() string {
	switch k {
	case RootNone:
		return "none"
	case RootGlobal:
		return "global"
	case RootStack:
		return "stack"
	case RootFinalizer:
		return "finalizer"
	case RootOther:
		return "other"
	}
	return "RootKind(?)"
}

// Analyze reads a heap dump from r, in the format of
// runtime/debug.WriteHeapDump, and returns, for every sampled live object
// of the dump (its AllocSample records) and for each address in targets,
// the shortest chain of references from a root to it. It keeps pointer
// values and object sizes only: no byte of any object's contents outlives
// the parse of that object, and nothing it returns holds one.
//
// Errors name the stage that failed: a dump that is not 64-bit little
// endian, is cut short (has no EOF record), or holds a record Analyze does
// not know is an error, as are more objects than Options.MaxObjects.
// Analyze calls the functions of opts from its own goroutine only, and
// shares no state between calls: calls may run concurrently.
func Analyze(r io.Reader, targets []uint64, opts Options) (*Result, error) {
	if opts.MaxObjects < 0 {
		return nil, errorf("invalid Options.MaxObjects %d", opts.MaxObjects)
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<16)
		defer scrub(br)
	}
	p := &parser{d: decoder{r: br}, maxObjects: opts.MaxObjects}
	err := p.parse()
	clear(p.scratch[:cap(p.scratch)])
	if err != nil {
		return nil, err
	}
	g, err := p.graph()
	if err != nil {
		return nil, err
	}
	g.search()
	return g.result(targets, &opts), nil
}
