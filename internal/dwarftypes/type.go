package dwarftypes

import (
	"debug/dwarf"
	"reflect"
)

// A Type is a type of the executable, as its DWARF describes it. It is a
// small value, comparable, that a caller may keep; it keeps its Index.
// The zero Type stands for a type that is not known: its Name is "" and its
// Kind is reflect.Invalid. A Type is safe for concurrent use.
type Type struct {
	x        *Index
	die      dwarf.Offset // the type's entry, typedefs followed
	repeated bool         // the type repeated an unknown number of times
}

// typeInfo is what an Index keeps of a type's entry once it is read.
type typeInfo struct {
	die     dwarf.Offset // the entry's own offset, typedefs followed
	name    string
	kind    reflect.Kind
	size    uint64
	sized   bool
	elem    dwarf.Offset // a pointer's pointee; an array's, slice's, map's or channel's element
	count   uint64       // an array's length
	members []member     // a struct's fields, in the order of their offsets
	eface   bool         // an interface is empty: its first word is a *_type, not an *itab
}

// member is a field of a struct. An embedded field has its type's name,
// as in Go, and is walked through like any other: DW_AT_go_embedded_field
// would only let a path leave its name out.
type member struct {
	name string
	off  uint64
	typ  dwarf.Offset
}

// maxTypedefs bounds how many typedefs typeOf follows, against a cycle
// in malformed DWARF.
const maxTypedefs = 8

// typeOf returns the type the entry at off describes, following
// typedefs. A typedef without DW_AT_go_kind is a name for the type it refers to,
// as the linker writes one for every named type and refers to it in
// preference (Go issue 27614); a typedef with DW_AT_go_kind is a map,
// channel or interface type. The zero Type if the entry cannot be read
// or is no type. Called with x.mu held.
func (x *Index) typeOf(off dwarf.Offset) Type {
	ti := x.info(off)
	if ti == nil {
		return Type{}
	}
	return Type{x: x, die: ti.die}
}

// info returns what the entry at off says of its type, reading it on
// first use; nil if it cannot be read or describes no type. Called with
// x.mu held.
func (x *Index) info(off dwarf.Offset) *typeInfo {
	if ti, ok := x.types[off]; ok {
		return ti
	}
	first := off
	var ti *typeInfo
	for range maxTypedefs {
		if cached, ok := x.types[off]; ok {
			ti = cached
			break
		}
		next, t := x.readType(off)
		if t != nil {
			ti = t
			x.types[off] = t
			break
		}
		if next == 0 {
			break
		}
		off = next
	}
	x.types[first] = ti // a failure too, so as not to read it again
	return ti
}

// readType reads the entry at off: a type, or a typedef standing for the
// type at next.
func (x *Index) readType(off dwarf.Offset) (next dwarf.Offset, ti *typeInfo) {
	x.r.Seek(off)
	e, err := x.r.Next()
	if err != nil || e == nil || e.Offset != off {
		return 0, nil
	}
	kind := reflect.Invalid
	if k, ok := e.Val(attrGoKind).(int64); ok && k > 0 && k <= int64(reflect.UnsafePointer) {
		kind = reflect.Kind(k)
	}
	if e.Tag == dwarf.TagTypedef && kind == reflect.Invalid {
		next, _ := e.Val(dwarf.AttrType).(dwarf.Offset)
		return next, nil
	}
	ti = &typeInfo{die: off, kind: kind}
	name, _ := e.Val(dwarf.AttrName).(string)
	ti.name = goName(name)
	if n, ok := e.Val(dwarf.AttrByteSize).(int64); ok && n >= 0 {
		ti.size, ti.sized = uint64(n), true
	}
	typ, _ := e.Val(dwarf.AttrType).(dwarf.Offset)
	elem, _ := e.Val(attrGoElem).(dwarf.Offset)
	switch e.Tag {
	case dwarf.TagPointerType:
		// The linker's synthesized pointers (to a slice's array, to
		// a map's internals) have no kind, and unsafe.Pointer has
		// neither kind nor pointee.
		if ti.kind == reflect.Invalid {
			ti.kind = reflect.UnsafePointer
			if typ != 0 {
				ti.kind = reflect.Pointer
			}
		}
		ti.elem = typ
		ti.size, ti.sized = x.ptrSize, true
	case dwarf.TagStructType:
		if ti.kind == reflect.Invalid {
			ti.kind = reflect.Struct // the linker's map, table, hchan and such
		}
		ti.elem = elem
	case dwarf.TagArrayType:
		ti.kind = reflect.Array
		ti.elem = typ
	case dwarf.TagSubroutineType:
		ti.kind = reflect.Func
		ti.size, ti.sized = x.ptrSize, true
	case dwarf.TagTypedef:
		switch ti.kind {
		case reflect.Map, reflect.Chan:
			ti.elem = elem
			ti.size, ti.sized = x.ptrSize, true
		case reflect.Interface:
			ti.size, ti.sized = 2*x.ptrSize, true
		}
	}
	if e.Children {
		x.readChildren(ti)
	}
	if ti.kind == reflect.Interface && typ != 0 {
		// Its DW_AT_type is runtime.eface or runtime.iface. Read
		// last: reading it moves the reader.
		if t := x.info(typ); t != nil {
			ti.eface = t.name == "runtime.eface"
		}
	}
	return 0, ti
}

