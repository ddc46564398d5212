package profiler

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/leakhunt/profiler/internal/dwarftypes"
	"github.com/leakhunt/profiler/internal/heapdump"
)

// On Linux the dump goes to a memfd, an anonymous file in RAM that no path
// names, and is parsed by the program's own executable re-run through
// /proc/self/exe with retainersHelperEnv set, the memfd as its standard
// input and a pipe as file descriptor 3 for its answer. Another process,
// because the parse needs memory in proportion to the heap, and CPU,
// which would compete with the program's own. Not a pipe read while
// dumping: every goroutine of this process is stopped during the dump, so
// a reader here deadlocks once the pipe is full, and a reader in another
// process makes the pause two to three times longer (the runtime writes in
// 4 KB pieces). Neither the dump nor any byte of it is ever written to a
// disk; it lives until the helper has exited.

// Environment of the helper process. The parent's load bias is passed so
// that the helper, a fresh process whose addresses may be laid out
// elsewhere (PIE), can name the parent's globals and types.
const (
	retainersHelperEnv     = "LEAKHUNT_RETAINERS_HELPER"
	retainersBiasEnv       = "LEAKHUNT_RETAINERS_BIAS"
	retainersMaxObjectsEnv = "LEAKHUNT_RETAINERS_MAX_OBJECTS"
)

// dumpHeader opens every dump in the format internal/heapdump reads.
const dumpHeader = "go1.7 heap dump\n"

// testedGoVersion is the release whose heap dumps internal/heapdump was
// checked against: the format is not versioned beyond its header, and a
// change in what the runtime writes must give an error, never a wrong
// chain.
const testedGoVersion = "go1.26."

// memfdCreate is the number of the memfd_create system call, which the
// syscall package does not define on every architecture. Only 64-bit
// little-endian ones are listed: the dumps of others are not read.
var memfdCreate = map[string]uintptr{
	"amd64":   319,
	"arm64":   279,
	"riscv64": 279,
	"loong64": 279,
	"ppc64le": 360,
}

const (
	mfdCloexec     = 0x1
	fallocKeepSize = 0x1 // FALLOC_FL_KEEP_SIZE
)

// dumpSizeFactor is the size of a dump relative to the heap it holds,
// rounded up from the 1.1 to 1.23 measured: its records' framing.
const dumpSizeFactor = 1.25

// init turns the process into the parsing helper when it was started as
// one, before the rest of the program's initialization runs (only the
// packages this one depends on, and those initialized before it, have
// run). It never returns then.
func init() {
	if os.Getenv(retainersHelperEnv) != "1" {
		return
	}
	os.Exit(runRetainersHelper())
}

// takeRetainers dumps the heap into a memfd after checking that the dump
// can be read, will not pause the program over limit and will not bring
// it near its cgroup's memory limit, has the helper parse it and find the
// chains of the sampled objects and of the objects at targets, and returns
// the helper's findings.
func takeRetainers(ctx context.Context, limit time.Duration, targets []uint64) (*retainersDump, error) {
	if v := runtime.Version(); !strings.HasPrefix(v, testedGoVersion) {
		return nil, fmt.Errorf("%w: the heap dump of %s is not known to this version of the profiler (tested with %sx)", errRetainersUnsupported, v, testedGoVersion)
	}
	nr, ok := memfdCreate[runtime.GOARCH]
	if !ok {
		return nil, fmt.Errorf("%w on linux/%s", errRetainersUnsupported, runtime.GOARCH)
	}
	heap, objects := heapFigures()
	d := &retainersDump{heapBytes: heap, estimate: estimatePause(heap, !dumpedBefore.Load())}
	if err := checkPause(d.estimate, heap, limit); err != nil {
		return nil, fmt.Errorf("%w: %w", errRetainersRefused, err)
	}
	mem := newMemoryReader()
	err := checkDumpMemory(mem.read(), heap)
	mem.close()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errRetainersRefused, err)
	}
	bias, err := parentLoadBias()
	if err != nil {
		return nil, err
	}

	f, err := newMemfd(nr, "leakhunt-heapdump")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The memfd's pages are allocated now, while the program runs, rather
	// than by the dump's writes with the world stopped, which makes the
	// pause shorter by about a fifth. Best effort: an estimate too small,
	// or an error, leaves the rest to the writes. The size stays at 0, so
	// that after the dump it is the dump's.
	fd := f.Fd()
	_ = syscall.Fallocate(int(fd), fallocKeepSize, 0, int64(dumpSizeFactor*float64(heap)))
	d.rate = runtime.MemProfileRate
	start := time.Now()
	debug.WriteHeapDump(fd)
	d.pause = time.Since(start)
	dumpedBefore.Store(true)

	if d.dumpBytes, err = f.Seek(0, io.SeekEnd); err != nil {
		return nil, fmt.Errorf("heap dump: %w", err)
	}
	header := make([]byte, len(dumpHeader))
	if _, err := f.ReadAt(header, 0); err != nil || string(header) != dumpHeader {
		return nil, fmt.Errorf("heap dump: not in the %q format", strings.TrimSpace(dumpHeader))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("heap dump: %w", err)
	}
	if err := d.analyze(ctx, f, bias, objects, targets); err != nil {
		return nil, err
	}
	return d, nil
}

