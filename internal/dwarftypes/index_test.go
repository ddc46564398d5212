package dwarftypes_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/leakhunt/profiler/internal/dwarftypes"
)

func openProg(t testing.TB, get func() (*prog, error)) (*prog, *dwarftypes.Index) {
	t.Helper()
	p := mustProg(t, get)
	x, err := dwarftypes.Open(p.path)
	if err != nil {
		t.Fatal(err)
	}
	return p, x
}

// dotted is the path of testdata/prog/dotted.v2 up to its dot.
const dotted = "github.com/leakhunt/profiler/internal/dwarftypes/testdata/prog/dotted"

func TestGlobal(t *testing.T) {
	_, x := openProg(t, plainProg)
	for _, tc := range []struct {
		global, name string
		kind         reflect.Kind
	}{
		{"main.registry", "struct { main.mu sync.Mutex; main.byName map[string]*main.Session; main.all []*main.Session; main.head *main.Session }", reflect.Struct},
		{"main.sessions", "[3]*main.Session", reflect.Array},
		{"main.pairs", "[]main.Pair[int,main.Session]", reflect.Slice},
		{"main.current", "*main.Session", reflect.Pointer},
		{"main.events", "chan *main.Conn", reflect.Chan},
		{"main.anything", "interface {}", reflect.Interface},
		// The symbol's name escapes the dot of the package's path;
		// the type's name does not.
		{dotted + "%2ev2.Root", "*" + dotted + ".v2.Node", reflect.Pointer},
	} {
		typ, ok := x.Global(tc.global)
		if !ok {
			t.Errorf("Global(%q) = false", tc.global)
			continue
		}
		if got := typ.Name(); got != tc.name {
			t.Errorf("Global(%q).Name() = %q, want %q", tc.global, got, tc.name)
		}
		if got := typ.Kind(); got != tc.kind {
			t.Errorf("Global(%q).Kind() = %v, want %v", tc.global, got, tc.kind)
		}
	}
	if typ, ok := x.Global("main.nosuch"); ok {
		t.Errorf("Global(main.nosuch) = %v, true; want false", typ.Name())
	}
}

// TestRuntimeType checks that the type descriptors the program's
// interfaces point to are found at their link addresses, with the names
// reflect gives them, both where the linker puts the descriptors in
// .rodata and where it puts them in .data.rel.ro (PIE).
func TestRuntimeType(t *testing.T) {
	builds := map[string]func() (*prog, error){"exe": plainProg}
	if runtime.GOOS == "linux" {
		builds["pie"] = pieProg
	}
	for mode, get := range builds {
		t.Run(mode, func(t *testing.T) {
			p, x := openProg(t, get)
			if mode == "pie" && p.bias == 0 {
				t.Error("the PIE build ran at its link addresses: the test shows nothing")
			}
			for name := range p.types {
				addr := p.typeAddr(t, name)
				typ, ok := x.RuntimeType(addr)
				if !ok {
					t.Errorf("RuntimeType(%#x) for %s = false", addr, name)
					continue
				}
				if got := typ.Name(); got != name {
					t.Errorf("RuntimeType(%#x).Name() = %q, want %q", addr, got, name)
				}
				if typ, ok := x.RuntimeType(addr + 1); ok {
					t.Errorf("RuntimeType(%#x), 1 past %s = %s, want false", addr+1, name, typ.Name())
				}
			}
		})
	}
}

func TestTypeSize(t *testing.T) {
	p, x := openProg(t, plainProg)
	for _, name := range []string{"main.Session", "main.Inner", "main.Conn"} {
		typ, ok := x.RuntimeType(p.typeAddr(t, name))
		if !ok {
			t.Fatalf("RuntimeType for %s = false", name)
		}
		want := p.off(t, strings.TrimPrefix(name, "main."))
		if got, ok := typ.Size(); got != want || !ok {
			t.Errorf("%s.Size() = %d, %v; want %d, true", name, got, ok, want)
		}
		rep := typ.Repeated()
		if got, ok := rep.Size(); ok {
			t.Errorf("%s.Size() = %d, true; want false", rep.Name(), got)
		}
		if got := rep.Kind(); got != reflect.Array {
			t.Errorf("%s.Kind() = %v, want array", rep.Name(), got)
		}
	}
}

func TestZeroType(t *testing.T) {
	var typ dwarftypes.Type
	if name, kind := typ.Name(), typ.Kind(); name != "" || kind != reflect.Invalid {
		t.Errorf("zero Type: Name() = %q, Kind() = %v; want \"\", invalid", name, kind)
	}
	if _, ok := typ.Size(); ok {
		t.Error("zero Type: Size() reports true")
	}
	if path, pointee, ok := typ.Field(0); ok {
		t.Errorf("zero Type: Field(0) = %q, %q, true; want false", path, pointee.Name())
	}
	if typ.Repeated() != typ {
		t.Error("zero Type: Repeated() is not the zero Type")
	}
}

func TestOpenNoDWARF(t *testing.T) {
	p := mustProg(t, noDWARFProg)
	_, err := dwarftypes.Open(p.path)
	if !errors.Is(err, dwarftypes.ErrNoDWARF) {
		t.Fatalf("Open of a program built with -ldflags=-w: %v, want ErrNoDWARF", err)
	}
	if !strings.Contains(err.Error(), "-ldflags=-w") || !strings.Contains(err.Error(), p.path) {
		t.Errorf("the error %q names neither the flag nor the file", err)
	}
}

func TestOpenNotELF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "text")
	if err := os.WriteFile(path, []byte("not an executable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := dwarftypes.Open(path)
	if err == nil || errors.Is(err, dwarftypes.ErrNoDWARF) {
		t.Fatalf("Open of a text file: %v, want an error other than ErrNoDWARF", err)
	}
}

// TestConcurrent has goroutines read an Index's types while it reads
// them for the first time; under -race it checks the lock.
func TestConcurrent(t *testing.T) {
	p, x := openProg(t, plainProg)
	session, ok := x.RuntimeType(p.typeAddr(t, "main.Session"))
	if !ok {
		t.Fatal("no runtime type main.Session")
	}
	size, _ := session.Size()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for off := uint64(0); off < size; off += ptr {
				_, pointee, _ := session.Field(off)
				pointee.Name()
				pointee.Size()
			}
		})
	}
	wg.Wait()
}
