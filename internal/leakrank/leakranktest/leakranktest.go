// Package leakranktest builds heap profiles shaped like the profiler's, for
// tests of the code that reads them: the four heap sample types, a heap
// label, a bytes label, an age label in seconds when given, and a main
// mapping with a build ID; and retainers profiles of what holds their
// objects. It also builds the files a reader must survive: a gzip bomb,
// and on Unix a named pipe.
package leakranktest

import (
	"bytes"
	"compress/gzip"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// Sample is the in-use memory of one site.
type Sample struct {
	Heap  string
	Stack []string // function names, leaf first
	InUse int64    // bytes, in objects of ObjectSize
	Age   int64    // age label in seconds; negative for none
	// Alloc is the bytes allocated in all, freed or not: the alloc_space
	// value, InUse if less.
	Alloc int64
}

// ObjectSize is the size of every object in a built profile.
const ObjectSize = 1024

// Profile describes a profile to build.
type Profile struct {
	Time     time.Time
	Duration time.Duration // time since the profiler started
	File     string        // the main mapping's file
	BuildID  string
	Samples  []Sample
	Comments []string // after the profiler's first comment
}

// Build returns p as a pprof profile.
func (p Profile) Build() *profile.Profile {
	main := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x800000, File: p.File, BuildID: p.BuildID,
		HasFunctions: true, HasFilenames: true, HasLineNumbers: true}
	prof := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "alloc_objects", Unit: "count"},
			{Type: "alloc_space", Unit: "bytes"},
			{Type: "inuse_objects", Unit: "count"},
			{Type: "inuse_space", Unit: "bytes"},
		},
		DefaultSampleType: "inuse_space",
		PeriodType:        &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:            512 * 1024,
		TimeNanos:         p.Time.UnixNano(),
		DurationNanos:     p.Duration.Nanoseconds(),
		Mapping:           []*profile.Mapping{main},
		Comments:          append([]string{"leakhunt heap profile: sampling rate 524288 bytes, stack depth 128"}, p.Comments...),
	}
	locs := make(map[string]*profile.Location)
	location := func(name string) *profile.Location {
		if l, ok := locs[name]; ok {
			return l
		}
		f := &profile.Function{ID: uint64(len(prof.Function) + 1), Name: name, SystemName: name, Filename: "app.go"}
		prof.Function = append(prof.Function, f)
		l := &profile.Location{ID: uint64(len(prof.Location) + 1), Mapping: main,
			Address: 0x401000 + uint64(len(prof.Location))*16, Line: []profile.Line{{Function: f, Line: Line(name)}}}
		prof.Location = append(prof.Location, l)
		locs[name] = l
		return l
	}
	for _, s := range p.Samples {
		alloc := max(s.Alloc, s.InUse)
		out := &profile.Sample{
			Value:    []int64{alloc / ObjectSize, alloc, s.InUse / ObjectSize, s.InUse},
			Label:    map[string][]string{"heap": {s.Heap}},
			NumLabel: map[string][]int64{"bytes": {ObjectSize}},
			NumUnit:  map[string][]string{"bytes": {"bytes"}},
		}
		if s.Age >= 0 {
			out.NumLabel["age"] = []int64{s.Age}
			out.NumUnit["age"] = []string{"seconds"}
		}
		for _, name := range s.Stack {
			out.Location = append(out.Location, location(name))
		}
		prof.Sample = append(prof.Sample, out)
	}
	return prof
}

// Line returns the line of app.go at which built profiles place the
// function named name: one of its own, as in a program, where two
// functions are never at one line, and the same in every profile built.
func Line(name string) int64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return 1 + int64(h.Sum32()%1_000_000)
}

// ageSteps are the ages the profiler records, in seconds: an object's age
// is rounded down to one of them.
var ageSteps = []int64{0, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
	21600, 43200, 86400, 172800, 345600, 604800, 1209600, 2592000}

// AgeStep returns the age label the profiler writes for an object secs
// seconds old.
func AgeStep(secs int64) int64 {
	step := ageSteps[0]
	for _, s := range ageSteps {
		if s <= secs {
			step = s
		}
	}
	return step
}