// newMemfd returns a new memfd, closed on exec: the helper gets it as its
// standard input, and no other child of the program ever does.
func newMemfd(nr uintptr, name string) (*os.File, error) {
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return nil, err
	}
	fd, _, errno := syscall.Syscall(nr, uintptr(unsafe.Pointer(p)), mfdCloexec, 0)
	if errno != 0 {
		return nil, fmt.Errorf("memfd_create: %w", errno)
	}
	return os.NewFile(fd, name), nil
}

// analyze runs the helper on the dump in f and reads its result into d.
// The targets go to the helper through a pipe, file descriptor 4, as
// little-endian 64-bit words. The helper's memory is bounded softly with GOMEMLIMIT, at twice the
// dump (it needs about 1.2 times as much), and its objects with
// MaxObjects, from the heap's object count; its time by a timeout.
func (d *retainersDump) analyze(ctx context.Context, f *os.File, bias uint64, objects uint64, targets []uint64) error {
	timeout := 30*time.Second + time.Duration(d.dumpBytes>>20)*30*time.Millisecond
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	defer r.Close()
	tr, tw, err := os.Pipe()
	if err != nil {
		w.Close()
		return fmt.Errorf("helper: %w", err)
	}

	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{os.Args[0]}
	cmd.Env = helperEnv(os.Environ(),
		retainersHelperEnv+"=1",
		retainersBiasEnv+"="+strconv.FormatUint(bias, 10),
		retainersMaxObjectsEnv+"="+strconv.FormatUint(2*objects+1<<20, 10),
		"GOMEMLIMIT="+strconv.FormatInt(max(2*d.dumpBytes, 256<<20), 10),
		// A crash prints its message only: a traceback's argument
		// words could be words read from the dump.
		"GOTRACEBACK=none")
	cmd.Stdin = f
	cmd.ExtraFiles = []*os.File{w, tr}
	var stderr boundedBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	w.Close()
	tr.Close()
	if err != nil {
		tw.Close()
		return fmt.Errorf("starting helper: %w", err)
	}
	// Written while the helper runs: more than a pipe's buffer of targets
	// would block until it reads them. A helper that exits first makes the
	// write fail, and the closing unblock it.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		bw := bufio.NewWriter(tw)
		var word [8]byte
		for _, a := range targets {
			binary.LittleEndian.PutUint64(word[:], a)
			if _, err := bw.Write(word[:]); err != nil {
				break
			}
		}
		bw.Flush()
		tw.Close()
	}()
	defer func() { <-sent }()
	var sum retainersSummary
	var peakRSS int64
	dec := json.NewDecoder(bufio.NewReader(r))
	decodeErr := dec.Decode(&sum)
	if decodeErr == nil {
		decodeErr = dec.Decode(&peakRSS)
	}
	waitErr := cmd.Wait()
	f.Close() // the dump's memory is freed now, not when the profile is written
	if ps := cmd.ProcessState; ps != nil {
		d.helperCPU = ps.UserTime() + ps.SystemTime()
		// The helper's own figure, when it sent one: the rusage's
		// counts this process's resident set as well, since the helper
		// was started with vfork, sharing this process's memory until
		// its exec (Linux's exec_mmap keeps the larger of the two).
		d.helperRSS = peakRSS
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok && peakRSS == 0 {
			d.helperRSS = int64(ru.Maxrss) << 10 // KiB on Linux
		}
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("helper: no result within %v", timeout)
	case ctx.Err() != nil:
		return fmt.Errorf("helper: %w", ctx.Err())
	case waitErr != nil:
		return fmt.Errorf("helper: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	case decodeErr != nil:
		return fmt.Errorf("helper: reading its result: %w", decodeErr)
	}
	d.summary = &sum
	return nil
}

