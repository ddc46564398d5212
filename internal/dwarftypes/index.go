package dwarftypes

import (
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The Go linker's own attributes (cmd/internal/dwarf/dwarf.go).
const (
	attrGoKind        dwarf.Attr = 0x2900 // the reflect.Kind; 0 on the linker's synthesized types
	attrGoElem        dwarf.Attr = 0x2902 // the element type of a slice, map or channel
	attrGoRuntimeType dwarf.Attr = 0x2904 // the type descriptor, as an offset from runtime.types; 0 if none
)

// An Index answers, for the package-level variables and the runtime
// types of one executable, which field holds a pointer at a given offset
// and what type that pointer points to. It holds the DWARF it needs, not
// the file. An Index is safe for concurrent use.
type Index struct {
	ptrSize   uint64
	typesBase uint64 // the link address of runtime.types
	hasBase   bool

	mu        sync.Mutex // guards what follows: a Reader is a cursor
	r         *dwarf.Reader
	units     []unit
	byPackage map[string][]int           // a package's path -> its units
	globals   map[string]dwarf.Offset    // a variable's symbol name -> its DW_AT_type, from the units scanned
	rtypes    []runtimeType              // from the units scanned; by addr once sorted
	sorted    bool                       // rtypes is sorted
	rtScanned bool                       // the units that hold runtime types are scanned
	types     map[dwarf.Offset]*typeInfo // by the offset of a type's entry or of a typedef of it
}

// unit is a compilation unit: for Go, one package, or part of one.
type unit struct {
	off     dwarf.Offset // its entry
	scanned bool         // its variables and runtime types are indexed
}

// runtimeType ties a type descriptor's link address to its type's entry.
type runtimeType struct {
	addr uint64
	die  dwarf.Offset
}

// Open reads the DWARF of the ELF executable at path and lists its
// compilation units. It returns an error wrapping ErrNoDWARF if the
// executable has no DWARF.
func Open(path string) (*Index, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dwarftypes: %w", err)
	}
	defer f.Close()
	x, err := New(f)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return x, nil
}

// New is Open for an executable already open: it reads what it needs
// from f, which the caller may close as soon as New returns.
func New(f *elf.File) (*Index, error) {
	d, err := loadDWARF(f)
	if err != nil {
		return nil, err
	}
	x := &Index{
		ptrSize:   8,
		r:         d.Reader(),
		byPackage: make(map[string][]int),
		globals:   make(map[string]dwarf.Offset),
		types:     make(map[dwarf.Offset]*typeInfo),
	}
	if f.Class == elf.ELFCLASS32 {
		x.ptrSize = 4
	}
	x.typesBase, x.hasBase = runtimeTypesAddr(f)
	if err := x.listUnits(); err != nil {
		return nil, fmt.Errorf("dwarftypes: reading DWARF: %w", err)
	}
	return x, nil
}

// listUnits lists the compilation units by the package each is of: the
// Go linker names a unit after its package's path. It reads only their
// first entries: skipping the children of a unit's entry skips to the
// next unit without decoding them.
func (x *Index) listUnits() error {
	r := x.r
	for {
		e, err := r.Next()
		if err != nil {
			return err
		}
		if e == nil {
			return nil
		}
		if e.Tag == dwarf.TagCompileUnit {
			name, _ := e.Val(dwarf.AttrName).(string)
			x.byPackage[name] = append(x.byPackage[name], len(x.units))
			x.units = append(x.units, unit{off: e.Offset})
		}
		r.SkipChildren()
	}
}

// scan indexes the package-level variables and runtime types of unit i,
// once. They are top-level entries: the Go linker writes a package's
// variables at the top of its units, and every type at the top of the
// runtime's. The functions' subtrees, most of the DWARF, are skipped,
// though the reader decodes them to find where they end. An entry that
// cannot be decoded ends the scan: what follows it is left unindexed.
// Called with x.mu held.
func (x *Index) scan(i int) {
	u := &x.units[i]
	if u.scanned {
		return
	}
	u.scanned = true
	x.r.Seek(u.off)
	cu, err := x.r.Next()
	if err != nil || cu == nil || !cu.Children {
		return
	}
	for {
		e, err := x.r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			return
		}
		switch {
		case e.Tag == dwarf.TagVariable:
			x.addGlobal(e)
		case x.hasBase:
			if off, ok := e.Val(attrGoRuntimeType).(uint64); ok && off != 0 {
				x.rtypes = append(x.rtypes, runtimeType{x.typesBase + off, e.Offset})
				x.sorted = false
			}
		}
		if e.Children {
			x.r.SkipChildren()
		}
	}
}

