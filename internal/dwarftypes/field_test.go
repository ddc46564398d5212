package dwarftypes_test

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/leakhunt/profiler/internal/dwarftypes"
)

// ptr is the size of a pointer, in the tests as in testdata/prog, built
// for the same architecture.
const ptr = uint64(unsafe.Sizeof(uintptr(0)))

// fieldCase is a call of Field and what it should return. An empty path
// and pointee with ok false is a word that holds no pointer.
type fieldCase struct {
	off     uint64
	path    string
	pointee string
	kind    reflect.Kind // of the pointee, if it has one
	ok      bool
}

func checkField(t *testing.T, typ dwarftypes.Type, cases []fieldCase) {
	t.Helper()
	for _, c := range cases {
		path, pointee, ok := typ.Field(c.off)
		if path != c.path || pointee.Name() != c.pointee || ok != c.ok {
			t.Errorf("%s.Field(%d) = %q, %q, %v; want %q, %q, %v",
				typ.Name(), c.off, path, pointee.Name(), ok, c.path, c.pointee, c.ok)
			continue
		}
		if c.pointee != "" && pointee.Kind() != c.kind {
			t.Errorf("%s.Field(%d): the pointee %s is a %v, want %v", typ.Name(), c.off, c.pointee, pointee.Kind(), c.kind)
		}
	}
}

func TestFieldStruct(t *testing.T) {
	p, x := openProg(t, plainProg)
	session, ok := x.RuntimeType(p.typeAddr(t, "main.Session"))
	if !ok {
		t.Fatal("no runtime type main.Session")
	}
	off := func(name string) uint64 { return p.off(t, name) }
	inner, grid, recs := off("Session.inner"), off("Session.grid"), off("Session.recs")
	checkField(t, session, []fieldCase{
		{0, ".Base.name", "", 0, true}, // a string's bytes have no type
		{off("Session.next"), ".Base.next", "main.Base", reflect.Struct, true},
		{off("Session.next") - ptr, "", "", 0, false}, // the string's length
		{off("Session.conns"), ".conns", "[]*main.Conn", reflect.Array, true},
		{off("Session.conns") + ptr, "", "", 0, false}, // the slice's length
		{inner + off("Inner.buf"), ".inner.buf", "[64]uint8", reflect.Array, true},
		{inner + off("Inner.conns") + ptr, ".inner.conns[1]", "main.Conn", reflect.Struct, true},
		{off("Session.arr") + 2*ptr, ".arr[2]", "main.Conn", reflect.Struct, true},
		{off("Session.byName"), ".byName", "map[string]*main.Conn", reflect.Map, true},
		{off("Session.any"), ".any.(type)", "", 0, true},
		{off("Session.any") + ptr, ".any", "", 0, true},
		{off("Session.err"), ".err.(itab)", "", 0, true},
		{off("Session.err") + ptr, ".err", "", 0, true},
		{off("Session.ch"), ".ch", "chan *main.Conn", reflect.Chan, true},
		{off("Session.fn"), ".fn", "func()", reflect.Func, true},
		{off("Session.pair") + off("Pair.val"), ".pair.val", "main.Conn", reflect.Struct, true},
		{off("Session.up"), "", "", 0, false}, // a uintptr
		{off("Session.raw"), ".raw", "", 0, true},
		{off("Session.mu"), "", "", 0, false},
		{off("Session.title"), ".title", "", 0, true},
		{grid + (1*3+2)*ptr, ".grid[1][2]", "main.Conn", reflect.Struct, true},
		{recs + off("Inner") + off("Inner.buf"), ".recs[1].buf", "[64]uint8", reflect.Array, true},
		{recs + 3*off("Inner"), "", "", 0, false}, // past the array: padding or the end
		{off("Session"), "", "", 0, false},        // past the struct
		{off("Session.conns") + ptr/2, "", "", 0, false},
	})
}

func TestFieldGlobal(t *testing.T) {
	p, x := openProg(t, plainProg)
	global := func(name string) dwarftypes.Type {
		typ, ok := x.Global(name)
		if !ok {
			t.Fatalf("Global(%q) = false", name)
		}
		return typ
	}
	checkField(t, global("main.registry"), []fieldCase{
		{0, "", "", 0, false}, // a mutex
		{p.off(t, "registry.byName"), ".byName", "map[string]*main.Session", reflect.Map, true},
		{p.off(t, "registry.all"), ".all", "[]*main.Session", reflect.Array, true},
		{p.off(t, "registry.head"), ".head", "main.Session", reflect.Struct, true},
	})
	checkField(t, global("main.sessions"), []fieldCase{
		{2 * ptr, "[2]", "main.Session", reflect.Struct, true},
		{3 * ptr, "", "", 0, false},
	})
	checkField(t, global("main.current"), []fieldCase{
		{0, "", "main.Session", reflect.Struct, true},
		{ptr, "", "", 0, false},
	})
	checkField(t, global("main.pairs"), []fieldCase{
		{0, "", "[]main.Pair[int,main.Session]", reflect.Array, true},
	})
	checkField(t, global(dotted+"%2ev2.Root"), []fieldCase{
		{0, "", dotted + ".v2.Node", reflect.Struct, true},
	})
	checkField(t, global("main.events"), []fieldCase{
		{0, "", "chan *main.Conn", reflect.Chan, true},
	})
}

