package leakranktest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// RetainersComment is the first comment of a retainers profile, as the
// profiler writes it.
const RetainersComment = "leakhunt retainers profile: each stack is a sampled Go object's allocation stack, then the references that keep it alive, the root outermost"

// Retained is the sampled objects of one allocation stack that one chain
// holds, in a retainers profile.
type Retained struct {
	Heap string // the heap label; "" for none, as before the profiler wrote one
	// Stack is the allocation stack, function names, leaf first, each at
	// its Line of app.go as Profile.Build places them, so that a stack of
	// a built heap profile matches.
	Stack []string
	// Chain is the chain's frames from the object outwards, the root
	// ("[held by] ...") last.
	Chain []string
	Bytes int64 // inuse_space, in objects of ObjectSize
}

// Retainers describes a retainers profile to build.
type Retainers struct {
	Time    time.Time
	Samples []Retained
}

// Build returns r as a pprof profile shaped like the profiler's: the two
// inuse sample types, no mapping, allocation frames with a file and a
// line, chain frames without, their functions marked as already demangled
// by an empty system name.
func (r Retainers) Build() *profile.Profile {
	prof := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "inuse_objects", Unit: "count"},
			{Type: "inuse_space", Unit: "bytes"},
		},
		DefaultSampleType: "inuse_space",
		PeriodType:        &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:            512 * 1024,
		TimeNanos:         r.Time.UnixNano(),
		Comments:          []string{RetainersComment},
	}
	type frame struct {
		name  string
		chain bool
	}
	locs := make(map[frame]*profile.Location)
	location := func(f frame) *profile.Location {
		if l, ok := locs[f]; ok {
			return l
		}
		fn := &profile.Function{ID: uint64(len(prof.Function) + 1), Name: f.name}
		line := profile.Line{Function: fn}
		if !f.chain {
			fn.SystemName, fn.Filename, line.Line = f.name, "app.go", Line(f.name)
		}
		prof.Function = append(prof.Function, fn)
		l := &profile.Location{ID: uint64(len(prof.Location) + 1), Line: []profile.Line{line}}
		prof.Location = append(prof.Location, l)
		locs[f] = l
		return l
	}
	for _, s := range r.Samples {
		out := &profile.Sample{
			Value:    []int64{s.Bytes / ObjectSize, s.Bytes},
			NumLabel: map[string][]int64{"bytes": {ObjectSize}},
			NumUnit:  map[string][]string{"bytes": {"bytes"}},
		}
		if s.Heap != "" {
			out.Label = map[string][]string{"heap": {s.Heap}}
		}
		for _, name := range s.Stack {
			out.Location = append(out.Location, location(frame{name, false}))
		}
		for _, name := range s.Chain {
			out.Location = append(out.Location, location(frame{name, true}))
		}
		prof.Sample = append(prof.Sample, out)
	}
	return prof
}

// Encode returns r built and encoded, gzipped.
func (r Retainers) Encode(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Build().Write(&buf); err != nil {
		t.Fatalf("leakranktest: encoding retainers profile: %v", err)
	}
	return buf.Bytes()
}

// Write writes r into dir under the name the profiler would give it, as
// Profile.Write does for a heap profile, and returns the path.
func (r Retainers) Write(t testing.TB, dir string) string {
	t.Helper()
	name := "retainers-" + r.Time.UTC().Format("20060102T150405.000000000") + "Z-4242.pb.gz"
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, r.Encode(t), 0o600); err != nil {
		t.Fatalf("leakranktest: %v", err)
	}
	return path
}
