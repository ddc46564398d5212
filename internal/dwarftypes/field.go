package dwarftypes

import (
	"reflect"
	"sort"
	"strconv"
)

// maxDepth bounds the steps of a walk, against a cycle in malformed
// DWARF: a Go type cannot contain itself but through a pointer, where a
// walk ends.
const maxDepth = 64

// Field returns the path from t to the pointer word at byte offset off
// within a value of t (".conns", ".inner.buf", ".arr[2]", "[7]", or ""
// when t is itself the pointer), and the type that pointer points to,
// when the DWARF says: see "Paths" in the package documentation. It
// reports false if off is not the offset of a pointer word of t.
func (t Type) Field(off uint64) (path string, pointee Type, ok bool) {
	if t.x == nil {
		return "", Type{}, false
	}
	t.x.mu.Lock()
	defer t.x.mu.Unlock()
	return t.x.field(t, off)
}

// field walks down from t to off. Called with x.mu held.
func (x *Index) field(t Type, off uint64) (string, Type, bool) {
	var path []byte
	die := t.die
	if t.repeated {
		size, ok := x.size(die)
		if !ok || size == 0 {
			return "", Type{}, false
		}
		path = appendIndex(path, off/size)
		off %= size
	}
	for range maxDepth {
		ti := x.info(die)
		if ti == nil {
			return "", Type{}, false
		}
		// Types whose pointer word is their first: the walk ends.
		switch ti.kind {
		case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan, reflect.Func, reflect.String, reflect.Slice:
			if off != 0 {
				return "", Type{}, false
			}
			return string(path), x.pointee(ti), true
		case reflect.Interface:
			switch {
			case off == x.ptrSize:
				return string(path), Type{}, true
			case off != 0:
				return "", Type{}, false
			case ti.eface:
				return string(append(path, ".(type)"...)), Type{}, true
			default:
				return string(append(path, ".(itab)"...)), Type{}, true
			}
		case reflect.Array:
			size, ok := x.size(ti.elem)
			if !ok || size == 0 || off/size >= ti.count {
				return "", Type{}, false
			}
			path = appendIndex(path, off/size)
			off %= size
			die = ti.elem
		case reflect.Struct:
			m, ok := x.member(ti, off)
			if !ok {
				return "", Type{}, false
			}
			path = append(append(path, '.'), m.name...)
			off -= m.off
			die = m.typ
		default:
			return "", Type{}, false
		}
	}
	return "", Type{}, false
}

// pointee returns what the pointer word of a pointer-like type points
// to, the zero Type where the DWARF does not say. Called with x.mu held.
func (x *Index) pointee(ti *typeInfo) Type {
	switch ti.kind {
	case reflect.Pointer:
		t := x.typeOf(ti.elem)
		if t.x != nil && x.info(t.die).kind == reflect.Invalid {
			return Type{} // <unspecified>: a pointer the linker could not type
		}
		return t
	case reflect.Slice:
		if t := x.typeOf(ti.elem); t.x != nil {
			return t.Repeated()
		}
	case reflect.Map, reflect.Chan, reflect.Func:
		return Type{x: x, die: ti.die}
	}
	return Type{}
}

// member returns the field of a struct that holds the byte at off. A
// field of size zero holds none, though it shares its offset with the
// next field (sync.Mutex's noCopy), or lies in the struct's padding.
func (x *Index) member(ti *typeInfo, off uint64) (member, bool) {
	// The last field that starts at or before off, then back over
	// those of size zero.
	i := sort.Search(len(ti.members), func(i int) bool { return ti.members[i].off > off })
	for i--; i >= 0; i-- {
		m := ti.members[i]
		size, ok := x.size(m.typ)
		if !ok {
			return member{}, false
		}
		if size == 0 {
			continue
		}
		return m, off < m.off+size
	}
	return member{}, false
}

func appendIndex(path []byte, i uint64) []byte {
	path = append(path, '[')
	path = strconv.AppendUint(path, i, 10)
	return append(path, ']')
}
