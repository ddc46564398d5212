package pyroscope

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Pyroscope rejects a whole profile that has more samples than its limit
// (16000 by default) or is larger than its limit uncompressed (4 MiB). A
// profile past either is pushed with its largest samples, by in-use bytes
// plus bytes allocated since the last push, kept as they are and the rest
// folded, for each value of the heap label, into one sample whose stack is
// the single frame foldedFrame (or, with more heaps among them than room,
// into one sample with no heap label). Every total, of each sample type
// and each heap, stays exact; what is lost is where the smallest samples'
// memory was. When the samples fit but the bytes do not, fewer are kept, each
// step keeping about as many as the last one's size says should fit, less
// a tenth, until it fits.

// foldedFrame is the function name of the single frame of folded samples.
// It names no count, so that Pyroscope, which adds up profiles, shows one
// node for the folded samples of a whole time range.
const foldedFrame = "[smaller samples folded]"

// An encoding is a profile ready to push, and what fitting it took.
type encoding struct {
	data    []byte // gzipped
	size    int    // uncompressed
	sites   int    // with a value to push
	samples int    // in the profile: kept and folded
	folded  int    // sites folded
}

// encodeSites returns the profile to push: in's sample types and period,
// the push values of sites, at timeNanos covering durationNanos, folded to
// at most maxSamples samples and maxBytes bytes uncompressed.
func encodeSites(in *profile.Profile, sites []*site, timeNanos, durationNanos int64, maxSamples, maxBytes int) (encoding, error) {
	ranked := rankSites(in.SampleType, sites)
	folded := syntheticLocation(in, foldedFrame)
	enc := encoding{sites: len(sites)}
	limit := maxSamples
	var raw bytes.Buffer
	for {
		samples, nFolded := fold(ranked, limit, folded)
		raw.Reset()
		if err := assemble(in, samples, timeNanos, durationNanos).WriteUncompressed(&raw); err != nil {
			return encoding{}, fmt.Errorf("encoding profile: %w", err)
		}
		if raw.Len() <= maxBytes {
			enc.size, enc.samples, enc.folded = raw.Len(), len(samples), nFolded
			break
		}
		n := len(samples)
		next := min(n-1, int(float64(n)*float64(maxBytes)/float64(raw.Len())*0.9))
		if next < 1 {
			return encoding{}, fmt.Errorf("profile of %d sample(s) is %d bytes uncompressed, over MaxProfileBytes (%d)", n, raw.Len(), maxBytes)
		}
		limit = next
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return encoding{}, fmt.Errorf("compressing profile: %w", err)
	}
	if err := zw.Close(); err != nil {
		return encoding{}, fmt.Errorf("compressing profile: %w", err)
	}
	enc.data = gz.Bytes()
	return enc, nil
}

// rankSites returns the sites largest first: by in-use bytes plus
// allocated bytes pushed, or, in a profile without those types, by the sum
// of its values. Ties go by key, so that the order does not depend on the
// input's.
func rankSites(types []*profile.ValueType, sites []*site) []*site {
	var idx []int
	for i, t := range types {
		if t.Type == "inuse_space" || t.Type == "alloc_space" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		for i := range types {
			idx = append(idx, i)
		}
	}
	type ranked struct {
		s      *site
		weight int64
	}
	r := make([]ranked, len(sites))
	for i, s := range sites {
		r[i].s = s
		for _, j := range idx {
			r[i].weight = saturatingAdd(r[i].weight, s.push[j])
		}
	}
	slices.SortFunc(r, func(a, b ranked) int {
		if c := cmp.Compare(b.weight, a.weight); c != 0 {
			return c
		}
		return strings.Compare(a.s.key, b.s.key)
	})
	out := make([]*site, len(r))
	for i := range r {
		out[i] = r[i].s
	}
	return out
}

