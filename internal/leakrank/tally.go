package leakrank

import (
	"hash/maphash"
	"slices"
	"time"

	"github.com/google/pprof/profile"
)

// A SiteID names a site by a 64-bit hash of its heap label and function
// names, the names that make its key in a Snapshot: what a program that
// watches its own profiles keeps in place of the stack, which can run to
// kilobytes. Sites with the same key have the same ID; two of n sites with
// different keys share one with a probability of about n²/2⁶⁵, three in a
// hundred million for a million sites.
type SiteID uint64

// A Tally is one heap profile reduced to the in-use bytes of each site, by
// SiteID: the figures of a Snapshot without the keys, stacks and ages it
// keeps, cheap enough to take of every profile a program writes. Read
// reuses the Tally's map and buffers. IDs are the same for the same site
// over all the profiles one Tally reads, and differ from one Tally to
// another, whose hashes are seeded apart. The zero Tally is ready to use;
// a Tally is not safe for concurrent use.
type Tally struct {
	Time       time.Time // when the profile was taken (its time_nanos)
	GoHeapTime time.Time // see Snapshot.GoHeapTime
	InUse      int64     // in-use bytes of all sites, math.MaxInt64 for more
	Sites      map[SiteID]SiteInUse

	seed   maphash.Seed
	seeded bool
	// names holds the hashes of the function names of the profile's
	// locations (see frameNames), and spans where each location's are, by
	// location ID: samples share their locations, so each name is hashed
	// once a profile rather than once a sample.
	names   []uint64
	spans   []nameSpan
	scratch []uint64 // the name hashes of a location not indexed
}

// nameSpan is where a location's name hashes are in Tally.names; the zero
// nameSpan is that of a location not indexed, since every location has a
// name.
type nameSpan struct{ start, end int32 }

// SiteInUse is the memory a site holds in a Tally.
type SiteInUse struct {
	InUse int64 // bytes, math.MaxInt64 for more
	// Sample is the index in the profile's Sample of the site's first
	// sample, from which NameSite or NewSite names it: the Tally keeps no
	// pointer into the profile.
	Sample int
}

// Read reduces p, the heap profile read from the file name, to t, in
// place of the profile it held. It fails as NewSnapshot does, and then t
// holds no sites.
func (t *Tally) Read(name string, p *profile.Profile) error {
	if !t.seeded {
		t.seed, t.seeded = maphash.MakeSeed(), true
	}
	if t.Sites == nil {
		// Sized for a site a sample, at most, so that it never grows.
		t.Sites = make(map[SiteID]SiteInUse, len(p.Sample))
	}
	clear(t.Sites)
	t.Time = time.Unix(0, p.TimeNanos).UTC()
	t.GoHeapTime, _ = GoHeapTime(p)
	t.InUse = 0
	inuse, err := inuseIndex(name, p)
	if err != nil {
		return err
	}
	t.indexLocations(p)
	for i, sample := range p.Sample {
		v, err := sampleInUse(name, sample, inuse)
		if err != nil {
			clear(t.Sites)
			t.InUse = 0
			return err
		}
		if v == 0 {
			continue // freed memory, or alloc_* values only
		}
		id := t.siteID(sample)
		s, ok := t.Sites[id]
		if !ok {
			s.Sample = i
		}
		s.InUse = saturatingAdd(s.InUse, v)
		t.Sites[id] = s
		t.InUse = saturatingAdd(t.InUse, v)
	}
	return nil
}

// Release lets go of the sites and the buffers t keeps for the next Read,
// which are in proportion to the latest profile, and keeps its seed: a
// program that keeps a Tally between profiles, to keep its IDs, holds
// little more than the struct itself.
func (t *Tally) Release() {
	t.Sites, t.names, t.spans, t.scratch = nil, nil, nil, nil
}

// FiguresTime returns the time the in-use figures of heap's sites in t
// describe (see FiguresTime).
func (t *Tally) FiguresTime(heap string) time.Time { return FiguresTime(heap, t.Time, t.GoHeapTime) }

// indexLocations hashes the function names of p's locations, for siteID.
// Location IDs are small and dense in the profiles pprof writes; in a
// profile whose are not, locations are left out of the index, and each
// sample hashes their names itself.
func (t *Tally) indexLocations(p *profile.Profile) {
	t.names, t.spans = t.names[:0], t.spans[:0]
	var maxID uint64
	for _, l := range p.Location {
		maxID = max(maxID, l.ID)
	}
	if maxID > uint64(4*len(p.Location)+64) {
		return
	}
	t.spans = slices.Grow(t.spans, int(maxID)+1)[:maxID+1]
	clear(t.spans)
	for _, l := range p.Location {
		start := len(t.names)
		t.names = t.appendNameHashes(t.names, l)
		t.spans[l.ID] = nameSpan{int32(start), int32(len(t.names))}
	}
}

// appendNameHashes appends the hashes of the function names of l.
func (t *Tally) appendNameHashes(dst []uint64, l *profile.Location) []uint64 {
	if len(l.Line) == 0 {
		return append(dst, maphash.String(t.seed, unsymbolized(l)))
	}
	for _, line := range l.Line {
		dst = append(dst, maphash.String(t.seed, line.Function.Name)) // ParseData checked it is not nil
	}
	return dst
}

// siteID returns the SiteID of s's site: its heap label's hash, then each
// of its function names' hashes in turn, folded in by mix. The sequence of
// names makes the ID, however the locations split it, as it makes the key
// of a Snapshot.
func (t *Tally) siteID(s *profile.Sample) SiteID {
	x := mix(maphash.String(t.seed, heapLabel(s)))
	for _, l := range s.Location {
		var names []uint64
		if l.ID < uint64(len(t.spans)) && t.spans[l.ID] != (nameSpan{}) {
			sp := t.spans[l.ID]
			names = t.names[sp.start:sp.end]
		} else {
			t.scratch = t.appendNameHashes(t.scratch[:0], l)
			names = t.scratch
		}
		for _, h := range names {
			x = mix(x ^ h)
		}
	}
	return SiteID(x)
}

// mix is the finalizer of MurmurHash3's 64-bit hash: a bijection of the
// 64-bit integers in which every bit of the input flips each bit of the
// output with a probability close to one half. Folding each name's hash
// in with it keeps the order of the names in the result.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// A SiteName names a site without its stack: what a program that watches
// its own profiles shows of a site it watches.
type SiteName struct {
	Heap     string // the heap label, as Site.Heap
	Function string // the leaf function, as Site.Function
	Own      bool   // the profiler's own memory, as Site.ProfilerOwn
}

// NameSite returns the name of the site of s, as NewSite(s) would give
// it, without building its stack.
func NameSite(s *profile.Sample) SiteName {
	n := SiteName{Heap: heapLabel(s)}
	frames := 0
	for _, l := range s.Location {
		if frames == 0 {
			if len(l.Line) == 0 {
				n.Function = unsymbolized(l)
			} else {
				n.Function = l.Line[0].Function.Name
			}
		}
		frames += max(len(l.Line), 1)
		if frames > 1 {
			break
		}
	}
	n.Own = frames == 1 && n.Function == OwnFrame
	return n
}