// helperEnv returns env without any setting the helper gets anew, and
// with those.
func helperEnv(env []string, set ...string) []string {
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		for _, s := range set {
			if k, _, _ := strings.Cut(s, "="); strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	})
	return append(env, set...)
}

// boundedBuffer keeps the first 4 KiB written to it: enough of a helper's
// error for a message.
type boundedBuffer struct{ bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// runRetainersHelper is the helper's main: it analyzes the dump on its
// standard input and writes the summary as JSON to file descriptor 3,
// followed by its own peak resident set in bytes.
// The summary holds counts, sizes, offsets, and names of globals,
// functions, files, types and wait reasons: nothing of any object's
// contents, and no address.
func runRetainersHelper() int {
	out := os.NewFile(3, "result")
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "leakhunt retainers helper: %v\n", err)
		return 2
	}
	targets, err := readTargets(os.NewFile(4, "targets"))
	if err != nil {
		return fail(err)
	}
	parentBias, err := strconv.ParseUint(os.Getenv(retainersBiasEnv), 10, 64)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", retainersBiasEnv, err))
	}
	maxObjects, err := strconv.Atoi(os.Getenv(retainersMaxObjectsEnv))
	if err != nil {
		return fail(fmt.Errorf("%s: %w", retainersMaxObjectsEnv, err))
	}
	syms, err := exeSymbolsOnce()
	if err != nil {
		return fail(err)
	}
	opts := heapdump.Options{
		Global:     func(addr uint64) (string, uint64, bool) { return syms.global(addr - parentBias) },
		TypeName:   func(addr uint64) (string, bool) { return syms.typeName(addr - parentBias) },
		MaxObjects: maxObjects,
	}
	res, err := heapdump.Analyze(bufio.NewReaderSize(os.Stdin, 1<<20), targets, opts)
	if err != nil {
		return fail(err)
	}
	sum := summarize(res)
	// Without DWARF (-ldflags=-w), hops are named by size and offset.
	names, _ := dwarftypes.Open("/proc/self/exe")
	nameFields(sum, names, parentBias)
	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(sum); err != nil {
		return fail(err)
	}
	if err := enc.Encode(peakResidentSet()); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	return 0
}

// readTargets reads the addresses the program asks about, little-endian
// 64-bit words, until r ends.
func readTargets(r io.ReadCloser) ([]uint64, error) {
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the targets: %w", err)
	}
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("reading the targets: %d bytes, not a whole number of addresses", len(b))
	}
	targets := make([]uint64, 0, len(b)/8)
	for ; len(b) > 0; b = b[8:] {
		targets = append(targets, binary.LittleEndian.Uint64(b))
	}
	return targets, nil
}

// peakResidentSet returns this process's peak resident set in bytes, as
// /proc/self/status gives it (VmHWM), or 0 if it cannot be read.
func peakResidentSet() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// exeSymbols are the symbols of this executable that name globals and
// bound its types, at their link addresses, and the load bias of this
// process: where it was loaded minus where it was linked (0 unless PIE).
type exeSymbols struct {
	globals       []elf.Symbol // of the data and bss sections, by address
	types, etypes uint64       // runtime.types and runtime.etypes
	bias          uint64
}

// exeSymbolsOnce reads the symbols in the helper, which needs them all.
var exeSymbolsOnce = sync.OnceValues(readExeSymbols)