// readChildren reads the fields of a struct, or the length of an array,
// from the children of the entry the reader has just returned.
func (x *Index) readChildren(ti *typeInfo) {
	for {
		c, err := x.r.Next()
		if err != nil || c == nil || c.Tag == 0 {
			return
		}
		switch c.Tag {
		case dwarf.TagMember:
			// A C compiler may give an offset as an expression, or
			// none for a bit field; such a field is left out.
			off, ok := c.Val(dwarf.AttrDataMemberLoc).(int64)
			typ, tok := c.Val(dwarf.AttrType).(dwarf.Offset)
			if ok && tok && off >= 0 {
				name, _ := c.Val(dwarf.AttrName).(string)
				ti.members = append(ti.members, member{name, uint64(off), typ})
			}
		case dwarf.TagSubrangeType:
			if n, ok := c.Val(dwarf.AttrCount).(int64); ok && n >= 0 {
				ti.count = uint64(n)
			} else if ub, ok := c.Val(dwarf.AttrUpperBound).(int64); ok && ub >= 0 {
				ti.count = uint64(ub) + 1
			}
		}
		if c.Children {
			x.r.SkipChildren()
		}
	}
}

// size returns the size of the type at off. Called with x.mu held.
func (x *Index) size(off dwarf.Offset) (uint64, bool) {
	ti := x.info(off)
	if ti == nil {
		return 0, false
	}
	return ti.size, ti.sized
}

// Name returns the type's name as the DWARF gives it ("main.Session",
// "[]*main.Conn", "map[string]*main.Node"); for a repeated type, "[]"
// and the element's name. See "Names" in the package documentation.
func (t Type) Name() string {
	if t.x == nil {
		return ""
	}
	t.x.mu.Lock()
	defer t.x.mu.Unlock()
	ti := t.x.info(t.die)
	if ti == nil {
		return ""
	}
	if t.repeated {
		return "[]" + ti.name
	}
	return ti.name
}

// Kind returns the type's kind: the Go linker's DW_AT_go_kind, or for
// its synthesized types the kind their entry's tag implies. A repeated
// type is an Array.
func (t Type) Kind() reflect.Kind {
	if t.x == nil {
		return reflect.Invalid
	}
	if t.repeated {
		return reflect.Array
	}
	t.x.mu.Lock()
	defer t.x.mu.Unlock()
	if ti := t.x.info(t.die); ti != nil {
		return ti.kind
	}
	return reflect.Invalid
}

// Size returns the type's size in bytes, and false if the DWARF does not
// give it or the type is repeated.
func (t Type) Size() (uint64, bool) {
	if t.x == nil || t.repeated {
		return 0, false
	}
	t.x.mu.Lock()
	defer t.x.mu.Unlock()
	return t.x.size(t.die)
}

// Repeated returns the type of an array of t whose length is not known,
// as a slice's backing array or an object allocated for several values
// of t: its Field takes an offset modulo t's size and names the element
// "[i]". Repeated of a repeated type is the same type.
func (t Type) Repeated() Type {
	if t.x == nil {
		return t
	}
	t.repeated = true
	return t
}
