package profiler

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"unsafe"

	"github.com/google/pprof/profile"
)

// The Go heap source. The runtime samples every Go allocation with the same
// Poisson process over bytes as the hook (with a countdown per P, and mean
// runtime.MemProfileRate), so reading its profile gives Go heap samples
// with no hook call at all, and the two sources share one set of sample
// types and units.
//
// The runtime offers two public views of it. runtime.MemProfile gives raw
// records, PCs and counts, which go through the same symbol cache and
// location tables as the hook's stacks, so that a steady-state flush
// symbolizes nothing new; but it keeps 32 frames of each stack. The heap
// profile runtime/pprof writes keeps the runtime's full depth (128 frames
// by default), but it symbolizes every stack on every call and must be
// parsed back. So the raw records are used unless one of them fills all 32
// frames and may have been cut; then the whole snapshot is taken from the
// runtime/pprof profile instead, so that no stack is cut and none counted
// twice. Both are scaled the way runtime/pprof scales (scaleHeapSample in
// runtime/pprof/protomem.go): by the rate in force now, from each
// record's average object size.
//
// In-use figures lag: the runtime publishes a sampled allocation as in use
// only once the GC cycle that follows it completes, and a free once it has
// been swept, so the heap profile describes the heap as of the last
// completed GC (see the memRecord comment in runtime/mprof.go). Forcing a GC
// before each read would make the figures current at the cost of a full
// collection per flush, so it is an option (WithGCBeforeSnapshot), not the
// default.

// goHeapSnapshot is one read of the runtime's heap profile: its raw
// records, or, when a record may have been cut at 32 frames, the profile
// runtime/pprof writes, parsed.
type goHeapSnapshot struct {
	records []runtime.MemProfileRecord
	rate    int64 // runtime.MemProfileRate when read
	parsed  *profile.Profile
}

// readGoHeap reads the runtime's current heap profile.
func readGoHeap(gcFirst bool) (*goHeapSnapshot, error) {
	if gcFirst {
		runtime.GC()
	}
	h := &goHeapSnapshot{rate: int64(runtime.MemProfileRate)}
	n, _ := runtime.MemProfile(nil, true)
	for {
		// Room for records added between the two calls.
		h.records = make([]runtime.MemProfileRecord, n+n/8+16)
		var ok bool
		if n, ok = runtime.MemProfile(h.records, true); ok {
			h.records = h.records[:n]
			break
		}
	}
	for i := range h.records {
		if stk := &h.records[i].Stack0; stk[len(stk)-1] != 0 {
			h.records = nil
			var err error
			h.parsed, err = readParsedGoHeap()
			return h, err
		}
	}
	return h, nil
}

// readParsedGoHeap returns the heap profile runtime/pprof writes, parsed.
func readParsedGoHeap() (*profile.Profile, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		return nil, fmt.Errorf("reading the Go heap profile: %w", err)
	}
	prof, err := profile.Parse(&buf)
	if err != nil {
		return nil, fmt.Errorf("parsing the Go heap profile: %w", err)
	}
	return prof, nil
}

// scaleHeapSample turns count sampled objects holding size bytes into
// estimates of all objects and bytes, as runtime/pprof does for its heap
// profile: by the probability that an object of their average size was
// sampled at rate.
func scaleHeapSample(count, size, rate int64) (int64, int64) {
	if count == 0 || size == 0 {
		return 0, 0
	}
	if rate <= 1 {
		return count, size
	}
	p := -math.Expm1(-float64(size) / float64(count) / float64(rate))
	return int64(float64(count) / p), int64(float64(size) / p)
}

// appendGoHeap appends the samples of a Go heap snapshot, labelled heap=go.
func (e *encoder) appendGoHeap(b []byte, h *goHeapSnapshot) ([]byte, error) {
	if h.parsed != nil {
		return e.appendParsedGoHeap(b, h.parsed)
	}
	goHeap := e.str(goHeapName)
	for i := range h.records {
		r := &h.records[i]
		allocObjects, allocBytes := scaleHeapSample(r.AllocObjects, r.AllocBytes, h.rate)
		inuseObjects, inuseBytes := scaleHeapSample(r.InUseObjects(), r.InUseBytes(), h.rate)
		if allocObjects == 0 && inuseObjects == 0 {
			continue
		}
		stk := e.goStack(r.Stack())
		b = appendMessage(b, fieldSample, func(b []byte) []byte {
			b = appendBytes(b, fieldSampleLocationID, stk)
			b = e.appendValues(b, allocObjects, allocBytes, inuseObjects, inuseBytes)
			b = appendStrLabel(b, e.heapKey, goHeap)
			if r.AllocObjects > 0 {
				b = appendNumLabel(b, e.bytesKey, r.AllocBytes/r.AllocObjects, e.bytesKey)
			}
			return b
		})
	}
	return b, nil
}

