package dwarftypes_test

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/leakhunt/profiler/internal/pproftest"
)

// tmpDir holds the programs the tests build, for the run of the test
// binary.
var tmpDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dwarftypes-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	tmpDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// A prog is a build of testdata/prog, with what it printed when run.
type prog struct {
	path    string
	main    uint64            // where main.main ran
	bias    uint64            // main less main.main's link address
	types   map[string]uint64 // reflect's name -> where the type descriptor was
	offsets map[string]uint64 // the name of a field -> its offset; of a type -> its size
}

// parse reads the lines testdata/prog prints.
func (p *prog) parse(out string) error {
	p.types, p.offsets = make(map[string]uint64), make(map[string]uint64)
	for line := range strings.Lines(out) {
		fields := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(fields) != 3 {
			return fmt.Errorf("line %q", line)
		}
		v, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return fmt.Errorf("line %q: %v", line, err)
		}
		switch fields[0] {
		case "main":
			p.main = v
		case "type":
			p.types[fields[1]] = v
		case "offset":
			p.offsets[fields[1]] = v
		default:
			return fmt.Errorf("line %q", line)
		}
	}
	return nil
}

// typeAddr returns the link address of the type descriptor of the type
// reflect names name.
func (p *prog) typeAddr(t testing.TB, name string) uint64 {
	t.Helper()
	addr, ok := p.types[name]
	if !ok {
		t.Fatalf("testdata/prog printed no address for type %s", name)
	}
	return addr - p.bias
}

// off returns the offset testdata/prog printed under name.
func (p *prog) off(t testing.TB, name string) uint64 {
	t.Helper()
	off, ok := p.offsets[name]
	if !ok {
		t.Fatalf("testdata/prog printed no offset %s", name)
	}
	return off
}

// One build of each: the tests share them.
var (
	plainProg   = sync.OnceValues(func() (*prog, error) { return buildProg("prog") })
	pieProg     = sync.OnceValues(func() (*prog, error) { return buildProg("prog-pie", "-buildmode=pie") })
	noDWARFProg = sync.OnceValues(func() (*prog, error) { return buildProg("prog-nodwarf", "-ldflags=-w") })
)

// buildProg builds testdata/prog with flags and runs it. Without cgo,
// the Go linker links it itself, the case this package is written for;
// GOFLAGS is cleared so that a developer's flags do not change the build.
func buildProg(name string, flags ...string) (*prog, error) {
	p := &prog{path: filepath.Join(tmpDir, name)}
	args := append(append([]string{"build", "-o", p.path}, flags...), "./testdata/prog")
	cmd := exec.Command(pproftest.GoTool(), args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	out, err := exec.Command(p.path).Output()
	if err != nil {
		return nil, fmt.Errorf("running %s: %v", name, err)
	}
	if err := p.parse(string(out)); err != nil {
		return nil, fmt.Errorf("reading the output of %s: %v", name, err)
	}
	f, err := elf.Open(p.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, err
	}
	for _, s := range syms {
		if s.Name == "main.main" && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			p.bias = p.main - s.Value
			return p, nil
		}
	}
	return nil, fmt.Errorf("%s has no symbol main.main", name)
}

// mustProg returns the build that get makes, failing the test if it
// fails. It skips the test where executables are not ELF.
func mustProg(t testing.TB, get func() (*prog, error)) *prog {
	t.Helper()
	skipUnlessELF(t)
	p, err := get()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// skipUnlessELF skips the test where the go command builds executables
// in another format.
func skipUnlessELF(t testing.TB) {
	t.Helper()
	switch runtime.GOOS {
	case "darwin", "ios", "windows", "plan9", "aix", "js", "wasip1":
		t.Skipf("executables on %s are not ELF", runtime.GOOS)
	}
}