// TestFieldChain follows pointees the way a chain of the heap dump goes,
// from a global through slices' backing arrays, which only the pointee
// of the slice's data pointer types.
func TestFieldChain(t *testing.T) {
	p, x := openProg(t, plainProg)
	typ, ok := x.Global("main.registry")
	if !ok {
		t.Fatal("Global(main.registry) = false")
	}
	steps := []struct {
		off  uint64
		path string
	}{
		{p.off(t, "registry.all"), ".all"},    // registry -> []*main.Session
		{3 * ptr, "[3]"},                      // -> main.Session
		{p.off(t, "Session.conns"), ".conns"}, // -> []*main.Conn
		{ptr, "[1]"},                          // -> main.Conn
		{ptr, ".buf"},                         // -> []uint8
		{100, "[100]"},                        // bytes hold no pointer
	}
	for i, s := range steps {
		path, pointee, ok := typ.Field(s.off)
		last := i == len(steps)-1
		if ok == last || (!last && path != s.path) {
			t.Fatalf("step %d: %s.Field(%d) = %q, %q, %v; want %q", i, typ.Name(), s.off, path, pointee.Name(), ok, s.path)
		}
		typ = pointee
	}
}

func TestFieldRepeated(t *testing.T) {
	p, x := openProg(t, plainProg)
	pair, ok := x.RuntimeType(p.typeAddr(t, "main.Pair[int,main.Session]"))
	if !ok {
		t.Fatal("no runtime type main.Pair[int,main.Session]")
	}
	pairs := pair.Repeated()
	if got, want := pairs.Name(), "[]main.Pair[int,main.Session]"; got != want {
		t.Errorf("Repeated().Name() = %q, want %q", got, want)
	}
	if pairs.Repeated() != pairs {
		t.Error("Repeated of a repeated type is another type")
	}
	size, _ := pair.Size()
	checkField(t, pairs, []fieldCase{
		{ptr, "[0].val", "main.Session", reflect.Struct, true},
		{1000*size + ptr, "[1000].val", "main.Session", reflect.Struct, true},
		{size, "", "", 0, false}, // the key of [1]
	})
	conns, ok := x.RuntimeType(p.typeAddr(t, "[]*main.Conn"))
	if !ok {
		t.Fatal("no runtime type []*main.Conn")
	}
	// A slice header as a value: only its data pointer holds a pointer.
	checkField(t, conns, []fieldCase{
		{0, "", "[]*main.Conn", reflect.Array, true},
		{ptr, "", "", 0, false},
	})
}

// TestFieldEveryType walks every word of every type with a runtime type,
// the runtime's own and the compiler's (map groups, closures, generic
// instances and their shapes) among them, and the types they point to:
// whatever the DWARF holds, Field must not fail but by reporting false,
// and only report a pointer inside the type.
func TestFieldEveryType(t *testing.T) {
	_, x := openProg(t, plainProg)
	types := x.RuntimeTypes()
	if len(types) < 100 {
		t.Fatalf("%d runtime types, want hundreds", len(types))
	}
	kinds := make(map[reflect.Kind]int)
	found := 0
	for _, typ := range types {
		kinds[typ.Kind()]++
		if typ.Name() == "" {
			t.Errorf("a %v type has no name", typ.Kind())
		}
		size, ok := typ.Size()
		if !ok {
			if k := typ.Kind(); k != reflect.Invalid && k != reflect.UnsafePointer {
				t.Errorf("%s has no size", typ.Name())
			}
			continue
		}
		for off := uint64(0); off < min(size+ptr, 1<<16); off += ptr {
			path, pointee, ok := typ.Field(off)
			if !ok {
				continue
			}
			found++
			if off >= size {
				t.Errorf("%s.Field(%d) = %q, %q, true past its size %d", typ.Name(), off, path, pointee.Name(), size)
			}
			pointee.Field(0)
			pointee.Repeated().Field(3 * ptr)
		}
	}
	t.Logf("%d types (%v), %d pointers", len(types), kinds, found)
}