// goStack returns the packed location ids of a Go heap record's stack,
// cached by its PCs. Leading frames inside the runtime (the allocator
// itself) are left out, as runtime/pprof does; a stack that passes
// through the profiler's own code becomes its single synthetic frame.
func (e *encoder) goStack(pcs []uintptr) []byte {
	key := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(pcs))), len(pcs)*int(unsafe.Sizeof(uintptr(0))))
	if ids, ok := e.goStacks[string(key)]; ok {
		return ids
	}
	trimmed := pcs
	for i, pc := range pcs {
		if f := runtime.FuncForPC(pc); f != nil && (strings.HasPrefix(f.Name(), "runtime.") || strings.HasPrefix(f.Name(), "internal/runtime/")) {
			continue
		}
		trimmed = pcs[i:]
		break
	}
	ids, _ := e.appendLocations(nil, trimmed)
	for rest := ids; len(rest) > 0; {
		id, n := binary.Uvarint(rest)
		rest = rest[n:]
		if e.ownLoc[id] {
			ids = appendVarint(ids[:0], e.synthetic(ownFrame))
			break
		}
	}
	e.goStacks[string(key)] = ids
	return ids
}

// appendParsedGoHeap appends the samples of src, the heap profile
// runtime/pprof writes, labelled heap=go. Values are already scaled by the
// runtime; they are reordered to this profile's sample types by name, so a
// change in the runtime's order cannot mix them up.
func (e *encoder) appendParsedGoHeap(b []byte, src *profile.Profile) ([]byte, error) {
	var index [len(sampleTypes)]int
	for i, want := range sampleTypes {
		index[i] = -1
		for j, have := range src.SampleType {
			if have.Type == want[0] && have.Unit == want[1] {
				index[i] = j
			}
		}
		if index[i] < 0 {
			return b, fmt.Errorf("the Go heap profile has no %s/%s values", want[0], want[1])
		}
	}
	var stk []byte
	goHeap := e.str(goHeapName)
	for _, s := range src.Sample {
		v := [len(sampleTypes)]int64{}
		for i, j := range index {
			v[i] = s.Value[j]
		}
		if v == ([len(sampleTypes)]int64{}) {
			continue
		}
		// The profiler's own memory goes under one synthetic frame: with
		// its own stack it would lead through the hook into the caller's
		// code and look like the caller's allocation. It stays in the
		// profile, since it is real.
		stk = stk[:0]
		own := false
		for _, l := range s.Location {
			id := e.foreignLocation(l)
			own = own || e.ownLoc[id]
			stk = appendVarint(stk, id)
		}
		if own {
			stk = appendVarint(stk[:0], e.synthetic(ownFrame))
		}
		b = appendMessage(b, fieldSample, func(b []byte) []byte {
			b = appendBytes(b, fieldSampleLocationID, stk)
			b = e.appendValues(b, v[0], v[1], v[2], v[3])
			b = appendStrLabel(b, e.heapKey, goHeap)
			if size, ok := s.NumLabel["bytes"]; ok && len(size) == 1 {
				b = appendNumLabel(b, e.bytesKey, size[0], e.bytesKey)
			}
			return b
		})
	}
	return b, nil
}

// ownFrame stands for the profiler's own Go memory (its tables, stacks,
// the profiles it builds) in place of the stack that allocated it.
const ownFrame = "[leakhunt profiler]"

// ownPrefixes are the function name prefixes of this module's library code.
var ownPrefixes = func() []string {
	pkg := reflect.TypeFor[Profiler]().PkgPath()
	return []string{pkg + ".", pkg + "/internal/"}
}()

// isOwnFunction reports whether a function belongs to this module's
// library code.
func isOwnFunction(name string) bool {
	for _, prefix := range ownPrefixes {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// foreignLocation returns the id of the Location for l, a Location of
// another profile already symbolized; a Location at the same address that
// a hook stack produced is shared.
func (e *encoder) foreignLocation(l *profile.Location) uint64 {
	k := locKey{l.Address, len(l.Line)}
	if id, ok := e.locs[k]; ok {
		return id
	}
	e.ids = e.ids[:0]
	var lines []int64
	for _, line := range l.Line {
		if line.Function == nil {
			continue
		}
		e.ids = append(e.ids, e.function(line.Function.Name, line.Function.Filename))
		lines = append(lines, line.Line)
	}
	return e.addLocation(k, e.ids, lines)
}
