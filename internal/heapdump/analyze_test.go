package heapdump

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const (
	arenaLo = 0xc000000000
	arenaHi = 0xc004000000
	dataLo  = 0x5a0000
	bssLo   = 0x5b0000

	objA   = 0xc000010000 // 32 bytes: -> B at 8, -> H at 24
	objB   = 0xc000010100 // 48 bytes: -> C+8 at 16 (interior)
	objC   = 0xc000010200 // 16 bytes, sampled
	objD   = 0xc000010300 // 16 bytes: -> E; garbage, sampled
	objE   = 0xc000010310 // 16 bytes: -> D; garbage
	objF   = 0xc000010400 // 8 bytes, held by a stack frame
	objG   = 0xc000010500 // 16 bytes with a finalizer: -> H
	objH   = 0xc000010600 // 16 bytes
	mapHdr = 0xc000020000 // 48 bytes: -> dir at 16
	mapDir = 0xc000020100 // 64 bytes: -> table at 24
	mapTab = 0xc000020200 // 32 bytes: -> groups at 16
	mapGrp = 0xc000021000 // 1024 bytes, malloc header groupType: -> V at 40
	objV   = 0xc000022000 // 16 bytes

	groupType = 0x600000
	bucketA   = 0x700000
)

var buildStack = []Frame{{"main.build", "/src/main.go", 56}, {"main.main", "/src/main.go", 10}}

// tinyDump is a hand-made dump of the objects above.
func tinyDump() []byte {
	w := newDumpWriter(arenaLo, arenaHi)
	w.uint(tagType, groupType+0x100, 16)
	w.str("main.iface")
	w.uint(1)
	w.uint(tagItab, 0x610000, groupType+0x100)
	// A points at B, out of the arenas (ignored), at H, and at itself.
	w.object(objA, []uint64{0, objB, 0x500000, objH}, 1, 2, 3)
	w.object(objB, []uint64{1, 2, objC + 8, 0, 0, objA + 16}, 2)
	w.object(objC, []uint64{0x6161616161616161, 0x6161616161616161})
	w.object(objD, []uint64{objE, 0}, 0)
	w.object(objE, []uint64{objD, 0}, 0)
	w.object(objF, []uint64{42})
	w.object(objG, []uint64{objH, 0}, 0)
	w.object(objH, []uint64{0, 0})
	w.object(mapHdr, []uint64{3, 0x1234, mapDir, 1, 0, 0}, 2)
	w.object(mapDir, []uint64{0, 0, 0, mapTab, 0, 0, 0, 0}, 0, 1, 2, 3, 4, 5, 6, 7)
	w.object(mapTab, []uint64{0, 0, mapGrp + 8, 0}, 2) // the groups' value, after their header
	grp := make([]uint64, 128)
	grp[0], grp[5] = groupType, objV
	w.object(mapGrp, grp, 5)
	w.object(objV, []uint64{0, 0})
	w.goroutine(0xc000001000, 7, "chan receive")
	w.frame(0xc000100000, "main.worker", []uint64{0, objF, 0x77}, 1, 2)
	w.uint(tagOSThread, 0xc000002000, 1, 1000)
	w.segment(tagData, dataLo, []uint64{mapHdr, objA}, 0, 1)
	w.segment(tagBSS, bssLo, []uint64{objA}) // not a pointer by its map
	w.finalizer(objG, objH)
	w.memStats()
	w.memProf(bucketA, 16, buildStack...)
	w.allocSample(objC, bucketA)
	w.allocSample(objD, bucketA)
	w.eof()
	return w.Bytes()
}

func tinyOptions() Options {
	return Options{
		Global: func(addr uint64) (string, uint64, bool) {
			if addr >= dataLo && addr < dataLo+16 {
				return "main.table", addr - dataLo, true
			}
			return "", 0, false
		},
		TypeName: func(addr uint64) (string, bool) {
			if addr == groupType {
				return "map.group[string]*main.Node", true
			}
			return "", false
		},
	}
}

func TestAnalyzeTinyDump(t *testing.T) {
	res, err := Analyze(bytes.NewReader(tinyDump()), []uint64{objF, objH, objV + 8, 0x1234}, tinyOptions())
	if err != nil {
		t.Fatal(err)
	}
	global := Hop{Root: RootGlobal, Name: "main.table"}
	want := &Result{
		Objects: 13,
		Edges:   10,
		Samples: []Sample{
			{Addr: objC, Size: 16, Stack: buildStack, BucketSize: 16, Chain: []Hop{
				// B points 8 bytes into C.
				global, {Size: 32, Offset: 8}, {Size: 48, Offset: 8}, {Size: 16, Offset: 16, Interior: true},
			}},
			{Addr: objD, Size: 16, Stack: buildStack, BucketSize: 16},
			{Addr: objF, Size: 8, Target: true, Chain: []Hop{
				{Root: RootStack, Name: "main.worker (goroutine 7, chan receive)"}, {Size: 8, Offset: 8},
			}},
			// The finalizer holds H directly, but a strong root holds it too.
			{Addr: objH, Size: 16, Target: true, Chain: []Hop{
				global, {Size: 32, Offset: 8}, {Size: 16, Offset: 24},
			}},
			{Addr: objV + 8, Size: 16, Target: true, Chain: []Hop{
				global,
				{Name: "map[string]*main.Node", Size: 48 + 64 + 32 + 1024, Type: groupType, Map: true},
				{Size: 16, Offset: 40},
			}},
			{Addr: 0x1234, Target: true},
		},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("Analyze:\n got %+v\nwant %+v", res, want)
	}
}

