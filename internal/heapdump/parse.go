package heapdump

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Record tags and field kinds, as in runtime/heapdump.go.
const (
	tagEOF             = 0
	tagObject          = 1
	tagOtherRoot       = 2
	tagType            = 3
	tagGoroutine       = 4
	tagStackFrame      = 5
	tagParams          = 6
	tagFinalizer       = 7
	tagItab            = 8
	tagOSThread        = 9
	tagMemStats        = 10
	tagQueuedFinalizer = 11
	tagData            = 12
	tagBSS             = 13
	tagDefer           = 14
	tagPanic           = 15
	tagMemProf         = 16
	tagAllocSample     = 17

	fieldKindEol   = 0
	fieldKindPtr   = 1
	fieldKindIface = 2
	fieldKindEface = 3
)

const (
	header = "go1.7 heap dump\n"

	// memStatsWords is the number of uvarints of a MemStats record: the
	// 24 scalar fields dumpmemstats writes, PauseNs[256] and NumGC.
	memStatsWords = 24 + 256 + 1

	// maxArenaSpan is the widest range of heap addresses Analyze accepts:
	// addresses, sizes and offsets are kept as 32-bit counts of words.
	maxArenaSpan = 8 << 32

	// Objects of these slot sizes that hold pointers start with a malloc
	// header, a pointer to their type: larger than
	// internal/runtime/gc.MinSizeForMallocHeader, smaller than the
	// largest small size class (runtime/mbitmap.go, heapBitsInSpan). A
	// slot of exactly that class, 32 KiB, can be a small object with a
	// header or a large object without one (runtime/malloc.go: a request
	// over 32 KiB less the header is large, and a large object of up to 32
	// KiB takes four pages): its first word is not read as a type.
	minHeaderSize = 8 * 64
	maxHeaderSize = 32<<10 - 8
)

// root is a reference from outside the heap.
type root struct {
	to   uint32   // the target, as a word (see parser.word); after graph(), its object
	kind RootKind //
	what rootWhat // what within kind; for globals, the segment
	desc uint32   // the frame (stacks) or goroutine (others) it belongs to
	off  uint64   // offset of the pointer in its frame or segment

	interior bool // after graph(): it points inside its object (see graph.interior)
}

// rootWhat tells apart roots of one kind, to name them.
type rootWhat uint8

const (
	whatData rootWhat = iota
	whatBSS
	whatFrame
	whatContext
	whatDefer
	whatDeferFunc
	whatPanic
	whatPanicValue
	whatFinalizerObject
	whatFinalizerFunc
	whatQueuedObject
	whatQueuedFunc
	whatOtherRoot
)

type goroutine struct {
	id     uint64
	reason string
}

type frame struct {
	fn string
	g  uint32 // index into goroutines
}

type bucket struct {
	size  uint64
	stack []Frame
}

type allocSample struct {
	addr, bucket uint64
}

// parser holds what Analyze keeps of a dump while it reads it. Objects are
// indexed in the order of the dump; their addresses, sizes and pointers
// are words from arenaStart, so that each fits 32 bits.
type parser struct {
	d          decoder
	maxObjects int

	params               bool
	arenaStart, arenaEnd uint64

	start   []uint32 // first word of each object
	size    []uint32 // slot size in words
	edgeEnd []uint32 // the pointers of object i are edges [edgeEnd[i-1], edgeEnd[i])
	edgeTo  []uint32 // word pointed to
	edgeOff []uint32 // word offset of the pointer in its object

	hdrObj  []uint32 // objects with a malloc header, ascending
	hdrType []uint64 // the header word of each

	roots      []root
	segments   [2]uint64 // start of data and bss
	frames     []frame
	goroutines []goroutine
	byG        map[uint64]uint32 // goroutine address -> index
	others     []string          // descriptions of OtherRoot records
	types      map[uint64]string // the dump's own Type records
	buckets    map[uint64]*bucket
	samples    []allocSample

	scratch []byte            // the contents of the record being read
	nameBuf []byte            // a stack frame's function name
	names   map[string]string // interned function and file names
}

func (p *parser) parse() error {
	var hdr [len(header)]byte
	n, err := io.ReadFull(p.d.r, hdr[:])
	if string(hdr[:n]) != header[:n] {
		return errorf("not a heap dump: header %q, want %q", hdr[:n], header)
	}
	if err != nil {
		return eofIsTruncation(err)
	}
	p.d.off = int64(len(header))
	p.byG = make(map[uint64]uint32)
	p.types = make(map[uint64]string)
	p.buckets = make(map[uint64]*bucket)
	p.names = make(map[string]string)
	for {
		at := p.d.off
		tag, err := p.d.uvarint()
		if err != nil {
			return err
		}
		if tag == tagEOF {
			return nil
		}
		if !p.params && tag != tagParams {
			return errorf("%s record at offset %d before the params record", recordName(tag), at)
		}
		if err := p.record(tag); err != nil {
			if err == errTruncated {
				return err
			}
			return errorf("%s record at offset %d: %w", recordName(tag), at, err)
		}
	}
}

