// Package procmaps reads the executable mappings of a Linux process from
// /proc/<pid>/maps and the build IDs of the mapped files.
package procmaps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
)

// Mapping is one executable, file-backed region of an address space.
type Mapping struct {
	Start, Limit, Offset uint64
	File                 string
}

// Parse returns the executable, file-backed mappings listed in data, the
// contents of a /proc/<pid>/maps file, in order. Lines it cannot parse are
// skipped: the format is the kernel's and a mapping is only an aid.
//
// A line reads: start-limit perms offset dev inode [path], for example
//
//	00400000-0040b000 r-xp 00000000 fc:01 787766   /bin/cat
func Parse(data []byte) []Mapping {
	var out []Mapping
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		// Five space-separated fields, then the path, which is the rest of
		// the line: it may contain runs of spaces of its own.
		var fields [5]string
		rest := string(line)
		for i := range fields {
			rest = strings.TrimLeft(rest, " ")
			fields[i], rest, _ = strings.Cut(rest, " ")
		}
		file := strings.TrimLeft(rest, " ")
		if file == "" {
			continue // anonymous mapping: no file to name
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok || len(fields[1]) < 4 || fields[1][2] != 'x' {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		limit, err2 := strconv.ParseUint(hi, 16, 64)
		offset, err3 := strconv.ParseUint(fields[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil || limit <= start {
			continue
		}
		// The kernel appends " (deleted)" for unlinked files.
		file = strings.TrimSuffix(file, " (deleted)")
		if strings.HasPrefix(file, "[") {
			continue // [vdso], [vsyscall]: not files pprof can open
		}
		out = append(out, Mapping{Start: start, Limit: limit, Offset: offset, File: file})
	}
	return out
}

// BuildID returns the build ID of the ELF file at path as lowercase hex: the
// GNU build ID note if there is one, else the Go build ID note. It returns
// "" if the file cannot be read or carries neither.
func BuildID(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var goID string
	for _, p := range f.Progs {
		// A build ID note is a few dozen bytes; a segment claiming more
		// than maxNotes is not one worth reading (or a corrupt header).
		if p.Type != elf.PT_NOTE || p.Filesz > maxNotes {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			continue
		}
		for _, n := range notes(data, f.ByteOrder) {
			switch {
			case n.name == "GNU" && n.typ == 3: // NT_GNU_BUILD_ID
				return hex.EncodeToString(n.desc)
			case n.name == "Go" && n.typ == 4: // the Go linker's build ID note
				goID = string(n.desc)
			}
		}
	}
	return goID
}

const maxNotes = 1 << 16

type note struct {
	name string
	typ  uint32
	desc []byte
}

// notes splits an ELF note segment: each note is namesz, descsz, type, then
// name and desc, each padded to 4 bytes.
func notes(data []byte, order binary.ByteOrder) []note {
	var out []note
	pad := func(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }
	for len(data) >= 12 {
		namesz, descsz, typ := order.Uint32(data), order.Uint32(data[4:]), order.Uint32(data[8:])
		data = data[12:]
		if pad(namesz)+pad(descsz) > uint64(len(data)) {
			break
		}
		name := string(bytes.TrimRight(data[:namesz], "\x00"))
		desc := data[pad(namesz) : pad(namesz)+uint64(descsz)]
		out = append(out, note{name: name, typ: typ, desc: desc})
		data = data[pad(namesz)+pad(descsz):]
	}
	return out
}
