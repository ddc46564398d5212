package profiler

import (
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
	"weak"

	"github.com/leakhunt/profiler/internal/heapdump"
)

// A pause limit below any dump's refuses before anything is dumped, with
// an error that says why and how to raise it; on a system without the
// mechanism, the error says that instead.
func TestRetainersRefusesOverPauseLimit(t *testing.T) {
	p := startRetainersProfiler(t)
	err := p.writeRetainers(context.Background(), io.Discard, time.Nanosecond)
	if err == nil {
		t.Fatal("a retainers profile was taken with a pause limit of 1ns")
	}
	want := "over the limit of 1ns; WithMaxRetainersPause raises it"
	if runtime.GOOS != "linux" {
		want = "not supported on " + runtime.GOOS
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
	t.Log(err)
}

// While one retainers profile is taken, another is refused at once, and
// after Stop every one is.
func TestRetainersOneAtATime(t *testing.T) {
	p := startRetainersProfiler(t)
	if !retainersBusy.CompareAndSwap(false, true) {
		t.Fatal("a retainers profile is already being taken")
	}
	err := p.WriteRetainers(io.Discard)
	retainersBusy.Store(false)
	if !errors.Is(err, errRetainersBusy) {
		t.Errorf("second concurrent call: %v, want %v", err, errRetainersBusy)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteRetainers(io.Discard); !errors.Is(err, ErrStopped) {
		t.Errorf("after Stop: %v, want %v", err, ErrStopped)
	}
}

// A chain becomes frames from the object outwards: the objects that hold
// it, each with the offset of its pointer, a map as one frame, and the
// root last with the offset into a global; with field paths, each with
// its type and the field that points on.
func TestRetainersChainFrames(t *testing.T) {
	chain := []heapdump.Hop{
		{Root: heapdump.RootGlobal, Name: "main.server"},
		{Size: 48, Offset: 16},
		{Size: 27264, Name: "map[string]*main.Session", Map: true, Offset: 8},
		{Size: 704, Name: "main.Session", Offset: 4256},
		{Size: 112, Offset: 24}, // the sampled object itself
	}
	got := chainFrames(chain, nil)
	want := []string{
		"[704 B main.Session] +24",
		"[map] map[string]*main.Session",
		"[48 B object] +8",
		"[held by] main.server +16",
	}
	if !slices.Equal(got, want) {
		t.Errorf("chainFrames:\n got %q\nwant %q", got, want)
	}

	stack := []heapdump.Hop{{Root: heapdump.RootStack, Name: "main.worker (goroutine 7, chan receive)"}, {Size: 8192, Offset: 40}}
	named := chainFrames(chain, []string{".cache", ".data", "", ".conns[i]", ""})
	if want := []string{
		"[main.Session] .conns[i]",
		"[map] map[string]*main.Session",
		"[48 B object] +8", // no type to name the field with
		"[held by] main.server.cache",
	}; !slices.Equal(named, want) {
		t.Errorf("chainFrames with fields:\n got %q\nwant %q", named, want)
	}

	if got, want := chainFrames(stack, nil), []string{"[held by] main.worker (goroutine 7, chan receive)"}; !slices.Equal(got, want) {
		t.Errorf("chainFrames of a frame root: got %q, want %q", got, want)
	}
}

// An allocation stack loses the runtime's frames at the leaf and
// runtime.goexit at the root, as in runtime/pprof's heap profile.
func TestRetainersAllocationFrames(t *testing.T) {
	stk := []heapdump.Frame{
		{Func: "runtime.mallocgc"}, {Func: "runtime.makeslice"}, {Func: "main.build"},
		{Func: "runtime.main"}, {Func: "runtime.goexit"},
	}
	var got []string
	for _, f := range allocationFrames(stk) {
		got = append(got, f.Func)
	}
	if want := []string{"main.build", "runtime.main"}; !slices.Equal(got, want) {
		t.Errorf("allocationFrames: got %q, want %q", got, want)
	}
}

// startRetainersProfiler starts a profiler that writes no files and
// stops it when the test ends.
func startRetainersProfiler(t *testing.T) *Profiler {
	t.Helper()
	p, err := Start(WithoutFiles(), WithMemoryPoll(0), WithLeakWarnings(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// A tracked object is written under its heap at its tracked size, with the
// frame the heap profile has for a stack the table had no room for; one
// the collector found unreachable since it was listed is left out and
// counted, whatever the dump said of its address.
func TestRetainersTrackedSamples(t *testing.T) {
	live, dead := new([64]byte), new([64]byte)
	deadRef := weak.Make(&dead[0])
	deadAddr := uintptr(unsafe.Pointer(dead))
	dead = nil
	runtime.GC()
	if deadRef.Value() != nil {
		t.Skip("the dropped object survived a collection")
	}
	chain := []heapdump.Hop{{Root: heapdump.RootGlobal, Name: "main.sessions"}, {Size: 64, Offset: 8}}
	d := &retainersDump{
		summary: &retainersSummary{
			Chains:  [][]heapdump.Hop{chain},
			Targets: []retainersTarget{{Chain: 0, Size: 64}, {Chain: 0, Size: 64}},
		},
		tracked: []trackedObject{
			{obj: weak.Make(&live[0]), addr: uintptr(unsafe.Pointer(live)), heap: 1, size: 1000},
			{obj: deadRef, addr: deadAddr, heap: 1, size: 1000},
		},
		trackedRate: 1,
		heapNames:   []string{"default", "sessions"},
	}
	prof := d.profile(time.Now())
	runtime.KeepAlive(live)
	if len(prof.Sample) != 1 {
		t.Fatalf("%d samples, want the live tracked object's", len(prof.Sample))
	}
	s := prof.Sample[0]
	var frames []string
	for _, l := range s.Location {
		frames = append(frames, l.Line[0].Function.Name)
	}
	if want := []string{overflowFrame, "[held by] main.sessions +8"}; !slices.Equal(frames, want) {
		t.Errorf("frames %q, want %q", frames, want)
	}
	if got := s.Label["heap"]; !slices.Equal(got, []string{"sessions"}) {
		t.Errorf("heap label %q, want sessions", got)
	}
	if s.Value[0] != 1 || s.Value[1] != 1000 {
		t.Errorf("values %v, want [1 1000]: one object at its tracked size, rate 1", s.Value)
	}
	const counts = "tracked objects: 1 chained to a root; left out: 0 unreachable, 0 outside the heap (package-level variables), 1 collected during the dump"
	if !slices.Contains(prof.Comments, counts) {
		t.Errorf("comments %q lack %q", prof.Comments, counts)
	}
}
