package profiler

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// A program holding memory in known shapes (testdata/retainchild) takes a
// retainers profile of itself. Each shape's buffers are charged to the
// root that holds them, with exactly the bytes the program holds there:
// the program samples every allocation (MemProfileRate 1), so each
// sampled object weighs 1, and its buffers' sizes are size classes, so
// their slots are their sizes; the tolerance is zero. The garbage cycle is
// left out and counted, and the buffers' contents, a random marker, appear
// in no file and no output. The program is built both as a plain and as
// a position-independent executable, whose globals and types are named
// through its load bias, and without DWARF, whose hops are named by size
// and offset instead of type and field.
func TestRetainersShapes(t *testing.T) {
	for _, build := range []struct {
		name  string
		dwarf bool
		flags []string
	}{
		{"exe", true, nil},
		{"pie", true, []string{"-buildmode=pie"}},
		{"nodwarf", false, []string{"-ldflags=-w"}},
	} {
		t.Run(build.name, func(t *testing.T) {
			t.Parallel()
			testRetainersShapes(t, build.dwarf, build.flags...)
		})
	}
}

func testRetainersShapes(t *testing.T, dwarf bool, buildFlags ...string) {
	dir := t.TempDir()
	bin := buildRetainChild(t, dir, buildFlags...)
	marker := randomMarker(t)
	out := filepath.Join(dir, "retainers.pb.gz")
	stdout, stderr, err := runRetainChild(bin, marker, out)
	if err != nil {
		t.Fatalf("retainchild: %v\nstderr:\n%s", err, stderr)
	}
	var held map[string]int64
	if err := json.Unmarshal(stdout, &held); err != nil {
		t.Fatalf("retainchild said %q: %v", stdout, err)
	}

	prof := pproftest.Parse(t, out)
	if len(prof.SampleType) != 2 || prof.SampleType[0].Type != "inuse_objects" || prof.SampleType[1].Type != "inuse_space" {
		t.Fatalf("sample types %v, want inuse_objects, inuse_space", prof.SampleType)
	}
	comments := strings.Join(prof.Comments, "\n")
	t.Logf("comments:\n%s", comments)

	// Bytes by allocating function and root, and the chains seen.
	type site struct{ leaf, root string }
	bytesAt := make(map[site]int64)
	chains := make(map[string][]string) // leaf -> chain frames, for messages
	for _, s := range prof.Sample {
		leaf := s.Location[0].Line[0].Function.Name
		root := s.Location[len(s.Location)-1].Line[0].Function.Name
		bytesAt[site{leaf, root}] += s.Value[1]
		if !strings.HasPrefix(leaf, "main.") {
			continue
		}
		var frames []string
		for _, l := range s.Location {
			if fn := l.Line[0].Function; fn.Filename == "" {
				frames = append(frames, fn.Name)
			}
		}
		chains[leaf] = frames
	}
	server := struct {
		root  string
		chain []string
	}{"[held by] main.server +16", []string{"[32 B object] +8", "[held by] main.server +16"}}
	registry := []string{"[32 B object] +8", "[map] map[string]*main.entry", "[held by] main.registry"}
	if dwarf {
		// The global's field, and the type and field of the object it
		// points to, its type declared by that field; past a map, its
		// value's type, from the type of the map's groups.
		server.root = "[held by] main.server.cache"
		server.chain = []string{"[main.cache] .data", server.root}
		registry[0] = "[main.entry] .buf"
	}
	for _, c := range []struct {
		shape, leaf, root string
		chain             []string // the frames of the chain, the root last
	}{
		{"registry", "main.registryBuffer", "[held by] main.registry", registry},
		{"worker", "main.workerBuffer", "", nil}, // the root names the goroutine; checked below
		{"iface", "main.ifaceBuffer", "[held by] main.iface +8", []string{"[24 B object] +0", "[held by] main.iface +8"}},
		{"server", "main.serverBuffer", server.root, server.chain},
	} {
		root := c.root
		if root == "" {
			for s := range bytesAt {
				if s.leaf == c.leaf {
					root = s.root
				}
			}
			if !strings.HasPrefix(root, "[held by] main.worker (goroutine ") || !strings.HasSuffix(root, ", chan receive)") {
				t.Errorf("%s: held by %q, want main.worker's frame in a goroutine parked on a chan receive", c.shape, root)
			}
		}
		if got, want := bytesAt[site{c.leaf, root}], held[c.shape]; got != want {
			t.Errorf("%s: %d bytes from %s held by %q, want %d", c.shape, got, c.leaf, root, want)
		}
		for s, n := range bytesAt {
			if s.leaf == c.leaf && s.root != root {
				t.Errorf("%s: %d bytes from %s held by %q as well", c.shape, n, c.leaf, s.root)
			}
		}
		if c.chain != nil && strings.Join(chains[c.leaf], " | ") != strings.Join(c.chain, " | ") {
			t.Errorf("%s: chain %q, want %q", c.shape, chains[c.leaf], c.chain)
		}
	}
	checkTrackedRetainers(t, prof, held["sessions"])
	for s := range bytesAt {
		if s.leaf == "main.cycleNode" {
			t.Errorf("the garbage cycle shows as held by %q", s.root)
		}
	}
	m := regexp.MustCompile(`(\d+) unreachable`).FindStringSubmatch(comments)
	if m == nil {
		t.Fatalf("no count of unreachable objects in the comments")
	}
	if n, _ := strconv.Atoi(m[1]); n < 2 {
		t.Errorf("%d unreachable objects, want at least the cycle's 2", n)
	}
	for _, want := range []string{"leakhunt retainers profile", "pause: the world was stopped", "CPU and", "graph: "} {
		if !strings.Contains(comments, want) {
			t.Errorf("comments lack %q", want)
		}
	}

	// The real pprof reads it and shows each chain after its stack.
	traces := pproftest.Run(t, "-traces", out)
	for _, want := range []string{"main.registryBuffer", "[map] map[string]*main.entry", "[held by] main.registry", "[held by] main.worker (goroutine", server.root} {
		if !strings.Contains(traces, want) {
			t.Errorf("go tool pprof -traces lacks %q", want)
		}
	}

	// No byte of the heap left the process: not in any file of the test's
	// directory, the profile included, nor in anything the program or its
	// helper printed.
	checkNoMarker(t, marker, dir, map[string][]byte{"stdout": stdout, "stderr": stderr})
}

