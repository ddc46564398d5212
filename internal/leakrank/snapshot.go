package leakrank

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// A Site is where memory was allocated: a heap and a stack.
//
// Sites are split by heap, not merged across heaps, for two reasons. Memory
// reported through the hook with Track is also sampled by the Go runtime,
// so the same stack appears under heap=go and under the hook's heap, and
// adding the two would count it twice. And a leak of C memory and a leak of
// Go memory at the same stack are fixed in different places.
type Site struct {
	Heap  string   // the heap label: "go", a hook heap's name, "" if absent
	Stack []string // function names, leaf first, inlined calls expanded
}

// Function returns the leaf function's name, "" for an empty stack.
func (s Site) Function() string {
	if len(s.Stack) == 0 {
		return ""
	}
	return s.Stack[0]
}

// Usage is the memory a site holds in one snapshot.
type Usage struct {
	Site  Site
	InUse int64 // bytes, math.MaxInt64 for more
	// ByAge holds the in-use bytes of the samples that carry an age label,
	// by age in seconds (rounded down by the profiler), math.MaxInt64 for
	// more; nil when none do, as for the Go heap.
	ByAge map[int64]int64
}

// Snapshot is one heap profile reduced to the in-use memory of its sites.
type Snapshot struct {
	Path     string
	Time     time.Time     // when the profile was taken (its time_nanos)
	Duration time.Duration // time since the profiler started, 0 if unknown
	// GoHeapTime is the time the figures of the Go heap's sites (heap
	// "go") describe, a GC cycle or two before Time, from the profile's
	// comment (see GoHeapTimeComment); zero if it has none, and then they
	// are taken to be as of Time.
	GoHeapTime time.Time
	Program    Program
	InUse      int64             // in-use bytes of all sites, math.MaxInt64 for more
	Sites      map[string]*Usage // by site key (heap and stack)
}

// figuresTime returns the time the in-use figures of heap's sites in s
// describe (see FiguresTime).
func (s *Snapshot) figuresTime(heap string) time.Time { return FiguresTime(heap, s.Time, s.GoHeapTime) }

// FiguresTime returns the time that the in-use figures of heap's sites
// describe in a profile taken at t whose Go heap figures are as of goHeap
// (see GoHeapTime): goHeap for the Go heap, if known (not zero), else t.
func FiguresTime(heap string, t, goHeap time.Time) time.Time {
	if heap == GoHeap && !goHeap.IsZero() {
		return goHeap
	}
	return t
}

// NewSnapshot reduces p, the heap profile read from the file name, to a
// Snapshot. It fails if p has no inuse_space/bytes values; if p is a
// delta profile: one that DeltaProfile marked, or one with negative
// values, which only a delta has; and if p is a retainers profile, with an
// error that wraps ErrRetainersProfile. In-use totals that do not fit an
// int64 are math.MaxInt64.
func NewSnapshot(name string, p *profile.Profile) (*Snapshot, error) {
	return newSnapshot(name, p, nil)
}

// newSnapshot is NewSnapshot with the sites interned in cache, if not nil.
func newSnapshot(name string, p *profile.Profile, cache *siteCache) (*Snapshot, error) {
	inuse, err := inuseIndex(name, p)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{
		Path:     name,
		Time:     time.Unix(0, p.TimeNanos).UTC(),
		Duration: time.Duration(p.DurationNanos),
		Program:  mainProgram(p),
		Sites:    make(map[string]*Usage),
	}
	s.GoHeapTime, _ = GoHeapTime(p)
	var key strings.Builder
	for _, sample := range p.Sample {
		v, err := sampleInUse(name, sample, inuse)
		if err != nil {
			return nil, err
		}
		if v == 0 {
			continue // freed memory, or alloc_* values only
		}
		key.Reset()
		writeSiteKey(&key, sample)
		k := key.String()
		u := s.Sites[k]
		if u == nil {
			u = &Usage{}
			k, u.Site = cache.intern(k, sample)
			s.Sites[k] = u
		}
		// The profiler writes a size beyond an int64 as math.MaxInt64, and
		// two of them would wrap around to a negative total.
		u.InUse = saturatingAdd(u.InUse, v)
		s.InUse = saturatingAdd(s.InUse, v)
		if age, ok := sampleAge(sample); ok {
			if u.ByAge == nil {
				u.ByAge = make(map[int64]int64)
			}
			u.ByAge[age] = saturatingAdd(u.ByAge[age], v)
		}
	}
	return s, nil
}