// record reads the body of one record.
func (p *parser) record(tag uint64) error {
	switch tag {
	case tagParams:
		return p.readParams()
	case tagObject:
		return p.readObject()
	case tagType:
		return p.readType()
	case tagItab:
		return p.d.skip(2)
	case tagGoroutine:
		return p.readGoroutine()
	case tagStackFrame:
		return p.readFrame()
	case tagDefer:
		return p.readDefer()
	case tagPanic:
		return p.readPanic()
	case tagOSThread:
		return p.d.skip(3)
	case tagData, tagBSS:
		return p.readSegment(tag)
	case tagFinalizer, tagQueuedFinalizer:
		return p.readFinalizer(tag)
	case tagOtherRoot:
		return p.readOtherRoot()
	case tagMemStats:
		return p.d.skip(memStatsWords)
	case tagMemProf:
		return p.readMemProf()
	case tagAllocSample:
		return p.readAllocSample()
	}
	return fmt.Errorf("unknown record kind %d", tag)
}

var recordNames = [...]string{
	tagEOF: "EOF", tagObject: "object", tagOtherRoot: "other root", tagType: "type",
	tagGoroutine: "goroutine", tagStackFrame: "stack frame", tagParams: "params",
	tagFinalizer: "finalizer", tagItab: "itab", tagOSThread: "OS thread",
	tagMemStats: "memstats", tagQueuedFinalizer: "queued finalizer", tagData: "data",
	tagBSS: "bss", tagDefer: "defer", tagPanic: "panic", tagMemProf: "memprof",
	tagAllocSample: "alloc sample",
}

func recordName(tag uint64) string {
	if tag < uint64(len(recordNames)) {
		return recordNames[tag]
	}
	return fmt.Sprintf("kind %d", tag)
}

func (p *parser) readParams() error {
	if p.params {
		return fmt.Errorf("second params record")
	}
	bigEndian, err := p.d.bool()
	if err != nil {
		return err
	}
	ptrSize, err := p.d.uvarint()
	if err != nil {
		return err
	}
	if p.arenaStart, err = p.d.uvarint(); err != nil {
		return err
	}
	if p.arenaEnd, err = p.d.uvarint(); err != nil {
		return err
	}
	arch, err := p.d.string(&p.scratch)
	if err != nil {
		return err
	}
	if err := p.d.skipBytes(); err != nil { // Go version
		return err
	}
	if err := p.d.skip(1); err != nil { // ncpu
		return err
	}
	switch {
	case bigEndian:
		return fmt.Errorf("unsupported heap dump: big endian (%s)", arch)
	case ptrSize != 8:
		return fmt.Errorf("unsupported heap dump: %d-byte pointers (%s)", ptrSize, arch)
	case p.arenaEnd < p.arenaStart || p.arenaStart%8 != 0:
		return fmt.Errorf("invalid heap arenas [%#x, %#x)", p.arenaStart, p.arenaEnd)
	case p.arenaEnd-p.arenaStart > maxArenaSpan:
		return fmt.Errorf("unsupported heap dump: heap arenas span %d GiB, more than %d", (p.arenaEnd-p.arenaStart)>>30, maxArenaSpan>>30)
	}
	p.params = true
	return nil
}

// inArena reports whether v points into the heap arenas; only such
// pointers can reach a heap object.
func (p *parser) inArena(v uint64) bool {
	return v >= p.arenaStart && v < p.arenaEnd
}

// word is the 32-bit form of an address within the arenas: pointers to
// any byte of a word map to that word, which lies in the same object, as
// objects are word aligned.
func (p *parser) word(v uint64) uint32 {
	return uint32((v - p.arenaStart) >> 3)
}