// checkTrackedRetainers checks the sessions the child reported with
// TrackIn: in their heap, at their tracked size (the sampling rate is 1, so
// each weighs 1), allocated by main.newSession and held by the global map;
// the tracked global is counted as outside the heap and the collected one
// not at all.
func checkTrackedRetainers(t *testing.T, prof *profile.Profile, want int64) {
	t.Helper()
	var got int64
	for _, s := range prof.Sample {
		heap := s.Label["heap"]
		if len(heap) != 1 {
			t.Errorf("sample with heap labels %q, want one", heap)
			continue
		}
		if heap[0] != "sessions" {
			if heap[0] != "go" {
				t.Errorf("sample in heap %q, want go or sessions", heap[0])
			}
			continue
		}
		var frames []string
		for _, l := range s.Location {
			frames = append(frames, l.Line[0].Function.Name)
		}
		if want := []string{"main.newSession", "main.main", "runtime.main", "[map] map[string]*main.session", "[held by] main.sessions"}; !slices.Equal(frames, want) {
			t.Errorf("tracked session's stack %q, want %q", frames, want)
		}
		got += s.Value[1]
	}
	if got != want {
		t.Errorf("tracked sessions: %d bytes held by main.sessions, want %d", got, want)
	}
	const counts = "tracked objects: 64 chained to a root; left out: 0 unreachable, 1 outside the heap (package-level variables), 0 collected during the dump"
	if !slices.Contains(prof.Comments, counts) {
		t.Errorf("comments lack %q", counts)
	}
}

// A dump that would bring the cgroup near its memory limit is refused;
// with no cgroup limit, or room under it, it is not.
func TestRetainersMemoryGuard(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		usage, limit, heap uint64
		refused            bool
	}{
		{usage: 900 * mib, limit: 0, heap: 800 * mib},
		{usage: 300 * mib, limit: 1024 * mib, heap: 200 * mib},
		{usage: 700 * mib, limit: 1024 * mib, heap: 200 * mib, refused: true}, // 700+300 > 921
	} {
		err := checkDumpMemory(memoryReading{cgroupUsage: c.usage, cgroupLimit: c.limit}, c.heap)
		if (err != nil) != c.refused {
			t.Errorf("usage %d MiB, limit %d MiB, heap %d MiB: %v, want refused %t", c.usage/mib, c.limit/mib, c.heap/mib, err, c.refused)
		}
		if err != nil && !strings.Contains(err.Error(), "90% of its 1024 MiB limit") {
			t.Errorf("error %q does not give the limit", err)
		}
	}
}

