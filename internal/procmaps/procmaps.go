// Package procmaps reads the executable mappings of a Linux process from
// /proc/<pid>/maps and the build IDs of the mapped files.
package procmaps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
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

// BuildID returns the build ID of the ELF file at path as runtime/pprof
// records it: the description of the first GNU build ID note
// (NT_GNU_BUILD_ID) in the file's note sections, in lowercase hex. It
// returns "" if the file cannot be read, is not ELF, or has no such note.
//
// The two must agree, or pprof takes our profile and runtime/pprof's of
// the same process for two programs. That rules out reading the PT_NOTE
// segments: the Go linker's holds only its own build ID note and puts the
// GNU note in a section outside it. It also rules out falling back to the
// Go build ID, which runtime/pprof never records: a binary linked with
// -B none, which has no GNU note, gets "" from both. So BuildID walks the
// section headers as runtime/pprof's elfBuildID (runtime/pprof/elf.go)
// does and gives up where it gives up, on malformed files too; the one
// difference is the bound on the notes examined.
func BuildID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	return gnuBuildID(f)
}

// Bounds on what gnuBuildID reads. The section header table is bounded by
// the format, at most 65535 entries; a note section may claim any size,
// so the note headers examined in a file are counted. Real files hold a
// handful of notes before the build ID, or a few hundred SystemTap probe
// notes (.note.stapsdt) after it.
const (
	maxNotes   = 1 << 12 // note headers examined in one file
	maxBuildID = 256     // bytes in a build ID; runtime/pprof refuses longer
)

const ntGNUBuildID = 3 // NT_GNU_BUILD_ID, the type of a note named "GNU"

// gnuBuildID does the work of BuildID on the contents of a file.
func gnuBuildID(r io.ReaderAt) string {
	// The header is read as 64 bytes, a 64-bit header's size, whatever the
	// class, as runtime/pprof reads it: a 32-bit file shorter than that
	// has no room for section headers anyway.
	var buf [64]byte
	if !readAt(r, buf[:], 0) || string(buf[:len(elf.ELFMAG)]) != elf.ELFMAG {
		return ""
	}
	var order binary.ByteOrder
	switch elf.Data(buf[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
		order = binary.LittleEndian
	case elf.ELFDATA2MSB:
		order = binary.BigEndian
	default:
		return ""
	}
	class := elf.Class(buf[elf.EI_CLASS])
	var shoff int64 // may wrap negative; readAt refuses it
	var shentsize, shnum int
	switch class {
	case elf.ELFCLASS32:
		var h elf.Header32
		binary.Decode(buf[:], order, &h)
		shoff, shentsize, shnum = int64(h.Shoff), int(h.Shentsize), int(h.Shnum)
	case elf.ELFCLASS64:
		var h elf.Header64
		binary.Decode(buf[:], order, &h)
		shoff, shentsize, shnum = int64(h.Shoff), int(h.Shentsize), int(h.Shnum)
	default:
		return ""
	}
	if shentsize != sectionHeaderSize(class) {
		return "" // headers of a layout we cannot decode
	}

	notes := 0
	sh := buf[:shentsize]
	for i := range int64(shnum) {
		if !readAt(r, sh, shoff+i*int64(shentsize)) {
			return ""
		}
		typ, off, size := decodeSectionHeader(sh, class, order)
		if typ != elf.SHT_NOTE {
			continue
		}
		// A note is three 4-byte words, namesz, descsz and type, then
		// the name and the description, each padded to 4 bytes. Each
		// header is read with the 4 bytes after it, room for the name
		// "GNU\x00", the only one wanted.
		for end := off + size; off < end; {
			if notes++; notes > maxNotes {
				return ""
			}
			var hdr [16]byte
			if !readAt(r, hdr[:], off) {
				return ""
			}
			namesz, descsz, ntype := order.Uint32(hdr[0:]), order.Uint32(hdr[4:]), order.Uint32(hdr[8:])
			desc := off + 12 + pad4(namesz)
			off = desc + pad4(descsz)
			if namesz != 4 || ntype != ntGNUBuildID || string(hdr[12:]) != "GNU\x00" {
				continue
			}
			if descsz > maxBuildID {
				return ""
			}
			id := make([]byte, descsz)
			if !readAt(r, id, desc) {
				return ""
			}
			return hex.EncodeToString(id)
		}
	}
	return ""
}

// sectionHeaderSize returns the size of a section header of the class.
func sectionHeaderSize(class elf.Class) int {
	if class == elf.ELFCLASS32 {
		return binary.Size(elf.Section32{})
	}
	return binary.Size(elf.Section64{})
}

// decodeSectionHeader returns the type, file offset and size of the
// section whose header is b. Offsets too large for an int64 wrap
// negative, as they do in runtime/pprof.
func decodeSectionHeader(b []byte, class elf.Class, order binary.ByteOrder) (typ elf.SectionType, off, size int64) {
	if class == elf.ELFCLASS32 {
		var s elf.Section32
		binary.Decode(b, order, &s)
		return elf.SectionType(s.Type), int64(s.Off), int64(s.Size)
	}
	var s elf.Section64
	binary.Decode(b, order, &s)
	return elf.SectionType(s.Type), int64(s.Off), int64(s.Size)
}

// pad4 returns n rounded up to a multiple of 4.
func pad4(n uint32) int64 { return (int64(n) + 3) &^ 3 }

// readAt fills p from r at off, reporting whether it could.
func readAt(r io.ReaderAt, p []byte, off int64) bool {
	if off < 0 {
		return false
	}
	n, _ := r.ReadAt(p, off)
	return n == len(p)
}