// readFields reads a field list and calls ptr with each pointer it marks
// within contents that points into the arenas, and with its offset; it
// reports whether the list marks any pointer, whatever its value. An
// offset beyond contents is an error if strict, else ignored: the runtime
// dumps frames' outgoing arguments by a map that may overreach.
func (p *parser) readFields(contents []byte, strict bool, ptr func(off, v uint64)) (bool, error) {
	marked := false
	for {
		kind, err := p.d.uvarint()
		if err != nil {
			return marked, err
		}
		if kind == fieldKindEol {
			return marked, nil
		}
		off, err := p.d.uvarint()
		if err != nil {
			return marked, err
		}
		marked = true
		switch kind {
		case fieldKindPtr:
		case fieldKindIface, fieldKindEface:
			// Never written since Go 1.5; the data word of an interface
			// is its second.
			off += 8
		default:
			return marked, fmt.Errorf("unknown field kind %d", kind)
		}
		if off > uint64(len(contents)) || uint64(len(contents))-off < 8 {
			if strict {
				return marked, fmt.Errorf("field at offset %d beyond %d bytes", off, len(contents))
			}
			continue
		}
		if v := binary.LittleEndian.Uint64(contents[off:]); p.inArena(v) {
			ptr(off, v)
		}
	}
}

func (p *parser) readObject() error {
	addr, err := p.d.uvarint()
	if err != nil {
		return err
	}
	contents, err := p.d.readBytes(p.scratch)
	if err != nil {
		return err
	}
	p.scratch = contents
	size := uint64(len(contents))
	if !p.inArena(addr) || addr%8 != 0 || size%8 != 0 || size > p.arenaEnd-addr {
		return fmt.Errorf("object [%#x, +%d) not word aligned within the heap arenas", addr, size)
	}
	if p.maxObjects > 0 && len(p.start) >= p.maxObjects {
		return fmt.Errorf("more than Options.MaxObjects (%d) objects", p.maxObjects)
	}
	pointers, err := p.readFields(contents, true, func(off, v uint64) {
		if v-addr < size {
			return // a pointer into itself holds nothing
		}
		p.edgeTo = append(p.edgeTo, p.word(v))
		p.edgeOff = append(p.edgeOff, uint32(off>>3))
	})
	var hdrWord uint64
	if size >= 8 {
		hdrWord = binary.LittleEndian.Uint64(contents)
	}
	clear(contents)
	if err != nil {
		return err
	}
	if len(p.edgeTo) >= math.MaxInt32 {
		return fmt.Errorf("more than %d pointers", math.MaxInt32)
	}
	if pointers && size > minHeaderSize && size <= maxHeaderSize {
		p.hdrObj = append(p.hdrObj, uint32(len(p.start)))
		p.hdrType = append(p.hdrType, hdrWord)
	}
	p.start = append(p.start, p.word(addr))
	p.size = append(p.size, uint32(size>>3))
	p.edgeEnd = append(p.edgeEnd, uint32(len(p.edgeTo)))
	return nil
}

func (p *parser) readType() error {
	addr, err := p.d.uvarint()
	if err != nil {
		return err
	}
	if err := p.d.skip(1); err != nil { // size
		return err
	}
	name, err := p.d.string(&p.scratch)
	if err != nil {
		return err
	}
	p.types[addr] = name
	return p.d.skip(1) // indirect
}

func (p *parser) readGoroutine() error {
	var w [8]uint64 // g, sp, goid, gopc, status, isSystem, isBackground, waitsince
	if err := p.words(w[:]); err != nil {
		return err
	}
	reason, err := p.d.string(&p.scratch)
	if err != nil {
		return err
	}
	var ctxt uint64
	if ctxt, err = p.d.uvarint(); err != nil {
		return err
	}
	if err := p.d.skip(3); err != nil { // m, _defer, _panic
		return err
	}
	gi := uint32(len(p.goroutines))
	p.goroutines = append(p.goroutines, goroutine{id: w[2], reason: p.intern(reason)})
	p.byG[w[0]] = gi
	p.otherRoot(whatContext, gi, ctxt)
	return nil
}

func (p *parser) otherRoot(what rootWhat, desc uint32, v uint64) {
	if p.inArena(v) {
		p.roots = append(p.roots, root{to: p.word(v), kind: RootOther, what: what, desc: desc})
	}
}

func (p *parser) readFrame() error {
	if len(p.goroutines) == 0 {
		return fmt.Errorf("stack frame before any goroutine")
	}
	if err := p.d.skip(3); err != nil { // sp, depth, child sp
		return err
	}
	contents, err := p.d.readBytes(p.scratch)
	if err != nil {
		return err
	}
	if err := p.d.skip(3); err != nil { // entry pc, pc, continuation pc
		return err
	}
	p.scratch = contents
	// The name comes between the contents and their field list, so it
	// needs a buffer of its own.
	name, err := p.d.readBytes(p.nameBuf)
	if err != nil {
		return err
	}
	p.nameBuf = name
	fi := uint32(len(p.frames))
	var found bool
	_, err = p.readFields(contents, false, func(off, v uint64) {
		found = true
		p.roots = append(p.roots, root{to: p.word(v), kind: RootStack, what: whatFrame, desc: fi, off: off})
	})
	clear(contents)
	if err != nil {
		return err
	}
	if found {
		p.frames = append(p.frames, frame{fn: p.intern(string(name)), g: uint32(len(p.goroutines) - 1)})
	}
	return nil
}

