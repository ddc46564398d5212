package procmaps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
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
	if id == "" {
		t.Fatalf("BuildID(%s) is empty; Go's linker always writes a build ID note", exe)
	}
	if again := BuildID(exe); again != id {
		t.Errorf("BuildID not stable: %q then %q", id, again)
	}
}

// TestBuildIDNotes checks the choice between notes on a hand-built ELF:
// the GNU build ID wins over the Go one, in hex, whatever the order.
func TestBuildIDNotes(t *testing.T) {
	gnu := noteBytes("GNU", 3, []byte{0xde, 0xad, 0xbe, 0xef})
	goID := noteBytes("Go", 4, []byte("abc/def"))
	other := noteBytes("GNU", 1, []byte{0, 0, 0, 0}) // NT_GNU_ABI_TAG, ignored
	tests := []struct {
		name  string
		notes []byte
		want  string
	}{
		{"gnu", gnu, "deadbeef"},
		{"go", goID, "abc/def"},
		{"go then gnu", append(append([]byte{}, goID...), gnu...), "deadbeef"},
		{"other only", other, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "elf")
			if err := os.WriteFile(path, elfWithNotes(tt.notes, uint64(len(tt.notes))), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := BuildID(path); got != tt.want {
				t.Errorf("BuildID = %q, want %q", got, tt.want)
			}
		})
	}
}

// A note segment whose header claims more bytes than the file holds must
// not make BuildID allocate that much or panic: BuildID reads every
// executable mapped into the process, which the profiler does not control.
func TestBuildIDHugeNoteSegment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "elf")
	if err := os.WriteFile(path, elfWithNotes(nil, 1<<62), 0o600); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("BuildID panics on a PT_NOTE with a bogus size: %v", r)
		}
	}()
	if got := BuildID(path); got != "" {
		t.Errorf("BuildID = %q, want \"\"", got)
	}
}

// noteBytes encodes one little-endian ELF note.
func noteBytes(name string, typ uint32, desc []byte) []byte {
	var b bytes.Buffer
	nm := append([]byte(name), 0)
	binary.Write(&b, binary.LittleEndian, [3]uint32{uint32(len(nm)), uint32(len(desc)), typ})
	b.Write(nm)
	b.Write(make([]byte, (4-len(nm)%4)%4))
	b.Write(desc)
	b.Write(make([]byte, (4-len(desc)%4)%4))
	return b.Bytes()
}

// elfWithNotes returns a minimal 64-bit little-endian ELF file with one
// PT_NOTE segment holding notes, whose header claims filesz bytes.
func elfWithNotes(notes []byte, filesz uint64) []byte {
	const ehsize, phsize = 64, 56
	hdr := elf.Header64{
		Type:      uint16(elf.ET_EXEC),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     ehsize,
		Ehsize:    ehsize,
		Phentsize: phsize,
		Phnum:     1,
	}
	copy(hdr.Ident[:], elf.ELFMAG)
	hdr.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	hdr.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	hdr.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	prog := elf.Prog64{
		Type:   uint32(elf.PT_NOTE),
		Off:    ehsize + phsize,
		Filesz: filesz,
		Memsz:  filesz,
		Align:  4,
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, hdr)
	binary.Write(&b, binary.LittleEndian, prog)
	b.Write(notes)
	return b.Bytes()
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

func FuzzNotes(f *testing.F) {
	f.Add(noteBytes("GNU", 3, []byte{1, 2, 3, 4, 5}))
	f.Add(append(noteBytes("Go", 4, []byte("x")), 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		total := 0
		for _, n := range notes(data, binary.LittleEndian) {
			total += 12 + len(n.name) + len(n.desc)
		}
		if total > len(data) {
			t.Errorf("notes returned %d bytes of notes from %d bytes of input", total, len(data))
		}
	})
}
