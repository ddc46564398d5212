package pyroscope

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// A profile's samples are merged into sites, one per stack and set of
// string labels, before anything is pushed. Numeric labels are dropped:
// Pyroscope drops them anyway, and the profiler's age label moves a live
// object from one sample to another as it ages, so a site keyed by it
// would seem to lose allocations and gain them elsewhere. A site's key
// must name the same site in the next profile, whose location ids may all
// differ: stacks are keyed by what each location is, not by its id.

// A site is the merged samples of one stack and one set of string labels.
type site struct {
	key    string // the stack's location numbers and the labels: see siteSet.add
	stack  []*profile.Location
	labels map[string][]string // as pushed: renamed where needed, valid UTF-8
	heap   string              // the heap label's value, "" for none
	values []int64             // summed over the samples, by sample type
	push   []int64             // the values pushed: see baseline.delta
}

// A keyer numbers each distinct location, by address and lines (function
// names and line numbers), with a number that stays the same for the life
// of the Exporter, so that a site's key is short and the same in every
// profile. It holds one entry per distinct location ever seen, a number
// bounded by the program's code. It is not safe for concurrent use.
type keyer struct {
	locations map[string]uint32
	buf       []byte
}

func newKeyer() *keyer {
	return &keyer{locations: make(map[string]uint32)}
}

// location returns the number of l.
func (k *keyer) location(l *profile.Location) uint32 {
	b := binary.AppendUvarint(k.buf[:0], l.Address)
	for _, line := range l.Line {
		name := ""
		if line.Function != nil {
			name = line.Function.Name
		}
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendVarint(b, line.Line)
	}
	k.buf = b
	if n, ok := k.locations[string(b)]; ok {
		return n
	}
	n := uint32(len(k.locations) + 1)
	k.locations[string(b)] = n
	return n
}

// siteSet merges the samples of one profile into sites.
type siteSet struct {
	keys     *keyer
	reserved map[string]bool   // series label names, which sample labels must not take
	renamed  map[string]string // sample label renames made, old name to new
	numbers  map[*profile.Location]uint32
	byKey    map[string]*site
	sites    []*site
	buf      []byte
}

// mergeSamples returns the sites of p's samples, sorted by key, and the
// sample labels renamed because a series label takes their name.
func mergeSamples(p *profile.Profile, keys *keyer, reserved map[string]bool) ([]*site, map[string]string) {
	s := &siteSet{
		keys:     keys,
		reserved: reserved,
		renamed:  make(map[string]string),
		numbers:  make(map[*profile.Location]uint32, len(p.Location)),
		byKey:    make(map[string]*site, len(p.Sample)),
	}
	for _, sample := range p.Sample {
		s.add(sample)
	}
	slices.SortFunc(s.sites, func(a, b *site) int { return strings.Compare(a.key, b.key) })
	return s.sites, s.renamed
}

func (s *siteSet) add(sample *profile.Sample) {
	b := binary.AppendUvarint(s.buf[:0], uint64(len(sample.Location)))
	for _, l := range sample.Location {
		n, ok := s.numbers[l]
		if !ok {
			n = s.keys.location(l)
			s.numbers[l] = n
		}
		b = binary.AppendUvarint(b, uint64(n))
	}
	labels := s.labels(sample.Label)
	for _, k := range sortedLabelKeys(labels) {
		b = appendKeyString(b, k)
		b = binary.AppendUvarint(b, uint64(len(labels[k])))
		for _, v := range labels[k] {
			b = appendKeyString(b, v)
		}
	}
	s.buf = b

	if st, ok := s.byKey[string(b)]; ok {
		for i, v := range sample.Value {
			st.values[i] = saturatingAdd(st.values[i], v)
		}
		return
	}
	st := &site{
		key:    string(b),
		stack:  sample.Location,
		labels: labels,
		values: slices.Clone(sample.Value),
	}
	if h := labels[labelHeap]; len(h) > 0 {
		st.heap = h[0]
	}
	s.byKey[st.key] = st
	s.sites = append(s.sites, st)
}

// labels returns a sample's string labels as they are pushed: a name a
// series label takes is renamed (see sampleLabelName), unless the sample
// has a label of the new name already, which then stays alone; names and
// values are made valid UTF-8, which Pyroscope requires of every string.
func (s *siteSet) labels(in map[string][]string) map[string][]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string][]string, len(in))
	var moved []string
	for k, vs := range in {
		if s.reserved[k] {
			moved = append(moved, k)
			continue
		}
		out[strings.ToValidUTF8(k, "\uFFFD")] = validValues(vs)
	}
	slices.Sort(moved) // two may take one new name: the same one wins each time
	for _, k := range moved {
		name := sampleLabelName(k, s.reserved)
		s.renamed[k] = name
		if _, taken := out[name]; !taken {
			out[name] = validValues(in[k])
		}
	}
	return out
}

func validValues(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.ToValidUTF8(v, "\uFFFD")
	}
	return out
}

func sortedLabelKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendKeyString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// saturatingAdd returns a+b held within the int64 range rather than
// wrapping: the profiler's values saturate at MaxInt64, and two such must
// not add up to a negative one.
func saturatingAdd(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return 1<<63 - 1
	case a < 0 && b < 0 && s >= 0:
		return -1 << 63
	}
	return s
}
