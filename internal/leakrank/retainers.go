package leakrank

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// A retainers profile, as the profiler's WriteRetainers writes it, is a
// pprof profile of what keeps sampled live objects alive: each sample's
// stack is an object's allocation stack, leaf first, continued by the
// chain of references that holds it, one synthetic frame per hop (a
// function with no file, its name in brackets), the root last:
//
//	main.newSession                  allocation stack
//	main.handleLogin
//	[704 B main.Session] +8          the object that points to it
//	[map] map[string]*main.Session   a map's internals
//	[held by] main.sessions          the root
//
// It has inuse values like a heap profile, so it must not be taken for a
// snapshot: NewSnapshot refuses it, by the comment it opens with.

// Names in a retainers profile, which the profiler writes with them.
const (
	// RetainersPrefix starts the comment that marks a retainers profile.
	RetainersPrefix = "leakhunt retainers profile:"
	// HeldByPrefix starts the name of the root frame of a chain, the
	// outermost frame of a retainers profile's stack, so that
	// `go tool pprof -peek '\[held by\]'` or -focus finds every root.
	HeldByPrefix = "[held by] "
)

// ErrRetainersProfile is what the error for a retainers profile given
// where a heap snapshot is needed wraps.
var ErrRetainersProfile = errors.New("a retainers profile (what keeps objects alive), not a heap snapshot")

// isRetainers reports whether p has the comment that marks a retainers
// profile. Any comment, not only the first: profile.Merge keeps the
// comments of every profile merged, and a merge with a retainers profile
// is no snapshot either.
func isRetainers(p *profile.Profile) bool {
	return slices.ContainsFunc(p.Comments, func(c string) bool { return strings.HasPrefix(c, RetainersPrefix) })
}

// Retainers is a retainers profile reduced to the bytes each chain holds
// of the objects of each allocation stack. Match only reads it: it is safe
// for concurrent use.
type Retainers struct {
	Path string
	Time time.Time // when the heap was dumped (its time_nanos), zero if unknown
	// stacks are the allocation stacks with their chains, by the key of
	// all of their frames in their heap (see writeFramesKey).
	stacks map[string]*retained
	heaps  map[string]bool // the heaps of its samples (see heapClass)
}

// retained is the objects of one heap and allocation stack in a
// retainers profile, by the chain that holds them.
type retained struct {
	heap   string // see heapClass
	frames []frame
	own    bool // some frame is the profiler's own code
	chains map[string]*heldChain
}

// heldChain is the bytes one chain holds.
type heldChain struct {
	frames []string // root first, as the profile names them
	bytes  int64
}

// frame is one logical frame of an allocation stack: an inlined call is a
// frame of its own.
type frame struct {
	name string
	file string
	line int64
}

// ReadRetainers reads the retainers profile at path, as ReadProfile reads
// a profile, and reduces it with NewRetainers.
func ReadRetainers(path string, opts ReadOptions) (*Retainers, error) {
	p, err := ReadProfile(path, opts)
	if err != nil {
		return nil, err
	}
	return NewRetainers(path, p)
}

// NewRetainers reduces p, the retainers profile read from the file name.
// It fails if p is not one: a profile without the comment that marks
// retainers profiles, a heap profile above all, or one without
// inuse_space/bytes values. Samples whose stack does not end with a root
// frame (see HeldByPrefix) are left out; byte counts beyond an int64 stop
// at math.MaxInt64.
func NewRetainers(name string, p *profile.Profile) (*Retainers, error) {
	if !isRetainers(p) {
		return nil, fmt.Errorf("%s: not a retainers profile: none of its comments starts with %q, as WriteRetainers writes them", name, RetainersPrefix)
	}
	inuse := -1
	for i, t := range p.SampleType {
		if t.Type == "inuse_space" && t.Unit == "bytes" {
			inuse = i
		}
	}
	if inuse < 0 {
		return nil, fmt.Errorf("%s: not a retainers profile: it has no inuse_space/bytes values (its sample types: %s)", name, sampleTypes(p))
	}
	r := &Retainers{Path: name, stacks: make(map[string]*retained), heaps: make(map[string]bool)}
	if p.TimeNanos != 0 {
		r.Time = time.Unix(0, p.TimeNanos).UTC()
	}
	var key strings.Builder
	for _, s := range p.Sample {
		v := s.Value[inuse]
		if v <= 0 {
			continue
		}
		split := slices.IndexFunc(s.Location, isChainFrame)
		if split < 0 {
			continue // no chain: not a sample WriteRetainers writes
		}
		chain := chainNames(s.Location[split:])
		if !strings.HasPrefix(chain[0], HeldByPrefix) {
			continue
		}
		heap := heapClass(heapLabel(s))
		r.heaps[heap] = true
		// The allocation frames are named as the heap dump names them:
		// by the function that was compiled, an inlined call by the
		// function it was inlined into (internal/heapdump's doc), but
		// with the inlined code's file and line.
		frames := trimRuntime(logicalFrames(s.Location[:split], false))
		key.Reset()
		writeFramesKey(&key, heap, frames, allOfFrames)
		k := key.String()
		rs := r.stacks[k]
		if rs == nil {
			rs = &retained{heap: heap, frames: frames, own: slices.ContainsFunc(frames, isOwnFrame), chains: make(map[string]*heldChain)}
			r.stacks[k] = rs
		}
		ck := strings.Join(chain, "\x00")
		c := rs.chains[ck]
		if c == nil {
			c = &heldChain{frames: chain}
			rs.chains[ck] = c
		}
		c.bytes = saturatingAdd(c.bytes, v)
	}
	return r, nil
}

