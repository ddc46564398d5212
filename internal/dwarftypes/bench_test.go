package dwarftypes_test

import (
	"cmp"
	"debug/elf"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/leakhunt/profiler/internal/dwarftypes"
	"github.com/leakhunt/profiler/internal/pproftest"
)

var bigExe = flag.String("bigexe", "", "`path` of the executable the benchmarks read; if empty, cmd/go built with DWARF")

// builtGo is cmd/go built with its DWARF, which the go command installs
// without: a large program, at hand wherever the tests run.
var builtGo = sync.OnceValues(func() (string, error) {
	path := filepath.Join(tmpDir, "go")
	cmd := exec.Command(pproftest.GoTool(), "build", "-o", path, "cmd/go")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cmd/go: %v\n%s", err, out)
	}
	return path, nil
})

func bigExecutable(b *testing.B) string {
	if *bigExe != "" {
		return *bigExe
	}
	skipUnlessELF(b)
	path, err := builtGo()
	if err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkOpen measures Open beside the standard library reading the
// same executable's DWARF (elf.Open and File.DWARF), which loads every
// debug section and decodes no entry. It reports the heap an Index keeps.
func BenchmarkOpen(b *testing.B) {
	path := bigExecutable(b)
	b.Run("Open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dwarftypes.Open(path); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(retainedMB(func() any {
			x, _ := dwarftypes.Open(path)
			return x
		}), "retained-MB")
	})
	b.Run("baseline=elf.DWARF", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := elf.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.DWARF(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		b.ReportMetric(retainedMB(func() any {
			f, _ := elf.Open(path)
			defer f.Close()
			d, _ := f.DWARF()
			return d
		}), "retained-MB")
	})
}

// retainedMB returns how much the heap grows by what open returns, kept.
// It collects before and after, once, outside the timed loop.
func retainedMB(open func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := open()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / 1e6
}

// fieldCalls is how many calls of Field the benchmarks make per
// iteration: of the order of the hops of the chains of a heap profile.
const fieldCalls = 1000

// BenchmarkOpenAndField measures what a heap dump's helper pays to name
// its chains: Open, then fieldCalls calls of Field, on types it looks up
// and reads for the first time: those of globals, whose packages it
// indexes one by one, or runtime types, which it indexes all at once.
// Its difference with BenchmarkOpen/Open is the cost of reading lazily.
func BenchmarkOpenAndField(b *testing.B) {
	path := bigExecutable(b)
	for _, bm := range []struct {
		name string
		hops func(*testing.B) func(*dwarftypes.Index) int
	}{
		{"globals", func(b *testing.B) func(*dwarftypes.Index) int {
			globals := dataSymbols(b, path)
			return func(x *dwarftypes.Index) int { return nameHops(x, globals) }
		}},
		{"runtimeTypes", func(b *testing.B) func(*dwarftypes.Index) int {
			types := typelinks(b, path)
			return func(x *dwarftypes.Index) int { return nameTypeHops(x, types) }
		}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			hops := bm.hops(b)
			b.ReportAllocs()
			for b.Loop() {
				x, err := dwarftypes.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				hops(x)
			}
		})
	}
}

// BenchmarkField measures fieldCalls calls of Field once their types
// are read, beside formatting the name a hop has today, a size and an
// offset, as often.
func BenchmarkField(b *testing.B) {
	path := bigExecutable(b)
	globals := dataSymbols(b, path)
	x, err := dwarftypes.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Field", func(b *testing.B) {
		nameHops(x, globals)
		b.ReportAllocs()
		for b.Loop() {
			nameHops(x, globals)
		}
	})
	b.Run("baseline=Sprintf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range fieldCalls {
				_ = fmt.Sprintf("[%d B object] +%d", 48, i*8)
			}
		}
	})
}

// nameHops calls Field fieldCalls times as a helper naming chains does:
// at each word of the globals in turn, and on the type a found pointer
// points to, with the names of both. It returns how many it found.
func nameHops(x *dwarftypes.Index, globals []elf.Symbol) (found int) {
	calls := 0
	for _, g := range globals {
		t, ok := x.Global(g.Name)
		if !ok {
			continue
		}
		for off := uint64(0); off < g.Size; off += ptr {
			if calls == fieldCalls {
				return found
			}
			calls++
			_, pointee, ok := t.Field(off)
			if !ok {
				continue
			}
			found++
			_ = t.Name() + pointee.Name()
			if pointee.Kind() == reflect.Invalid || calls == fieldCalls {
				continue
			}
			calls++
			pointee.Field(0)
		}
	}
	return found
}

// nameTypeHops calls Field fieldCalls times as a helper naming the
// objects of chains by their malloc headers does: at each word of the
// runtime types at addrs in turn, with their names. It returns how many
// pointers it found.
func nameTypeHops(x *dwarftypes.Index, addrs []uint64) (found int) {
	calls := 0
	for _, addr := range addrs {
		t, ok := x.RuntimeType(addr)
		if !ok {
			continue
		}
		size, _ := t.Size()
		for off := uint64(0); off < size; off += ptr {
			if calls == fieldCalls {
				return found
			}
			calls++
			if _, pointee, ok := t.Field(off); ok {
				found++
				_ = t.Name() + pointee.Name()
			}
		}
	}
	return found
}

// typelinks returns the link addresses of the type descriptors the
// executable at path lists in its .typelink section: offsets from
// runtime.types, as DW_AT_go_runtime_type (cmd/link/internal/ld/typelink.go).
func typelinks(b *testing.B, path string) []uint64 {
	f, err := elf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".typelink")
	if s == nil {
		b.Skipf("%s has no .typelink section", path)
	}
	data, err := s.Data()
	if err != nil {
		b.Fatal(err)
	}
	syms, err := f.Symbols()
	if err != nil {
		b.Fatal(err)
	}
	i := slices.IndexFunc(syms, func(s elf.Symbol) bool { return s.Name == "runtime.types" })
	if i < 0 {
		b.Skipf("%s has no symbol runtime.types", path)
	}
	var addrs []uint64
	for off := 0; off+4 <= len(data); off += 4 {
		addrs = append(addrs, syms[i].Value+uint64(f.ByteOrder.Uint32(data[off:])))
	}
	return addrs
}

// dataSymbols returns the globals of the executable at path that may
// hold pointers, the roots of a heap dump, in the order of their
// addresses: .noptrdata and .noptrbss hold the others.
func dataSymbols(b *testing.B, path string) []elf.Symbol {
	f, err := elf.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		b.Fatal(err)
	}
	data := make(map[elf.SectionIndex]bool)
	for i, s := range f.Sections {
		switch s.Name {
		case ".data", ".bss":
			data[elf.SectionIndex(i)] = true
		}
	}
	syms = slices.DeleteFunc(syms, func(s elf.Symbol) bool {
		return !data[s.Section] || elf.ST_TYPE(s.Info) != elf.STT_OBJECT || s.Size == 0
	})
	slices.SortFunc(syms, func(a, b elf.Symbol) int { return cmp.Compare(a.Value, b.Value) })
	return syms
}
