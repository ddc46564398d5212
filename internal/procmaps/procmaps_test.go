package procmaps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Mapping
	}{
		{
			name: "normal",
			in:   "00400000-0040b000 r-xp 00001000 fc:01 787766                     /bin/cat\n",
			want: []Mapping{{Start: 0x400000, Limit: 0x40b000, Offset: 0x1000, File: "/bin/cat"}},
		},
		{
			name: "no trailing newline",
			in:   "00400000-0040b000 r-xp 00000000 fc:01 787766 /bin/cat",
			want: []Mapping{{Start: 0x400000, Limit: 0x40b000, File: "/bin/cat"}},
		},
		{
			name: "several, in order, non-executable skipped",
			in: "00400000-00401000 r--p 00000000 fc:01 1 /usr/bin/app\n" +
				"00401000-00500000 r-xp 00001000 fc:01 1 /usr/bin/app\n" +
				"00500000-00600000 rw-p 00100000 fc:01 1 /usr/bin/app\n" +
				"7f0000000000-7f0000100000 r-xp 00000000 fc:01 2 /lib/libc.so.6\n",
			want: []Mapping{
				{Start: 0x401000, Limit: 0x500000, Offset: 0x1000, File: "/usr/bin/app"},
				{Start: 0x7f0000000000, Limit: 0x7f0000100000, File: "/lib/libc.so.6"},
			},
		},
		{
			name: "path with a space",
			in:   "00400000-0040b000 r-xp 00000000 fc:01 787766   /opt/my app/bin\n",
			want: []Mapping{{Start: 0x400000, Limit: 0x40b000, File: "/opt/my app/bin"}},
		},
		{
			name: "deleted file",
			in:   "00400000-0040b000 r-xp 00000000 fc:01 787766   /tmp/go-build1/b001/x.test (deleted)\n",
			want: []Mapping{{Start: 0x400000, Limit: 0x40b000, File: "/tmp/go-build1/b001/x.test"}},
		},
		{
			name: "pseudo files",
			in: "7ffd1c3f0000-7ffd1c3f2000 r-xp 00000000 00:00 0   [vdso]\n" +
				"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0   [vsyscall]\n",
		},
		{
			name: "anonymous executable",
			in:   "7f0000000000-7f0000001000 r-xp 00000000 00:00 0\n",
		},
		{
			name: "garbage",
			in: "\n" +
				"hello\n" +
				"a b c d e f\n" +
				"zz-0040b000 r-xp 00000000 fc:01 1 /bin/x\n" +
				"00400000-zz r-xp 00000000 fc:01 1 /bin/x\n" +
				"00400000-0040b000 r-xp zz fc:01 1 /bin/x\n" +
				"00400000 r-xp 00000000 fc:01 1 /bin/x\n" +
				"00400000-0040b000 rx 00000000 fc:01 1 /bin/x\n" +
				"0040b000-00400000 r-xp 00000000 fc:01 1 /bin/backwards\n" +
				"00400000-00400000 r-xp 00000000 fc:01 1 /bin/empty\n" +
				"00400000-1ffffffffffffffff r-xp 00000000 fc:01 1 /bin/overflow\n",
		},
		{
			name: "garbage around a good line",
			in:   "junk\n00400000-0040b000 r-xp 00000000 fc:01 1 /bin/ok\njunk\n",
			want: []Mapping{{Start: 0x400000, Limit: 0x40b000, File: "/bin/ok"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse([]byte(tt.in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

// The kernel prints the path verbatim after padding, so runs of spaces
// inside it are part of the name; splitting on whitespace loses them and
// BuildID then opens a file that does not exist.
func TestParseKeepsRunsOfSpaces(t *testing.T) {
	in := "00400000-0040b000 r-xp 00000000 fc:01 787766                     /opt/a  b/bin\n"
	got := Parse([]byte(in))
	want := []Mapping{{Start: 0x400000, Limit: 0x40b000, File: "/opt/a  b/bin"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(%q) = %+v, want %+v: runs of spaces inside the path must be kept", in, got, want)
	}
}

// TestParseSelf reads this process's own maps: the running test binary must
// be among the executable mappings.
func TestParseSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no /proc/self/maps on " + runtime.GOOS)
	}
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pc, _, _, _ := runtime.Caller(0)
	for _, m := range Parse(data) {
		if m.File == exe && m.Start <= uint64(pc) && uint64(pc) < m.Limit {
			return
		}
	}
	t.Fatalf("no mapping of %s holds pc %#x in:\n%s", exe, pc, data)
}

func TestBuildID(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("\x7fELF but not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{garbage, filepath.Join(dir, "missing"), dir} {
		if id := BuildID(path); id != "" {
			t.Errorf("BuildID(%s) = %q, want \"\"", path, id)
		}
	}

	if runtime.GOOS != "linux" {
		t.Skip("the test binary is not ELF on " + runtime.GOOS)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id := BuildID(exe)
	if _, err := hex.DecodeString(id); id == "" || err != nil || strings.ToLower(id) != id {
		t.Fatalf("BuildID(%s) = %q, want lowercase hex: Go's linker writes a GNU build ID note unless told -B none", exe, id)
	}
	if again := BuildID(exe); again != id {
		t.Errorf("BuildID not stable: %q then %q", id, again)
	}
}

// TestBuildIDFiles reads the build ID of small hand-built ELF files. The
// wanted values are runtime/pprof's, which TestBuildIDMatchesRuntimePprof
// checks by having runtime/pprof read the same files.
func TestBuildIDFiles(t *testing.T) {
	for _, tt := range buildIDCases() {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "elf")
			if err := os.WriteFile(path, tt.file, 0o600); err != nil {
				t.Fatal(err)
			}
			if got := BuildID(path); got != tt.want {
				t.Errorf("BuildID = %q, want %q", got, tt.want)
			}
		})
	}
}

type buildIDCase struct {
	name string
	file []byte
	want string
}

// buildIDCases returns ELF files with the build ID runtime/pprof records
// for each. None has program headers: BuildID must find the GNU note
// through the sections, as it must in Go binaries, whose PT_NOTE segment
// holds only the Go build ID note.
func buildIDCases() []buildIDCase {
	gnu := noteBytes(binary.LittleEndian, "GNU", 3, []byte{0xde, 0xad, 0xbe, 0xef})
	gnu2 := noteBytes(binary.LittleEndian, "GNU", 3, []byte{0xca, 0xfe})
	goID := noteBytes(binary.LittleEndian, "Go", 4, []byte("abc/def"))
	abiTag := noteBytes(binary.LittleEndian, "GNU", 1, []byte{0, 0, 0, 0}) // NT_GNU_ABI_TAG
	notes := func(ns ...[]byte) []byte { return bytes.Join(ns, nil) }
	note := func(data []byte) section { return section{typ: elf.SHT_NOTE, data: data} }
	long := bytes.Repeat([]byte{0xab}, maxBuildID)
	return []buildIDCase{
		{"gnu", elfSpec{sections: []section{note(gnu)}}.bytes(), "deadbeef"},
		{"go only", elfSpec{sections: []section{note(goID)}}.bytes(), ""},
		{"go then gnu", elfSpec{sections: []section{note(notes(goID, gnu))}}.bytes(), "deadbeef"},
		{"go section, gnu section", elfSpec{sections: []section{note(goID), note(gnu)}}.bytes(), "deadbeef"},
		{"first of two", elfSpec{sections: []section{note(notes(gnu2, gnu))}}.bytes(), "cafe"},
		{"abi tag only", elfSpec{sections: []section{note(abiTag)}}.bytes(), ""},
		{"abi tag then gnu", elfSpec{sections: []section{note(notes(abiTag, gnu))}}.bytes(), "deadbeef"},
		{"not a note section", elfSpec{sections: []section{{typ: elf.SHT_PROGBITS, data: gnu}}}.bytes(), ""},
		{"no sections", elfSpec{}.bytes(), ""},
		{"32-bit", elfSpec{class: elf.ELFCLASS32, sections: []section{note(gnu)}}.bytes(), "deadbeef"},
		{"big-endian", elfSpec{order: binary.BigEndian, sections: []section{
			note(noteBytes(binary.BigEndian, "GNU", 3, []byte{1, 2}))}}.bytes(), "0102"},
		{"32-bit big-endian", elfSpec{class: elf.ELFCLASS32, order: binary.BigEndian, sections: []section{
			note(noteBytes(binary.BigEndian, "GNU", 3, []byte{1, 2}))}}.bytes(), "0102"},
		{"longest", elfSpec{sections: []section{note(noteBytes(binary.LittleEndian, "GNU", 3, long))}}.bytes(),
			hex.EncodeToString(long)},

		// Malformed files.
		{"too long", elfSpec{sections: []section{
			note(noteBytes(binary.LittleEndian, "GNU", 3, append(long, 0xab)))}}.bytes(), ""},
		{"desc cut", elfSpec{sections: []section{note(gnu)}, cut: 1}.bytes(), ""},
		{"bad class", elfSpec{class: 3, sections: []section{note(gnu)}}.bytes(), ""},
		{"bad data", elfSpec{order: badOrder{}, sections: []section{note(gnu)}}.bytes(), ""},
		{"bad entry size", elfSpec{shentsize: 56, sections: []section{note(gnu)}}.bytes(), ""},
		{"table past end", elfSpec{shoff: 1 << 20, sections: []section{note(gnu)}}.bytes(), ""},
		{"table at negative offset", elfSpec{shoff: 1 << 63, sections: []section{note(gnu)}}.bytes(), ""},
		{"section at negative offset", elfSpec{sections: []section{{typ: elf.SHT_NOTE, off: 1 << 63, size: 16}, note(gnu)}}.bytes(), ""},
		{"huge section, gnu first", elfSpec{sections: []section{{typ: elf.SHT_NOTE, data: gnu, size: 1 << 62}}}.bytes(), "deadbeef"},
		{"huge section runs into the next", elfSpec{sections: []section{
			{typ: elf.SHT_NOTE, data: goID, size: 1 << 62}, note(gnu)}}.bytes(), "deadbeef"},
		{"huge section runs off the end", elfSpec{sections: []section{
			{typ: elf.SHT_PROGBITS, data: gnu}, {typ: elf.SHT_NOTE, data: goID, size: 1 << 62}}}.bytes(), ""},
		{"note without its name", elfSpec{sections: []section{note(notes(
			noteBytes(binary.LittleEndian, "GNU", 3, nil)[:12], // claims a 4-byte name, so the next note is read out of step
			gnu))}}.bytes(), ""},
		{"broken section before gnu", elfSpec{sections: []section{
			{typ: elf.SHT_NOTE, off: 1 << 20, size: 16}, note(gnu)}}.bytes(), ""},
		{"empty note section", elfSpec{sections: []section{{typ: elf.SHT_NOTE, off: 1 << 20}, note(gnu)}}.bytes(), "deadbeef"},
	}
}

// A note section may claim any size; one claiming terabytes of empty notes
// in a file that has them (sparse, or a device) must not make BuildID read
// them all. BuildID reads every executable mapped into the process, which
// the profiler does not control.
func TestBuildIDBoundsReads(t *testing.T) {
	spec := elfSpec{sections: slices.Repeat([]section{{typ: elf.SHT_NOTE, off: 1 << 20, size: 1 << 40}}, 1<<16-1)}
	r := &countingReader{r: zeroTail{spec.bytes()}}
	if got := gnuBuildID(r); got != "" {
		t.Errorf("gnuBuildID = %q, want \"\"", got)
	}
	if limit := int64(maxReadBytes); r.n > limit {
		t.Errorf("gnuBuildID read %d bytes, want at most %d", r.n, limit)
	}
}

// maxReadBytes bounds what gnuBuildID reads from any file: the ELF
// header, the whole section header table, the note headers it may
// examine, and one build ID.
const maxReadBytes = 64 + (1<<16-1)*64 + maxNotes*16 + maxBuildID

// zeroTail reads as its bytes followed by 1<<50 zeros.
type zeroTail struct{ b []byte }

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(z.b))+1<<50 {
		return 0, io.EOF
	}
	clear(p)
	if off < int64(len(z.b)) {
		copy(p, z.b[off:])
	}
	return len(p), nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.ReaderAt
	n int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

// noteBytes encodes one ELF note.
func noteBytes(order binary.AppendByteOrder, name string, typ uint32, desc []byte) []byte {
	nm := append([]byte(name), 0)
	b := order.AppendUint32(nil, uint32(len(nm)))
	b = order.AppendUint32(b, uint32(len(desc)))
	b = order.AppendUint32(b, typ)
	b = append(b, nm...)
	b = append(b, make([]byte, (4-len(nm)%4)%4)...)
	b = append(b, desc...)
	return append(b, make([]byte, (4-len(desc)%4)%4)...)
}

// elfSpec describes a small ELF file: the header, the section header
// table (a null section, then sections), then the sections' contents in
// order. The zero value is an empty 64-bit little-endian file.
type elfSpec struct {
	class     elf.Class        // ELFCLASS64 if 0
	order     binary.ByteOrder // little-endian if nil
	sections  []section
	shoff     uint64 // if not 0, the table offset the header claims
	shentsize uint16 // if not 0, the table entry size the header claims
	cut       int    // bytes cut from the end of the file
}

type section struct {
	typ  elf.SectionType
	data []byte
	off  uint64 // if not 0, the offset its header claims
	size uint64 // if not 0, the size its header claims
}

// badOrder is an ELF data encoding that is neither of the two.
type badOrder struct{ binary.ByteOrder }

func (s elfSpec) bytes() []byte {
	class, order, data := s.class, s.order, byte(elf.ELFDATA2LSB)
	if class == 0 {
		class = elf.ELFCLASS64
	}
	switch order.(type) {
	case nil:
		order = binary.LittleEndian
	case badOrder:
		order, data = binary.LittleEndian, 0
	default:
		if order == binary.BigEndian {
			data = byte(elf.ELFDATA2MSB)
		}
	}
	const ehsize = 64 // room for either header
	entsize := uint16(64)
	if class == elf.ELFCLASS32 {
		entsize = 40
	}
	shnum := len(s.sections) + 1
	shoff := uint64(ehsize)
	contents := shoff + uint64(shnum)*uint64(entsize)

	var ident [elf.EI_NIDENT]byte
	copy(ident[:], elf.ELFMAG)
	ident[elf.EI_CLASS], ident[elf.EI_DATA], ident[elf.EI_VERSION] = byte(class), data, byte(elf.EV_CURRENT)
	claimedOff, claimedEnt := shoff, entsize
	if s.shoff != 0 {
		claimedOff = s.shoff
	}
	if s.shentsize != 0 {
		claimedEnt = s.shentsize
	}
	var b []byte
	if class == elf.ELFCLASS32 {
		b, _ = binary.Append(b, order, elf.Header32{Ident: ident, Type: uint16(elf.ET_EXEC), Version: uint32(elf.EV_CURRENT),
			Shoff: uint32(claimedOff), Ehsize: 52, Shentsize: claimedEnt, Shnum: uint16(shnum)})
	} else {
		b, _ = binary.Append(b, order, elf.Header64{Ident: ident, Type: uint16(elf.ET_EXEC), Version: uint32(elf.EV_CURRENT),
			Shoff: claimedOff, Ehsize: ehsize, Shentsize: claimedEnt, Shnum: uint16(shnum)})
	}
	b = append(b, make([]byte, ehsize-len(b))...)

	b = append(b, make([]byte, entsize)...) // the null section
	off := contents
	for _, sec := range s.sections {
		hoff, hsize := off, uint64(len(sec.data))
		if sec.off != 0 {
			hoff = sec.off
		}
		if sec.size != 0 {
			hsize = sec.size
		}
		if class == elf.ELFCLASS32 {
			b, _ = binary.Append(b, order, elf.Section32{Type: uint32(sec.typ), Off: uint32(hoff), Size: uint32(hsize)})
		} else {
			b, _ = binary.Append(b, order, elf.Section64{Type: uint32(sec.typ), Off: hoff, Size: hsize})
		}
		off += uint64(len(sec.data))
	}
	for _, sec := range s.sections {
		b = append(b, sec.data...)
	}
	return b[:len(b)-s.cut]
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("00400000-0040b000 r-xp 00000000 fc:01 787766 /bin/cat\n"))
	f.Add([]byte("7ffd1c3f0000-7ffd1c3f2000 r-xp 00000000 00:00 0 [vdso]\n"))
	f.Add([]byte("00400000-0040b000 r-xp 00000000 fc:01 1 /a b (deleted)\n\n-\n x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range Parse(data) {
			if m.Limit <= m.Start || m.File == "" {
				t.Errorf("Parse returned an impossible mapping %+v", m)
			}
		}
	})
}

// FuzzBuildID reads arbitrary files: no panic, a hex ID or none, and no
// more read than the bounds allow.
func FuzzBuildID(f *testing.F) {
	for _, c := range buildIDCases() {
		f.Add(c.file)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data)}
		id := gnuBuildID(r)
		if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
			t.Errorf("gnuBuildID = %q, want lowercase hex", id)
		}
		if r.n > maxReadBytes {
			t.Errorf("gnuBuildID read %d bytes, want at most %d", r.n, maxReadBytes)
		}
	})
}
