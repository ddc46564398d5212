package heapdump

import (
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func tempDumpFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "heapdump")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// analyzeSelf dumps the heap of the test process and analyzes it.
func analyzeSelf(t *testing.T, targets []uint64, opts Options) *Result {
	t.Helper()
	f := dumpFile(t)
	debug.WriteHeapDump(f.Fd())
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	res, err := Analyze(f, targets, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// setMemProfileRate sets runtime.MemProfileRate and returns the undo.
func setMemProfileRate(rate int) (undo func()) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = rate
	return func() { runtime.MemProfileRate = old }
}

// symbols names globals and types of the test executable from its ELF
// symbol table, as a caller of Analyze would.
type symbols struct {
	globals      []elf.Symbol // in data, bss, noptrdata and noptrbss, by address
	bias         uint64       // run-time address minus link-time address
	types, etype uint64       // the link-time range of runtime type descriptors
}

const pkgPath = "github.com/leakhunt/profiler/internal/heapdump"

// childEnv marks a test binary that runTestWithSymbols started.
const childEnv = "HEAPDUMP_TEST_WITH_SYMBOLS"

// loadSymbols reads the symbols of the test executable. go test links it
// without them (-s -w), so then it builds a copy that has them, runs the
// calling test in it, reports its outcome and returns nil.
func loadSymbols(t *testing.T) *symbols {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("not an ELF executable: %v", err)
	}
	defer f.Close()
	all, err := f.Symbols()
	if err != nil {
		if os.Getenv(childEnv) != "" {
			t.Fatalf("the copy built with symbols has none: %v", err)
		}
		runTestWithSymbols(t)
		return nil
	}
	data := map[elf.SectionIndex]bool{}
	for i, s := range f.Sections {
		switch s.Name {
		case ".data", ".bss", ".noptrdata", ".noptrbss":
			data[elf.SectionIndex(i)] = true
		}
	}
	s := new(symbols)
	var anchor uint64
	for _, sym := range all {
		switch sym.Name {
		case "runtime.types":
			s.types = sym.Value
		case "runtime.etypes":
			s.etype = sym.Value
		case pkgPath + ".registry":
			anchor = sym.Value
		}
		if data[sym.Section] && sym.Size > 0 {
			s.globals = append(s.globals, sym)
		}
	}
	if anchor == 0 || s.types == 0 || s.etype == 0 {
		t.Skip("symbols registry, runtime.types or runtime.etypes missing")
	}
	// The load bias of a position-independent executable: where a known
	// global is against where the symbol table puts it.
	s.bias = uint64(uintptr(unsafe.Pointer(&registry))) - anchor
	slices.SortFunc(s.globals, func(a, b elf.Symbol) int {
		if a.Value < b.Value {
			return -1
		}
		if a.Value > b.Value {
			return 1
		}
		return 0
	})
	return s
}