// addGlobal indexes a variable by its name, which for Go's is its symbol
// name (cmd/internal/obj/dwarf.go). A declaration is left out: a C
// compiler writes one for an extern, whose definition is elsewhere.
func (x *Index) addGlobal(e *dwarf.Entry) {
	name, _ := e.Val(dwarf.AttrName).(string)
	typ, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
	if decl, _ := e.Val(dwarf.AttrDeclaration).(bool); name == "" || !ok || decl {
		return
	}
	if _, dup := x.globals[name]; !dup {
		x.globals[name] = typ
	}
}

// Global returns the declared type of the package-level variable with
// the symbol name name ("main.registry"), which it looks for among the
// variables of the package the name begins with. It reports false for a
// name the DWARF does not know: the linker writes no entry for a variable
// the program never reaches, for one of a package compiled without DWARF,
// nor for the compiler's own ("pkg..stmp_1", "pkg..typeAssert.0").
func (x *Index) Global(name string) (Type, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	off, ok := x.globals[name]
	if !ok {
		for _, i := range x.byPackage[packagePath(name)] {
			x.scan(i)
		}
		if off, ok = x.globals[name]; !ok {
			return Type{}, false
		}
	}
	t := x.typeOf(off)
	return t, t.x != nil
}

// packagePath returns the path of the package a symbol's name begins
// with: up to the first dot after the last slash, where the compiler
// escapes the dots of the path's last element (cmd/internal/objabi's
// PathToPrefix: "gopkg.in/yaml%2ev3.x").
func packagePath(sym string) string {
	slash := strings.LastIndexByte(sym, '/')
	dot := strings.IndexByte(sym[slash+1:], '.')
	if dot < 0 {
		return ""
	}
	prefix := sym[:slash+1+dot]
	if !strings.Contains(prefix, "%") {
		return prefix
	}
	path := make([]byte, 0, len(prefix))
	for i := 0; i < len(prefix); i++ {
		if prefix[i] == '%' && i+2 < len(prefix) {
			if b, err := strconv.ParseUint(prefix[i+1:i+3], 16, 8); err == nil {
				path = append(path, byte(b))
				i += 2
				continue
			}
		}
		path = append(path, prefix[i])
	}
	return string(path)
}

// RuntimeType returns the type whose type descriptor is at the link
// address addr. It reports false for an address that is not a type
// descriptor's, for the type of a descriptor the DWARF does not describe
// (the linker describes the types the program's functions and variables
// use), and for every address if the executable has no symbol table to
// place the descriptors by (see "Runtime types" in the package
// documentation).
func (x *Index) RuntimeType(addr uint64) (Type, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.scanRuntimeTypes()
	i, found := slices.BinarySearchFunc(x.rtypes, addr, func(rt runtimeType, addr uint64) int {
		return cmp.Compare(rt.addr, addr)
	})
	if !found {
		return Type{}, false
	}
	return Type{x: x, die: x.rtypes[i].die}, true
}

// scanRuntimeTypes indexes the runtime types, on first use, and sorts
// them. The linker writes them all in a unit of the runtime
// (cmd/link/internal/ld/dwarf.go, movetomodule); were they not there,
// they would be in some other unit. Called with x.mu held.
func (x *Index) scanRuntimeTypes() {
	if !x.rtScanned && x.hasBase {
		x.rtScanned = true
		for _, i := range x.byPackage["runtime"] {
			x.scan(i)
		}
		if len(x.rtypes) == 0 {
			for i := range x.units {
				x.scan(i)
			}
		}
	}
	if !x.sorted {
		slices.SortFunc(x.rtypes, func(a, b runtimeType) int {
			return cmp.Or(cmp.Compare(a.addr, b.addr), cmp.Compare(a.die, b.die))
		})
		x.sorted = true
	}
}