// inuseIndex returns the index of the inuse_space/bytes values of p, read
// from the file name, and fails if it has none, or is a delta profile, as
// DeltaProfile marks them, or a retainers profile: it has inuse values
// too, but of what chains of references hold, by stacks that go on
// through them.
func inuseIndex(name string, p *profile.Profile) (int, error) {
	if isRetainers(p) {
		return 0, fmt.Errorf("%s: %w", name, ErrRetainersProfile)
	}
	inuse := -1
	for i, t := range p.SampleType {
		if t.Type == "inuse_space" && t.Unit == "bytes" {
			inuse = i
		}
	}
	if inuse < 0 {
		return 0, fmt.Errorf("%s: not a heap profile: it has no inuse_space/bytes values (its sample types: %s)",
			name, sampleTypes(p))
	}
	if isDelta(p) {
		return 0, fmt.Errorf("%s: a delta profile (the difference of two profiles, as leakhunt diff -o writes), not a snapshot", name)
	}
	return inuse, nil
}

// sampleInUse returns the in-use bytes of s, its value at index inuse,
// and fails if they are negative, which only a delta profile has.
func sampleInUse(name string, s *profile.Sample, inuse int) (int64, error) {
	v := s.Value[inuse]
	if v < 0 {
		return 0, fmt.Errorf("%s: negative in-use bytes: a delta profile is not a snapshot", name)
	}
	return v, nil
}

// deltaPrefix starts the comment by which DeltaProfile marks a delta
// profile.
const deltaPrefix = "leakhunt delta profile: "

// isDelta reports whether p has the comment that marks a delta profile.
func isDelta(p *profile.Profile) bool {
	return slices.ContainsFunc(p.Comments, func(c string) bool { return strings.HasPrefix(c, deltaPrefix) })
}

func sampleTypes(p *profile.Profile) string {
	if len(p.SampleType) == 0 {
		return "none"
	}
	names := make([]string, len(p.SampleType))
	for i, t := range p.SampleType {
		names[i] = t.Type + "/" + t.Unit
	}
	return strings.Join(names, ", ")
}

// writeSiteKey writes the key of sample's site: the heap label and the
// function names, each ended by a NUL, which no Go symbol contains.
func writeSiteKey(b *strings.Builder, s *profile.Sample) {
	b.WriteString(heapLabel(s))
	b.WriteByte(0)
	for _, l := range s.Location {
		for _, name := range frameNames(l) {
			b.WriteString(name)
			b.WriteByte(0)
		}
	}
}

// NewSite returns the site of a sample.
func NewSite(s *profile.Sample) Site {
	site := Site{Heap: heapLabel(s), Stack: []string{}}
	for _, l := range s.Location {
		site.Stack = append(site.Stack, frameNames(l)...)
	}
	return site
}

func heapLabel(s *profile.Sample) string {
	if v := s.Label["heap"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// frameNames returns the function names of a location, innermost inlined
// call first, as pprof prints them; an unsymbolized location is named by
// its address, as pprof does.
func frameNames(l *profile.Location) []string {
	if len(l.Line) == 0 {
		return []string{unsymbolized(l)}
	}
	names := make([]string, len(l.Line))
	for i, line := range l.Line {
		names[i] = line.Function.Name // ParseData checked it is not nil
	}
	return names
}

// unsymbolized returns the name of a location without lines: its address,
// as pprof prints it.
func unsymbolized(l *profile.Location) string { return fmt.Sprintf("%#x", l.Address) }

// sampleAge returns a sample's age label in seconds. Other units are not
// converted: the profiler writes seconds, and pprof's own -tagfocus on a
// numeric label only matches the unit it was written in.
func sampleAge(s *profile.Sample) (int64, bool) {
	v, u := s.NumLabel["age"], s.NumUnit["age"]
	if len(v) == 0 || len(u) == 0 || u[0] != "seconds" {
		return 0, false
	}
	return v[0], true
}

// siteCache interns sites across the snapshots of a series, so that a
// hundred profiles of the same program hold each stack once. A nil
// *siteCache interns nothing. It is safe for concurrent use.
type siteCache struct {
	mu    sync.Mutex
	sites map[string]interned
}

type interned struct {
	key  string
	site Site
}

func newSiteCache() *siteCache { return &siteCache{sites: make(map[string]interned)} }

// intern returns the shared copies of key and of the site of s, whose key
// it is.
func (c *siteCache) intern(key string, s *profile.Sample) (string, Site) {
	if c == nil {
		return key, NewSite(s)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.sites[key]
	if !ok {
		in = interned{key, NewSite(s)}
		c.sites[key] = in
	}
	return in.key, in.site
}