// runTestWithSymbols builds the package's test binary with a symbol
// table and runs the current test in it.
func runTestWithSymbols(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("the test executable has no symbols; building one is not short")
	}
	goTool, err := exec.LookPath("go") // go test puts its own first in PATH
	if err != nil {
		t.Skipf("the test executable has no symbols and there is no go command to build one: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "heapdump.test")
	if out, err := exec.Command(goTool, "test", "-c", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("run in a copy with symbols:\n%s", out)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
}

func (s *symbols) global(addr uint64) (string, uint64, bool) {
	a := addr - s.bias
	i, _ := slices.BinarySearchFunc(s.globals, a, func(sym elf.Symbol, a uint64) int {
		if sym.Value <= a {
			return -1
		}
		return 1
	})
	if i == 0 {
		return "", 0, false
	}
	sym := s.globals[i-1]
	if a-sym.Value >= sym.Size {
		return "", 0, false
	}
	return sym.Name, a - sym.Value, true
}

// typeName names the type descriptor at addr by making an interface of
// that type, which is sound only for descriptors of this very executable:
// the range check is what guards it.
func (s *symbols) typeName(addr uint64) (string, bool) {
	if a := addr - s.bias; a < s.types || a >= s.etype {
		return "", false
	}
	var e any
	(*[2]uintptr)(unsafe.Pointer(&e))[0] = uintptr(addr)
	return reflect.TypeOf(e).String(), true
}

func (s *symbols) options() Options {
	return Options{Global: s.global, TypeName: s.typeName}
}

type record struct {
	name string
	buf  []byte
}

type payload struct {
	id   int
	_    [64]byte
	next *payload
}

type cycleNode struct {
	next *cycleNode
	_    [40]byte
}

var (
	registry    map[string]*record
	ifaceHolder any
	globalState struct {
		count uint64
		label string
		held  *payload
	}
	cycleSink *cycleNode
)

func addrOf[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

func TestKnownChains(t *testing.T) {
	syms := loadSymbols(t)
	if syms == nil {
		return // run in a copy with symbols
	}
	defer setMemProfileRate(1)()
	// No collection between the allocations and the dump: the garbage
	// cycle must still be in it, unswept.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	registry = make(map[string]*record)
	for i := range 100 {
		k := "k" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		registry[k] = &record{name: k, buf: make([]byte, 2000)}
	}
	mapped := addrOf(&registry["kQa"].buf[0])
	defer func() { registry = nil }()

	ready := make(chan uint64)
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		held := make([]byte, 1<<20)
		ready <- addrOf(&held[0])
		<-release
		runtime.KeepAlive(held)
	}()
	stackHeld := <-ready
	defer func() { close(release); <-done }()
	waitParked(t, "TestKnownChains.func", "chan receive")

	boxed := &payload{id: 3, next: &payload{id: 4}}
	ifaceHolder = boxed
	defer func() { ifaceHolder = nil }()

	globalState.held = &payload{id: 5}
	field := addrOf(globalState.held)
	defer func() { globalState.held = nil }()

	a, b := new(cycleNode), new(cycleNode)
	a.next, b.next = b, a
	cycleSink = a // to the heap
	cycleA, cycleB := addrOf(a), addrOf(b)
	cycleSink, a, b = nil, nil, nil

	finalized := &payload{id: 6, next: &payload{id: 7}}
	runtime.SetFinalizer(finalized, func(*payload) {})
	viaFinalizer := addrOf(finalized.next)
	finalized = nil

	targets := []uint64{mapped, stackHeld, addrOf(boxed), cycleA, cycleB, field, viaFinalizer}
	res := analyzeSelf(t, targets, syms.options())
	t.Logf("%d objects, %d edges, %d samples", res.Objects, res.Edges, len(res.Samples)-len(targets))
	got := res.Samples[len(res.Samples)-len(targets):]
	for i, s := range got {
		t.Logf("%#x: %+v", s.Addr, s.Chain)
		if !s.Target || s.Addr != targets[i] {
			t.Fatalf("sample %d: %+v, want target %#x", i, s, targets[i])
		}
	}

	t.Run("map", func(t *testing.T) {
		c := got[0].Chain
		checkRoot(t, c, RootGlobal, pkgPath+".registry")
		if len(c) != 4 {
			t.Fatalf("chain %+v, want global, map, record, buffer", c)
		}
		if h := c[1]; !h.Map || h.Name != "map[string]*heapdump.record" || h.Offset != 0 {
			t.Errorf("hop 1 %+v, want the map's internals as one", h)
		}
		if h := c[2]; h.Size != 48 || h.Offset == 0 || h.Offset >= c[1].Size {
			t.Errorf("hop 2 %+v, want a 48-byte record within the map's groups", h)
		}
		if h := c[3]; h.Size != got[0].Size || h.Offset != uint64(unsafe.Offsetof(record{}.buf)) {
			t.Errorf("hop 3 %+v, want the buffer at offset %d", h, unsafe.Offsetof(record{}.buf))
		}
	})
	t.Run("stack", func(t *testing.T) {
		c := got[1].Chain
		checkRoot(t, c, RootStack, "")
		if len(c) != 2 {
			t.Fatalf("chain %+v, want frame, slice", c)
		}
		if n := c[0].Name; !strings.HasPrefix(n, pkgPath+".TestKnownChains.") || !strings.Contains(n, " (goroutine ") || !strings.HasSuffix(n, ", chan receive)") {
			t.Errorf("root %q, want the goroutine's function, id and wait reason", n)
		}
		if c[1].Size != 1<<20 {
			t.Errorf("hop 1 %+v, want the 1 MiB slice", c[1])
		}
	})
	t.Run("interface", func(t *testing.T) {
		c := got[2].Chain
		checkRoot(t, c, RootGlobal, pkgPath+".ifaceHolder")
		if len(c) != 2 || c[1].Offset != 8 {
			t.Errorf("chain %+v, want the global and its data word at offset 8", c)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for _, s := range got[3:5] {
			if s.Chain != nil || s.Size != 48 {
				t.Errorf("garbage %#x: %+v, want a 48-byte object with no chain", s.Addr, s)
			}
			// It is the cycle's own object, not another in its slot.
			i := slices.IndexFunc(res.Samples, func(x Sample) bool { return !x.Target && x.Addr == s.Addr })
			if i < 0 || !inStack(res.Samples[i].Stack, "TestKnownChains") {
				t.Errorf("garbage %#x: no sample allocated by the test", s.Addr)
			} else if res.Samples[i].Chain != nil {
				t.Errorf("garbage %#x: sample has chain %+v", s.Addr, res.Samples[i].Chain)
			}
		}
	})
	t.Run("field", func(t *testing.T) {
		c := got[5].Chain
		checkRoot(t, c, RootGlobal, pkgPath+".globalState")
		if len(c) != 2 || c[1].Offset != uint64(unsafe.Offsetof(globalState.held)) {
			t.Errorf("chain %+v, want the global and its field at offset %d", c, unsafe.Offsetof(globalState.held))
		}
	})
	t.Run("finalizer", func(t *testing.T) {
		c := got[6].Chain
		checkRoot(t, c, RootFinalizer, "object with finalizer")
		if len(c) != 3 || c[2].Offset != uint64(unsafe.Offsetof(payload{}.next)) {
			t.Errorf("chain %+v, want the finalized object and its field at offset %d", c, unsafe.Offsetof(payload{}.next))
		}
	})
	t.Run("samples", func(t *testing.T) {
		// Every target was sampled, at its own address, by the test.
		for _, tg := range got {
			i := slices.IndexFunc(res.Samples, func(x Sample) bool { return !x.Target && x.Addr == tg.Addr })
			if i < 0 {
				t.Errorf("%#x: not sampled", tg.Addr)
				continue
			}
			s := res.Samples[i]
			if !inStack(s.Stack, "TestKnownChains") || s.BucketSize == 0 || s.BucketSize > s.Size {
				t.Errorf("%#x: sample %+v, want one allocated by the test", tg.Addr, s)
			}
			if !reflect.DeepEqual(s.Chain, tg.Chain) {
				t.Errorf("%#x: sample chain %+v, target chain %+v", tg.Addr, s.Chain, tg.Chain)
			}
		}
	})
}

func checkRoot(t *testing.T, c []Hop, kind RootKind, name string) {
	t.Helper()
	if len(c) == 0 {
		t.Fatalf("no chain, want one from a %v root", kind)
	}
	if c[0].Root != kind || (name != "" && c[0].Name != name) {
		t.Errorf("root %+v, want %v %q", c[0], kind, name)
	}
	for _, h := range c[1:] {
		if h.Root != RootNone {
			t.Errorf("hop %+v after the root is a root", h)
		}
	}
}

func inStack(stk []Frame, fn string) bool {
	return slices.ContainsFunc(stk, func(f Frame) bool { return strings.Contains(f.Func, fn) })
}

// waitParked waits until a goroutine running a function whose name holds
// fn is parked for reason: a goroutine that has just been woken from one
// wait, and not yet reached the next, would be dumped with the old reason.
func waitParked(t *testing.T, fn, reason string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(time.Millisecond) {
		for g := range strings.SplitSeq(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "["+reason) && strings.Contains(g, fn) {
				return
			}
		}
	}
	t.Fatalf("no goroutine in %s parked on %s after 10s", fn, reason)
}
