package profiler

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"

	"github.com/google/pprof/profile"
)

// The Go heap source. The runtime samples every Go allocation with the same
// Poisson process over bytes as the hook (a per-P countdown, with mean
// runtime.MemProfileRate), so reading its profile gives Go heap samples
// with no hook call at all, and the two sources share one set of sample
// types and units.
//
// The profile is read through runtime/pprof, not runtime.MemProfile:
// MemProfile cuts stacks at 32 frames, while the heap profile runtime/pprof
// writes keeps the runtime's full profiling depth (128 frames by default).
// The cost is that the runtime symbolizes those stacks on every read; our
// symbol cache only serves the hook's samples.
//
// In-use figures lag: the runtime publishes a sampled allocation as in use
// only once the GC cycle that follows it completes, and a free once it has
// been swept, so the heap profile describes the heap as of the last
// completed GC (see the memRecord comment in runtime/mprof.go). Forcing a GC
// before each read would make the figures current at the cost of a full
// collection per flush, so it is an option (WithGCBeforeSnapshot), not the
// default.

// readGoHeap returns the runtime's current heap profile, parsed.
func readGoHeap(gcFirst bool) (*profile.Profile, error) {
	if gcFirst {
		runtime.GC()
	}
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

// appendGoHeap appends the samples of src, a runtime heap profile,
// labelled heap=go. Values are already scaled by the runtime; they are
// reordered to this profile's sample types by name, so a change in the
// runtime's order cannot mix them up.
func (e *encoder) appendGoHeap(b []byte, src *profile.Profile) ([]byte, error) {
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
