package profiler

import (
	"reflect"
	"regexp"

	"github.com/leakhunt/profiler/internal/dwarftypes"
	"github.com/leakhunt/profiler/internal/heapdump"
)

// The helper names the hops of each chain by the executable's DWARF where
// it can: the field of each holder that points to the next object, and
// the holder's type. A hop's type comes from its malloc header when it
// has one, which is the type it was allocated as; else from the declared
// type of the pointer that led to it, the previous hop's field. The
// first type is the declared type of the global a chain starts from;
// stack frames, whose variables the dump does not locate, start none.

// elementIndex matches an array index in a field path. Indices are
// written "[i]": the elements of one array held alike are one frame in
// the profile, as the calls of one line are, not one frame each.
var elementIndex = regexp.MustCompile(`\[[0-9]+\]`)

// nameFields sets s.Fields, the field path of each hop's pointer to the
// next, and names the holders' types by the DWARF of x, for the chains of
// s. bias is the dumped process's load bias. It then clears the hops'
// Type: the summary crosses to the program with no address in it.
func nameFields(s *retainersSummary, x *dwarftypes.Index, bias uint64) {
	s.Fields = make([][]string, len(s.Chains))
	for c, chain := range s.Chains {
		if x != nil {
			s.Fields[c] = chainFields(chain, x, bias)
		}
		for i := range chain {
			chain[i].Type = 0
		}
	}
}

// chainFields returns the field paths of chain's hops, "" where unknown,
// and renames its holders whose types the DWARF names.
func chainFields(chain []heapdump.Hop, x *dwarftypes.Index, bias uint64) []string {
	fields := make([]string, len(chain))
	var t dwarftypes.Type // of the hop at i, when known
	if chain[0].Root == heapdump.RootGlobal {
		t, _ = x.Global(chain[0].Name)
	}
	named := false
	for i := 0; i < len(chain)-1; i++ {
		h := &chain[i]
		if i > 0 {
			t = holderType(h, t, x, bias)
		}
		if t.Kind() == reflect.Invalid {
			continue
		}
		off := chain[i+1].Offset
		if h.Type != 0 {
			off -= 8 // counted from the malloc header, a word before the value
		}
		path, next, ok := t.Field(off)
		if !ok {
			t = dwarftypes.Type{}
			continue
		}
		// A map's frame keeps its name: the path through its groups
		// (".slots[i].elem") serves only to type the value it points to.
		if !h.Map {
			if i > 0 {
				h.Name = t.Name()
			}
			fields[i] = elementIndex.ReplaceAllString(path, "[i]")
			named = true
		}
		t = next
	}
	if !named {
		return nil
	}
	return fields
}

// holderType returns the type of object h: its malloc header's, repeated
// if the slot holds more than one value of it (for a map, the type of its
// groups); else want, the type the pointer to it declares, if an object of
// that type could be in a slot of h's size. A pointer into the middle of
// an object (a field's address, a subslice) declares the type from there
// on only: a repeated element type still reads the slot's offsets right,
// modulo its size, but another type is not used.
func holderType(h *heapdump.Hop, want dwarftypes.Type, x *dwarftypes.Index, bias uint64) dwarftypes.Type {
	if h.Map && h.Type == 0 {
		return dwarftypes.Type{}
	}
	if h.Type != 0 {
		t, ok := x.RuntimeType(h.Type - bias)
		if !ok {
			return dwarftypes.Type{}
		}
		if size, ok := t.Size(); ok && size > 0 && h.Size-8 >= 2*size {
			return t.Repeated()
		}
		return t
	}
	if want.Kind() == reflect.Array {
		// A slice's elements, or an array: any slot holds them from its
		// start, and an offset past the array's length names no field.
		return want
	}
	size, ok := want.Size()
	if h.Interior || !ok || size == 0 || size > h.Size {
		return dwarftypes.Type{}
	}
	// A type much smaller than the slot is not the slot's: size classes
	// leave at most 16 bytes, or an eighth of the slot, unused, and a
	// large object at most a page of 8 KiB.
	slack := max(16, h.Size/8)
	if h.Size > 32<<10 {
		slack = 8 << 10
	}
	if h.Size-size > slack {
		return dwarftypes.Type{}
	}
	return want
}