// fold returns the samples to push for at most limit of them: the largest
// sites of ranked as they are, sorted by key, then one folded sample per
// heap label value of the rest, sorted by heap, and how many sites were
// folded. When the rest holds too many heaps for that, it folds into one
// sample with no heap label after the limit-1 largest.
func fold(ranked []*site, limit int, frame *profile.Location) ([]*site, int) {
	byKey := func(a, b *site) int { return strings.Compare(a.key, b.key) }
	if len(ranked) <= limit {
		kept := slices.Clone(ranked)
		slices.SortFunc(kept, byKey)
		return kept, 0
	}
	// Keep k sites and fold the rest into one sample per heap among them:
	// fewer kept can only mean as many heaps or more, so k only falls.
	k := limit - 1
	for {
		h := countHeaps(ranked[k:])
		if k+h <= limit {
			break
		}
		k = limit - h
		if k < 0 {
			k = limit - 1
			kept := slices.Clone(ranked[:k])
			slices.SortFunc(kept, byKey)
			return append(kept, foldInto(ranked[k:], frame, "")), len(ranked) - k
		}
	}

	kept := slices.Clone(ranked[:k])
	slices.SortFunc(kept, byKey)
	rest := slices.Clone(ranked[k:])
	slices.SortStableFunc(rest, func(a, b *site) int { return strings.Compare(a.heap, b.heap) })
	for i := 0; i < len(rest); {
		j := i + 1
		for j < len(rest) && rest[j].heap == rest[i].heap {
			j++
		}
		kept = append(kept, foldInto(rest[i:j], frame, rest[i].heap))
		i = j
	}
	return kept, len(ranked) - k
}

func countHeaps(sites []*site) int {
	seen := make(map[string]bool)
	for _, s := range sites {
		seen[s.heap] = true
	}
	return len(seen)
}

// foldInto returns one sample holding the push values of sites, at frame,
// labelled heap=heap unless heap is empty.
func foldInto(sites []*site, frame *profile.Location, heap string) *site {
	f := &site{stack: []*profile.Location{frame}, heap: heap, push: make([]int64, len(sites[0].push))}
	if heap != "" {
		f.labels = map[string][]string{labelHeap: {heap}}
	}
	for _, s := range sites {
		for i, v := range s.push {
			f.push[i] = saturatingAdd(f.push[i], v)
		}
	}
	return f
}

// syntheticLocation returns a Location, with an id free in p, whose one
// line is a function named name.
func syntheticLocation(p *profile.Profile, name string) *profile.Location {
	var locID, fnID uint64
	for _, l := range p.Location {
		locID = max(locID, l.ID)
	}
	for _, f := range p.Function {
		fnID = max(fnID, f.ID)
	}
	fn := &profile.Function{ID: fnID + 1, Name: name, SystemName: name}
	return &profile.Location{ID: locID + 1, Line: []profile.Line{{Function: fn}}}
}

// assemble returns a profile of samples with in's sample types and period,
// holding the locations, functions and mappings the samples use, sorted by
// id.
func assemble(in *profile.Profile, samples []*site, timeNanos, durationNanos int64) *profile.Profile {
	out := &profile.Profile{
		SampleType:        in.SampleType,
		DefaultSampleType: in.DefaultSampleType,
		PeriodType:        in.PeriodType,
		Period:            in.Period,
		TimeNanos:         timeNanos,
		DurationNanos:     durationNanos,
		Sample:            make([]*profile.Sample, 0, len(samples)),
	}
	locations := make(map[*profile.Location]bool)
	functions := make(map[*profile.Function]bool)
	mappings := make(map[*profile.Mapping]bool)
	for _, s := range samples {
		out.Sample = append(out.Sample, &profile.Sample{Location: s.stack, Value: s.push, Label: s.labels})
		for _, l := range s.stack {
			if locations[l] {
				continue
			}
			locations[l] = true
			out.Location = append(out.Location, l)
			if m := l.Mapping; m != nil && !mappings[m] {
				mappings[m] = true
				out.Mapping = append(out.Mapping, m)
			}
			for _, line := range l.Line {
				if f := line.Function; f != nil && !functions[f] {
					functions[f] = true
					out.Function = append(out.Function, f)
				}
			}
		}
	}
	slices.SortFunc(out.Location, func(a, b *profile.Location) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(out.Function, func(a, b *profile.Function) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(out.Mapping, func(a, b *profile.Mapping) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