func TestAnalyzeUnnamed(t *testing.T) {
	res, err := Analyze(bytes.NewReader(tinyDump()), []uint64{objV}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Without names, the map's internals are plain hops, the global is
	// named by its address, and the group's type is unknown by name but
	// given by its header.
	want := []Hop{
		{Root: RootGlobal, Name: "data 0x5a0000"},
		{Size: 48}, {Size: 64, Offset: 16}, {Size: 32, Offset: 24}, {Size: 1024, Offset: 16, Type: groupType},
		{Size: 16, Offset: 40},
	}
	if got := res.Samples[len(res.Samples)-1].Chain; !reflect.DeepEqual(got, want) {
		t.Errorf("chain of V:\n got %+v\nwant %+v", got, want)
	}
}

func TestAnalyzeFinalizerRoot(t *testing.T) {
	w := newDumpWriter(arenaLo, arenaHi)
	w.object(objG, []uint64{objH, 0}, 0)
	w.object(objH, []uint64{0, 0})
	w.finalizer(objG, 0)
	w.eof()
	res, err := Analyze(bytes.NewReader(w.Bytes()), []uint64{objH}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Hop{{Root: RootFinalizer, Name: "object with finalizer"}, {Size: 16}, {Size: 16}}
	if got := res.Samples[0].Chain; !reflect.DeepEqual(got, want) {
		t.Errorf("chain of H:\n got %+v\nwant %+v", got, want)
	}
}

func TestAnalyzeTruncated(t *testing.T) {
	dump := tinyDump()
	for n := range len(dump) {
		_, err := Analyze(bytes.NewReader(dump[:n]), nil, Options{})
		if err == nil {
			t.Fatalf("dump cut to %d of %d bytes: no error", n, len(dump))
		}
		if n >= len(header) && !errors.Is(err, errTruncated) {
			t.Fatalf("dump cut to %d of %d bytes: %v, want %v", n, len(dump), err, errTruncated)
		}
	}
}

func TestAnalyzeRejects(t *testing.T) {
	withParams := func(bigEndian bool, ptrSize, lo, hi uint64) []byte {
		w := new(dumpWriter)
		w.WriteString(header)
		w.params(bigEndian, ptrSize, lo, hi)
		w.eof()
		return w.Bytes()
	}
	unknown := newDumpWriter(arenaLo, arenaHi)
	unknown.uint(99)
	unknown.eof()
	badField := newDumpWriter(arenaLo, arenaHi)
	badField.uint(tagObject, objA, 8, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0)
	badField.eof()
	outside := newDumpWriter(arenaLo, arenaHi)
	outside.object(0x1000, []uint64{0})
	outside.eof()
	many := newDumpWriter(arenaLo, arenaHi)
	many.object(objC, []uint64{0, 0})
	many.object(objD, []uint64{0, 0})
	many.eof()
	noParams := new(dumpWriter)
	noParams.WriteString(header)
	noParams.object(objA, []uint64{0})
	noParams.eof()

	for _, tc := range []struct {
		name string
		dump []byte
		opts Options
		want string
	}{
		{"header", []byte("go1.4 heap dump\n\x00"), Options{}, "not a heap dump"},
		{"empty", nil, Options{}, "truncated"},
		{"big endian", withParams(true, 8, arenaLo, arenaHi), Options{}, "unsupported heap dump: big endian"},
		{"32-bit", withParams(false, 4, arenaLo, arenaHi), Options{}, "unsupported heap dump: 4-byte pointers"},
		{"wide arenas", withParams(false, 8, 0, 64<<30), Options{}, "unsupported heap dump: heap arenas span 64 GiB"},
		{"unknown record", unknown.Bytes(), Options{}, "unknown record kind 99"},
		{"unknown field", badField.Bytes(), Options{}, "unknown field kind 9"},
		{"outside arenas", outside.Bytes(), Options{}, "not word aligned within the heap arenas"},
		{"no params", noParams.Bytes(), Options{}, "before the params record"},
		{"MaxObjects", many.Bytes(), Options{MaxObjects: 1}, "more than Options.MaxObjects (1)"},
		{"negative MaxObjects", many.Bytes(), Options{MaxObjects: -1}, "invalid Options.MaxObjects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Analyze(bytes.NewReader(tc.dump), nil, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Analyze: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestAnalyzeKeepsNoContents(t *testing.T) {
	// C holds "aaaaaaaaaaaaaaaa"; nothing of it may come out.
	res, err := Analyze(bytes.NewReader(tinyDump()), []uint64{objC}, tinyOptions())
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.ToLower(fmt.Sprintf("%#v", res)); strings.Contains(s, "aaaaaaaa") || strings.Contains(s, "6161616161616161") {
		t.Errorf("result holds the contents of an object: %s", s)
	}
}

func TestAnalyzeHeaderType(t *testing.T) {
	w := newDumpWriter(arenaLo, arenaHi)
	named := make([]uint64, 128) // a malloc header, then only nil pointers
	named[0] = groupType + 8
	w.object(objA, named, 5)
	unmarked := make([]uint64, 128) // no pointers: no malloc header
	unmarked[0] = groupType + 8
	w.object(objA+1024, unmarked)
	w.segment(tagData, dataLo, []uint64{objA, objA + 1024}, 0, 1)
	w.eof()
	opts := Options{TypeName: func(addr uint64) (string, bool) { return "main.T", addr == groupType+8 }}
	res, err := Analyze(bytes.NewReader(w.Bytes()), []uint64{objA, objA + 1024}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Samples[0].Chain; len(c) != 2 || c[1].Name != "main.T" {
		t.Errorf("chain %+v, want the object named by its header", c)
	}
	if c := res.Samples[1].Chain; len(c) != 2 || c[1].Name != "" {
		t.Errorf("chain %+v, want the object without pointers unnamed", c)
	}
}
