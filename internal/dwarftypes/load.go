package dwarftypes

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"io"
)

// ErrNoDWARF reports an executable without DWARF, as the Go linker
// writes one under -ldflags=-w (or -s), or strip leaves one.
var ErrNoDWARF = errors.New("dwarftypes: the executable has no DWARF debugging information (built with -ldflags=-w or -s, or stripped)")

// loadDWARF reads the sections that entries are decoded from. It leaves
// out what only line tables, call frames, location and range lists need
// (elf.File.DWARF reads those too), which is most of the DWARF of a Go
// program. Relocations are not applied: an executable's are, unlike an
// object file's.
func loadDWARF(f *elf.File) (*dwarf.Data, error) {
	sections := make(map[string][]byte)
	for _, name := range []string{"abbrev", "info", "str", "line_str", "str_offsets", "addr"} {
		s := f.Section(".debug_" + name)
		if s == nil {
			s = f.Section(".zdebug_" + name)
		}
		if s == nil || s.Type == elf.SHT_NOBITS {
			continue
		}
		b, err := readSection(s)
		if err != nil {
			return nil, fmt.Errorf("dwarftypes: reading %s: %w", s.Name, err)
		}
		sections[name] = b
	}
	if sections["info"] == nil || sections["abbrev"] == nil {
		return nil, ErrNoDWARF
	}
	d, err := dwarf.New(sections["abbrev"], nil, nil, sections["info"], nil, nil, nil, sections["str"])
	if err != nil {
		return nil, fmt.Errorf("dwarftypes: reading DWARF: %w", err)
	}
	for _, name := range []string{"line_str", "str_offsets", "addr"} {
		if b := sections[name]; b != nil {
			if err := d.AddSection(".debug_"+name, b); err != nil {
				return nil, fmt.Errorf("dwarftypes: reading DWARF: %w", err)
			}
		}
	}
	return d, nil
}

// maxSectionSize bounds the size readSection trusts a section's header
// for: a corrupt header must not make it allocate gigabytes.
const maxSectionSize = 1 << 30

// readSection reads a section whole, decompressing it if it is
// (SHF_COMPRESSED, or a .zdebug section). It reads into one buffer of the
// size the header gives, decompressed; Section.Data reads a section
// larger than 10 MB in chunks that it appends (internal/saferio), which
// for a large program's .debug_info costs several times its size.
func readSection(s *elf.Section) ([]byte, error) {
	r := s.Open() // sets the size of a .zdebug section from its header
	if s.Size > maxSectionSize {
		return s.Data()
	}
	b := make([]byte, s.Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// runtimeTypesAddr returns the link address of runtime.types, which
// DW_AT_go_runtime_type counts from. The linker defines it at the start
// of the section that holds the type descriptors, .rodata or, when it
// links for relocation (PIE, external linking), .data.rel.ro
// (cmd/link/internal/ld/data.go), but only the symbol says where an
// external linker put it. It looks for the symbol's name in the string
// table and then for the symbol that has it, rather than decode every
// symbol as File.Symbols does.
func runtimeTypesAddr(f *elf.File) (uint64, bool) {
	symtab := f.SectionByType(elf.SHT_SYMTAB)
	if symtab == nil || int(symtab.Link) >= len(f.Sections) {
		return 0, false
	}
	strs, err := readSection(f.Sections[symtab.Link])
	if err != nil {
		return 0, false
	}
	// The names a symbol may have: every occurrence of the name that
	// starts a string of the table.
	const name = "runtime.types\x00"
	var offs []uint32
	for i := 0; ; {
		j := bytes.Index(strs[i:], []byte(name))
		if j < 0 {
			break
		}
		if i+j == 0 || strs[i+j-1] == 0 {
			offs = append(offs, uint32(i+j))
		}
		i += j + 1
	}
	if len(offs) == 0 {
		return 0, false
	}
	syms, err := readSection(symtab)
	if err != nil {
		return 0, false
	}
	// Elf64_Sym and Elf32_Sym: the name's offset first, then the value
	// after the name in Elf32, after name, info, other and shndx in
	// Elf64.
	size, valueOff := elf.Sym64Size, 8
	if f.Class == elf.ELFCLASS32 {
		size, valueOff = elf.Sym32Size, 4
	}
	for off := size; off+size <= len(syms); off += size { // symbol 0 is null
		n := f.ByteOrder.Uint32(syms[off:])
		for _, o := range offs {
			if n != o {
				continue
			}
			if f.Class == elf.ELFCLASS32 {
				return uint64(f.ByteOrder.Uint32(syms[off+valueOff:])), true
			}
			return f.ByteOrder.Uint64(syms[off+valueOff:]), true
		}
	}
	return 0, false
}