// A binary without a symbol table is refused, with an error that says so.
func TestRetainersStrippedBinary(t *testing.T) {
	dir := t.TempDir()
	bin := buildRetainChild(t, dir, "-ldflags=-s")
	_, stderr, err := runRetainChild(bin, randomMarker(t), filepath.Join(dir, "retainers.pb.gz"))
	if err == nil {
		t.Fatal("a binary without symbols took a retainers profile")
	}
	if !bytes.Contains(stderr, []byte("no symbol table")) {
		t.Errorf("stderr %q, want it to say the binary has no symbol table", stderr)
	}
}

// The pause, and the helper's CPU and memory, at about 50 MB and 500 MB of
// heap, beside the estimate and a full GC of the same heap for scale. It
// runs only with LEAKHUNT_RETAINERS_BENCH=1, in a test binary that keeps
// its symbol table (`go test` strips it):
//
//	go test -c -o /tmp/profiler.test . && LEAKHUNT_RETAINERS_BENCH=1 /tmp/profiler.test -test.run RetainersCost -test.v
func TestRetainersCost(t *testing.T) {
	if os.Getenv("LEAKHUNT_RETAINERS_BENCH") != "1" {
		t.Skip("LEAKHUNT_RETAINERS_BENCH=1 runs it")
	}
	if _, err := exeSymbolsOnce(); err != nil {
		t.Skipf("%v: build the test binary with go test -c", err)
	}
	p := startRetainersProfiler(t)
	for _, mb := range []int{50, 500} {
		heap := fillHeap(mb << 20)
		start := time.Now()
		runtime.GC()
		gc := time.Since(start)
		var buf bytes.Buffer
		start = time.Now()
		if err := p.writeRetainers(context.Background(), &buf, time.Minute); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		prof, err := profile.Parse(&buf)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d MB of heap (runtime.GC %v), WriteRetainers %v in all:\n%s", mb, gc.Round(time.Millisecond), took.Round(time.Millisecond), strings.Join(prof.Comments[1:4], "\n"))
		runtime.KeepAlive(heap)
	}
}

// costNode is an entry of fillHeap's map, as a cache holds them.
type costNode struct {
	id   int
	data []byte
	next *costNode
}

// fillHeap allocates about n bytes in a map of nodes, each with a
// buffer, and returns it.
func fillHeap(n int) map[string]*costNode {
	const each = 64 + 1024 + 48 // node, buffer and map share
	m := make(map[string]*costNode)
	var prev *costNode
	for i := range n / each {
		prev = &costNode{id: i, data: make([]byte, 1024), next: prev}
		m[strconv.Itoa(i)] = prev
	}
	return m
}

// buildRetainChild builds testdata/retainchild into dir.
func buildRetainChild(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "retainchild")
	args := append(append([]string{"build", "-o", bin}, flags...), "./testdata/retainchild")
	if out, err := exec.Command(pproftest.GoTool(), args...).CombinedOutput(); err != nil {
		t.Fatalf("building testdata/retainchild: %v\n%s", err, out)
	}
	return bin
}

// runRetainChild runs it, writing its profile to out, and returns what it
// printed.
func runRetainChild(bin, marker, out string) (stdout, stderr []byte, err error) {
	cmd := exec.Command(bin, out)
	cmd.Env = append(os.Environ(), "RETAINCHILD_MARKER="+marker)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// randomMarker returns a string no file holds unless it was copied from
// the child's heap: it is not in the child's binary, being made here.
func randomMarker(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "leakhunt-marker-" + hex.EncodeToString(b)
}

// checkNoMarker fails the test if marker is in any file under dir or in
// any of outputs.
func checkNoMarker(t *testing.T, marker, dir string, outputs map[string][]byte) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(data, []byte(marker)) {
			t.Errorf("%s holds the heap's marker", path)
		}
		if strings.HasSuffix(path, ".gz") {
			if p, err := profile.ParseData(data); err == nil {
				var raw bytes.Buffer
				if err := p.WriteUncompressed(&raw); err == nil && bytes.Contains(raw.Bytes(), []byte(marker)) {
					t.Errorf("%s holds the heap's marker, compressed", path)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range outputs {
		if bytes.Contains(out, []byte(marker)) {
			t.Errorf("the child's %s holds the heap's marker", name)
		}
	}
	if files < 2 {
		t.Fatalf("checked %d files, want the binary and the profile at least", files)
	}
	t.Logf("marker in none of %d files and %d outputs", files, len(outputs))
}