// Encode returns p built and encoded as the profiler writes it, gzipped.
func (p Profile) Encode(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Build().Write(&buf); err != nil {
		t.Fatalf("leakranktest: encoding profile: %v", err)
	}
	return buf.Bytes()
}

// Write writes p into dir under the profiler's file name for its time and
// returns the path.
func (p Profile) Write(t testing.TB, dir string) string {
	t.Helper()
	name := "heap-" + p.Time.UTC().Format("20060102T150405.000000000") + "Z-4242.pb.gz"
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, p.Encode(t), 0o600); err != nil {
		t.Fatalf("leakranktest: %v", err)
	}
	return path
}

// The stacks of the sites in LeakSeries, leaf first.
var (
	GrowingStack   = []string{"app.(*SessionStore).Add", "app.handleLogin", "main.main"}
	FlatStack      = []string{"app.loadCache", "app.init", "main.main"}
	ChurningStack  = []string{"app.newBuffer", "app.handleRequest", "main.main"}
	ShrinkingStack = []string{"app.(*Queue).push", "app.startup", "main.main"}
)

// Start is the time of the first profile of LeakSeries.
var Start = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)

// LeakSeries returns n profiles of one run taken a minute apart, each with
// the four kinds of site a ranking must tell apart:
//   - growing: small, 64 KiB more at every snapshot (a leak), objects aging;
//   - flat: 256 MiB loaded at start and held, far the largest;
//   - churning: about 4 MiB in flight, up and down at random;
//   - shrinking: 32 MiB drained by 1 MiB a snapshot.
//
// The noise is seeded, so the series is the same on every call.
func LeakSeries(n int) []Profile {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]Profile, n)
	for i := range out {
		at := Start.Add(time.Duration(i) * time.Minute)
		out[i] = Profile{
			Time:     at,
			Duration: time.Duration(i+1) * time.Minute,
			File:     "/usr/local/bin/app",
			BuildID:  "b00c1d",
			Samples: []Sample{
				{Heap: "default", Stack: FlatStack, InUse: 256 << 20, Age: AgeStep(int64(i+1) * 60)},
				{Heap: "default", Stack: ChurningStack, InUse: int64(2048+rng.IntN(4096)) * ObjectSize, Age: 0},
				{Heap: "go", Stack: ShrinkingStack, InUse: int64(max(32-i, 1)) << 20, Age: -1},
			},
		}
		// The growing site adds one sample per snapshot, so older ones are
		// older objects, as in a real leak.
		for j := range i + 1 {
			out[i].Samples = append(out[i].Samples, Sample{
				Heap: "default", Stack: GrowingStack, InUse: 64 << 10, Age: AgeStep(int64(i-j) * 60),
			})
		}
	}
	return out
}

// WriteSeries writes ps into dir and returns their paths.
func WriteSeries(t testing.TB, dir string, ps []Profile) []string {
	t.Helper()
	paths := make([]string, len(ps))
	for i, p := range ps {
		paths[i] = p.Write(t, dir)
	}
	return paths
}

// GzipBomb returns a gzip stream that decompresses to at least size zero
// bytes, whole MiB of them, yet is about a thousand times smaller: what a
// profile file that claims memory only once decompressed looks like. It is
// one small gzip member repeated, which gzip readers, Go's included, read
// as one stream, so building it takes neither the time to compress size
// bytes nor the memory to hold them.
func GzipBomb(t testing.TB, size int64) []byte {
	t.Helper()
	const member = 1 << 20 // zero bytes in each gzip member
	var one bytes.Buffer
	zw, err := gzip.NewWriterLevel(&one, gzip.BestCompression)
	if err != nil {
		t.Fatalf("leakranktest: %v", err)
	}
	if _, err := zw.Write(make([]byte, member)); err != nil {
		t.Fatalf("leakranktest: %v", err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("leakranktest: %v", err)
	}
	return bytes.Repeat(one.Bytes(), int((size+member-1)/member))
}