// loadBias is this process's load bias, once read.
var loadBias struct {
	sync.Mutex
	known bool
	bias  uint64
}

// parentLoadBias checks that this executable has a symbol table, which the
// helper names globals with, and returns this process's load bias. The
// symbols themselves are not kept: the program needs only the bias. An
// error is not kept either: one reading the executable (too many open
// files) may pass, and one that says it lacks symbols costs little to
// find again.
func parentLoadBias() (uint64, error) {
	loadBias.Lock()
	defer loadBias.Unlock()
	if !loadBias.known {
		syms, err := readExeSymbols()
		if err != nil {
			return 0, err
		}
		loadBias.bias, loadBias.known = syms.bias, true
	}
	return loadBias.bias, nil
}

// readExeSymbols reads the symbols of /proc/self/exe. The load bias is
// that of a function of this package, whose address the process knows
// and the symbol table has.
func readExeSymbols() (*exeSymbols, error) {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("reading the executable's symbols: %w", err)
	}
	defer f.Close()
	if f.Section(".symtab") == nil {
		return nil, fmt.Errorf("%w: the executable has no symbol table (built with -ldflags=-s?): globals cannot be named", errRetainersUnsupported)
	}
	all, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("reading the executable's symbols: %w", err)
	}
	data := make(map[elf.SectionIndex]bool)
	for i, s := range f.Sections {
		switch s.Name {
		case ".data", ".bss", ".noptrdata", ".noptrbss":
			data[elf.SectionIndex(i)] = true
		}
	}
	pc := reflect.ValueOf(readExeSymbols).Pointer()
	anchor := runtime.FuncForPC(pc).Name()
	s := &exeSymbols{}
	found := false
	for _, sym := range all {
		switch {
		case sym.Name == "runtime.types":
			s.types = sym.Value
		case sym.Name == "runtime.etypes":
			s.etypes = sym.Value
		case sym.Name == anchor && elf.ST_TYPE(sym.Info) == elf.STT_FUNC:
			s.bias, found = uint64(pc)-sym.Value, true
		case data[sym.Section] && elf.ST_TYPE(sym.Info) == elf.STT_OBJECT && sym.Size > 0:
			// Sized only: the markers of the sections' bounds
			// (runtime.bss, runtime.edata) have no size, and would
			// name every global that starts where they do.
			s.globals = append(s.globals, sym)
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: the executable's symbol table lacks %s", errRetainersUnsupported, anchor)
	}
	slices.SortFunc(s.globals, func(a, b elf.Symbol) int {
		switch {
		case a.Value < b.Value:
			return -1
		case a.Value > b.Value:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return s, nil
}

// global names the global holding the link address addr, and the offset
// of addr in it.
func (s *exeSymbols) global(addr uint64) (string, uint64, bool) {
	i, _ := slices.BinarySearchFunc(s.globals, addr, func(sym elf.Symbol, addr uint64) int {
		if sym.Value <= addr {
			return -1
		}
		return 1
	})
	if i == 0 {
		return "", 0, false
	}
	sym := s.globals[i-1]
	if addr >= sym.Value+sym.Size {
		return "", 0, false
	}
	return sym.Name, addr - sym.Value, true
}

// typeName names the runtime type at link address addr, the first word
// of an object with a malloc header. The helper is the same executable,
// so the parent's type descriptor is at the same place in this process's
// types section, once relocated by this process's bias: an address inside
// [runtime.types, runtime.etypes) is read as a *_type, through an empty
// interface whose type word it becomes. Any other address is not named.
func (s *exeSymbols) typeName(addr uint64) (string, bool) {
	if addr < s.types || addr >= s.etypes || addr%8 != 0 {
		return "", false
	}
	local := uintptr(addr + s.bias)
	var e any
	words := (*[2]unsafe.Pointer)(unsafe.Pointer(&e))
	words[0] = *(*unsafe.Pointer)(unsafe.Pointer(&local))
	t := reflect.TypeOf(e)
	if t == nil {
		return "", false
	}
	return t.String(), true
}