// isChainFrame reports whether l is a frame of a chain, as WriteRetainers
// writes them: a function with no file whose name is in brackets.
func isChainFrame(l *profile.Location) bool {
	return len(l.Line) > 0 && l.Line[0].Function.Filename == "" && strings.HasPrefix(l.Line[0].Function.Name, "[")
}

// chainNames returns the names of the chain frames locs, root first.
func chainNames(locs []*profile.Location) []string {
	names := make([]string, 0, len(locs))
	for i := len(locs) - 1; i >= 0; i-- {
		names = append(names, frameNames(locs[i])...)
	}
	return names
}

// logicalFrames returns the logical frames of locs, innermost first, each
// named by its own function if logical is set, else by the function of
// its location's outermost line, the one compiled (as a heap dump names
// it). An unsymbolized location is one frame named by its address.
func logicalFrames(locs []*profile.Location, logical bool) []frame {
	var out []frame
	for _, l := range locs {
		if len(l.Line) == 0 {
			out = append(out, frame{name: unsymbolized(l)})
			continue
		}
		compiled := l.Line[len(l.Line)-1].Function.Name
		for _, line := range l.Line {
			f := frame{name: compiled, file: line.Function.Filename, line: line.Line}
			if logical {
				f.name = line.Function.Name
			}
			out = append(out, f)
		}
	}
	return out
}

// trimRuntime returns frames without the runtime's at the leaf, unless
// they are all the runtime's, and without runtime.goexit at the root:
// what runtime/pprof leaves out of a heap profile (protomem.go) and the
// profiler out of a retainers profile, here for profiles written by a Go
// that left out less.
func trimRuntime(frames []frame) []frame {
	for i, f := range frames {
		if !IsRuntimeFunction(f.name) {
			frames = frames[i:]
			break
		}
	}
	if n := len(frames); n > 0 && frames[n-1].name == "runtime.goexit" {
		frames = frames[:n-1]
	}
	return frames
}

// IsRuntimeFunction reports whether name is a function of the Go runtime,
// whose frames heap profiles leave out at the leaf of allocation stacks.
func IsRuntimeFunction(name string) bool {
	return strings.HasPrefix(name, "runtime.") || strings.HasPrefix(name, "internal/runtime/")
}

// ownPrefixes are the function name prefixes of the profiler's library
// code, whose Go memory its heap profiles show under OwnFrame: those of
// ownPrefixes in writer.go, in the module's root, which names a stack the
// profiler's if any of its frames is.
var ownPrefixes = []string{"github.com/leakhunt/profiler.", "github.com/leakhunt/profiler/internal/"}

func isOwnFrame(f frame) bool {
	for _, p := range ownPrefixes {
		if strings.HasPrefix(f.name, p) {
			return true
		}
	}
	return false
}

// heapClass returns the heap a heap label stands for: no label is the Go
// heap, as in runtime/pprof's profiles and in retainers profiles written
// before the profiler labelled their samples.
func heapClass(label string) string {
	if label == "" {
		return GoHeap
	}
	return label
}

// What a key of frames is made of (see writeFramesKey).
type framesKey int

const (
	namesOfFrames framesKey = iota // the frames' names
	// linesOfFrames is the frames' files and lines, and the names of those
	// whose line is unknown: a heap dump and pprof may name one frame
	// differently (see the comment in holders.go), but its code is at
	// one place.
	linesOfFrames
	allOfFrames // names, files and lines
)

// writeFramesKey writes the key of frames in heap, each part ended by a
// NUL, which no name or file name contains.
func writeFramesKey(b *strings.Builder, heap string, frames []frame, of framesKey) {
	b.WriteString(heap)
	b.WriteByte(0)
	for _, f := range frames {
		if of != linesOfFrames || f.line <= 0 {
			b.WriteString(f.name)
			b.WriteByte(0)
		}
		if of != namesOfFrames {
			b.WriteString(f.file)
			b.WriteByte(0)
			b.WriteString(strconv.FormatInt(f.line, 10))
			b.WriteByte(0)
		}
	}
}
