package profiler

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The encoder's output depends only on the state it is handed: a fixed
// snapshot, Go heap profile, symbols and mappings encode to the same bytes
// on every run and every machine, whatever order the Go heap listed its
// samples in. testdata/golden.pb.gz holds those bytes; -update rewrites it
// after an intended change of the format (check the new file with
// `go tool pprof -raw testdata/golden.pb.gz`).
func TestEncodeGolden(t *testing.T) {
	golden := filepath.Join("testdata", "golden.pb.gz")
	got := encodeFixture(t, 1)
	for _, shuffle := range []uint64{2, 3} {
		if again := encodeFixture(t, shuffle); !bytes.Equal(got, again) {
			t.Fatalf("the same state encoded to different bytes when the Go heap's samples came in another order (%d and %d bytes)", len(got), len(again))
		}
	}
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoded profile differs from %s (run with -update if the change is intended)\ngot:\n%s\nwant:\n%s",
			golden, profileText(t, got), profileText(t, want))
	}

	// The fixture itself reads back as intended: a check that the golden
	// file holds what the test means it to.
	prof, err := profile.ParseData(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := prof.CheckValid(); err != nil {
		t.Fatal(err)
	}
	var hook, goHeap, truncated, overflow, folded int
	for _, s := range prof.Sample {
		switch s.Label["heap"][0] {
		case goHeapName:
			goHeap++
		default:
			hook++
		}
		for _, l := range s.Location {
			switch l.Line[0].Function.Name {
			case truncatedFrame:
				truncated++
			case overflowFrame:
				overflow++
			case foldedFrame:
				folded++
			}
		}
	}
	if hook != 10 || goHeap != 3 || truncated != 1 || overflow != 2 || folded != 1 {
		t.Errorf("golden profile has %d hook samples, %d Go heap samples, %d truncated, %d overflowed and %d folded stacks; want 10 (4 of groups' allocations, 4 of their live objects, 2 retired), 3, 1, 2 (allocations and live objects), 1", hook, goHeap, truncated, overflow, folded)
	}
}

// encodeFixture encodes a fixed state with a fresh encoder, the Go heap's
// samples shuffled by seed, and returns the gzipped profile.
func encodeFixture(t *testing.T, seed uint64) []byte {
	t.Helper()
	symbols := map[uintptr]symbol{}
	sym := func(pc uintptr, fn string, line int64) {
		symbols[pc] = symbol{addr: uint64(pc - 1), entry: pc &^ 0xff, frames: []frame{{function: fn, file: "/src/app/main.go", line: line}}}
	}
	sym(0x1010, "main.leak", 10)
	sym(0x1020, "main.handler", 20)
	sym(0x1030, "main.main", 30)
	sym(0x1040, "main.deep", 40)
	symbols[0x1050] = symbol{addr: 0x104f, goexit: true, frames: []frame{{function: "runtime.goexit"}}}
	symbolize := func(pc uintptr) symbol { return symbols[pc] }
	maps := []*profile.Mapping{{ID: 1, Start: 0x1000, Limit: 0x3000, File: "/bin/app", BuildID: "abc123", HasFunctions: true}}

	stk := func(pcs ...uintptr) *stack { return &stack{pcs: pcs, order: orderKey(pcs)} }
	full := stk(0x1010, 0x1020, 0x1030, 0x1050)
	deep := stk(0x1040, 0x1040, 0x1040) // depth 3 and no goexit: cut
	snap := tableSnapshot{
		time:      time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
		start:     time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
		rate:      4096,
		depth:     3,
		heapNames: []string{defaultHeapName, "cgo"},
		labelSets: [][]labelPair{{{"tenant", "acme"}, {"heap", "shadowed"}}},
		samples:   40, live: 9, stacks: 2, droppedLive: 1, droppedGroup: 2, labelSetsDropped: 3, trackRejected: 4,
	}
	snap.groups = []groupState{
		{id: 1, stk: full, heap: 0, size: 100, allocs: 10},
		{id: 2, stk: full, heap: 1, labels: 1, size: 5000, allocs: 3},
		{id: 3, stk: deep, heap: 0, size: 64, allocs: 2},
		{id: 4, stk: nil, heap: 1, size: 8, allocs: 1},
	}
	snap.retired = []retiredState{
		{retiredKey{stk: full, heap: 1, labels: 1}, retiredAllocs{objects: 40, bytes: 123456}},
		{retiredKey{heap: 0, folded: true}, retiredAllocs{objects: 7, bytes: 700}},
	}
	// Live records of groups 1 (three, of two ages), 2 (one) and 4 (one).
	snap.ages = []uint32{1 << ageBits, 1<<ageBits | 5, 1<<ageBits | 5, 2<<ageBits | 9, 4<<ageBits | 1}
	snap.groupLive(uint32(len(snap.groups)))
	snap.sort()

	goHeap := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"}, {Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:     4096,
	}
	fnLeak := &profile.Function{ID: 1, Name: "main.leak", Filename: "/src/app/main.go"}
	fnCache := &profile.Function{ID: 2, Name: "main.cache", Filename: "/src/app/cache.go"}
	fnOwn := &profile.Function{ID: 3, Name: "github.com/leakhunt/profiler.(*stackTable).intern", Filename: "/src/leakhunt/stack.go"}
	locLeak := &profile.Location{ID: 1, Address: 0x100f, Line: []profile.Line{{Function: fnLeak, Line: 10}}}
	locCache := &profile.Location{ID: 2, Address: 0x2010, Line: []profile.Line{{Function: fnCache, Line: 7}, {Function: fnLeak, Line: 11}}}
	locOwn := &profile.Location{ID: 3, Address: 0x2020, Line: []profile.Line{{Function: fnOwn, Line: 99}}}
	goHeap.Function = []*profile.Function{fnLeak, fnCache, fnOwn}
	goHeap.Location = []*profile.Location{locLeak, locCache, locOwn}
	goHeap.Sample = []*profile.Sample{
		{Location: []*profile.Location{locLeak}, Value: []int64{8, 4096, 4, 2048}, NumLabel: map[string][]int64{"bytes": {512}}},
		{Location: []*profile.Location{locCache, locLeak}, Value: []int64{100, 102400, 50, 51200}, NumLabel: map[string][]int64{"bytes": {1024}}},
		{Location: []*profile.Location{locOwn}, Value: []int64{2, 200, 2, 200}, NumLabel: map[string][]int64{"bytes": {100}}},
		{Location: []*profile.Location{locLeak}, Value: []int64{0, 0, 0, 0}},
	}
	r := rand.New(rand.NewPCG(seed, seed))
	r.Shuffle(len(goHeap.Sample), func(i, j int) { goHeap.Sample[i], goHeap.Sample[j] = goHeap.Sample[j], goHeap.Sample[i] })
	var raw bytes.Buffer
	if err := goHeap.WriteUncompressed(&raw); err != nil {
		t.Fatal(err)
	}

	e := newEncoder(symbolize, maps)
	data, err := e.encode(&snap, &goHeapProfile{
		data:       raw.Bytes(),
		figuresAt:  time.Date(2026, 12, 2, 9, 59, 30, 0, time.UTC),
		rateBefore: 512 * 1024,
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// profileText renders a profile for a failure message.
func profileText(t *testing.T, data []byte) string {
	t.Helper()
	prof, err := profile.ParseData(data)
	if err != nil {
		return err.Error()
	}
	return prof.String()
}