// goroutineOf is the index of the goroutine at address g, the last one
// read if unknown: the runtime writes defers and panics after their
// goroutine's frames.
func (p *parser) goroutineOf(g uint64) uint32 {
	if i, ok := p.byG[g]; ok {
		return i
	}
	return uint32(len(p.goroutines) - 1)
}

// words reads len(w) uvarints into w: the fixed fields of a record.
func (p *parser) words(w []uint64) error {
	for i := range w {
		var err error
		if w[i], err = p.d.uvarint(); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) readDefer() error {
	var w [7]uint64 // addr, g, sp, pc, fn, fn.fn, link
	if err := p.words(w[:]); err != nil {
		return err
	}
	if len(p.goroutines) == 0 {
		return fmt.Errorf("defer record before any goroutine")
	}
	g := p.goroutineOf(w[1])
	p.otherRoot(whatDefer, g, w[0])
	p.otherRoot(whatDeferFunc, g, w[4])
	return nil
}

func (p *parser) readPanic() error {
	var w [6]uint64 // addr, g, arg type, arg data, 0, link
	if err := p.words(w[:]); err != nil {
		return err
	}
	if len(p.goroutines) == 0 {
		return fmt.Errorf("panic record before any goroutine")
	}
	g := p.goroutineOf(w[1])
	p.otherRoot(whatPanic, g, w[0])
	p.otherRoot(whatPanicValue, g, w[3])
	return nil
}

func (p *parser) readSegment(tag uint64) error {
	start, err := p.d.uvarint()
	if err != nil {
		return err
	}
	contents, err := p.d.readBytes(p.scratch)
	if err != nil {
		return err
	}
	p.scratch = contents
	what := whatData
	if tag == tagBSS {
		what = whatBSS
	}
	p.segments[what] = start
	_, err = p.readFields(contents, true, func(off, v uint64) {
		p.roots = append(p.roots, root{to: p.word(v), kind: RootGlobal, what: what, off: off})
	})
	clear(contents)
	return err
}

func (p *parser) readFinalizer(tag uint64) error {
	var w [5]uint64 // obj, fn, fn.fn, fint, ot
	if err := p.words(w[:]); err != nil {
		return err
	}
	obj, fn := whatFinalizerObject, whatFinalizerFunc
	if tag == tagQueuedFinalizer {
		obj, fn = whatQueuedObject, whatQueuedFunc
	}
	for _, r := range [...]struct {
		what rootWhat
		v    uint64
	}{{obj, w[0]}, {fn, w[1]}} {
		if p.inArena(r.v) {
			p.roots = append(p.roots, root{to: p.word(r.v), kind: RootFinalizer, what: r.what})
		}
	}
	return nil
}

func (p *parser) readOtherRoot() error {
	desc, err := p.d.string(&p.scratch)
	if err != nil {
		return err
	}
	v, err := p.d.uvarint()
	if err != nil {
		return err
	}
	if p.inArena(v) {
		p.roots = append(p.roots, root{to: p.word(v), kind: RootOther, what: whatOtherRoot, desc: uint32(len(p.others))})
		p.others = append(p.others, desc)
	}
	return nil
}

func (p *parser) readMemProf() error {
	addr, err := p.d.uvarint()
	if err != nil {
		return err
	}
	b := new(bucket)
	if b.size, err = p.d.uvarint(); err != nil {
		return err
	}
	n, err := p.d.uvarint()
	if err != nil {
		return err
	}
	for range n {
		fn, err := p.d.string(&p.scratch)
		if err != nil {
			return err
		}
		file, err := p.d.string(&p.scratch)
		if err != nil {
			return err
		}
		line, err := p.d.uvarint()
		if err != nil {
			return err
		}
		b.stack = append(b.stack, Frame{Func: p.intern(fn), File: p.intern(file), Line: int(line)})
	}
	if err := p.d.skip(2); err != nil { // allocs, frees
		return err
	}
	p.buckets[addr] = b
	return nil
}

func (p *parser) readAllocSample() error {
	var s allocSample
	var err error
	if s.addr, err = p.d.uvarint(); err != nil {
		return err
	}
	if s.bucket, err = p.d.uvarint(); err != nil {
		return err
	}
	p.samples = append(p.samples, s)
	return nil
}

// intern returns one copy of each name: frames and stacks repeat the same
// few function and file names many times.
func (p *parser) intern(s string) string {
	if v, ok := p.names[s]; ok {
		return v
	}
	p.names[s] = s
	return s
}
