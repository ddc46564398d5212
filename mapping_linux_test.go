package profiler

import (
	"bytes"
	"os"
	"runtime/pprof"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank"
)

// Our profiles and runtime/pprof's of the same process must name each
// binary with the same build ID: pprof merges mappings by it (-diff_base,
// -base) and leakhunt diff takes profiles whose build IDs differ for two
// programs. The executable is the case that matters most, and a Go one
// shows the trap: the Go linker's PT_NOTE segment holds only the Go build
// ID note, and the GNU note, which runtime/pprof records, lies outside it.
func TestMappingBuildIDMatchesRuntimePprof(t *testing.T) {
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	theirs, err := profile.Parse(&buf)
	if err != nil {
		t.Fatalf("parsing runtime/pprof's heap profile: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	want := make(map[string]string) // file -> runtime/pprof's build ID
	for _, m := range theirs.Mapping {
		if m.File != "" {
			want[m.File] = m.BuildID
		}
	}
	if _, ok := want[exe]; !ok {
		t.Fatalf("runtime/pprof's profile has no mapping of %s: %v", exe, theirs.Mapping)
	}
	if want[exe] == "" {
		t.Errorf("runtime/pprof's mapping of %s has no build ID", exe)
	}

	sawExe := false
	for _, m := range processMappings() {
		sawExe = sawExe || m.File == exe
		id, ok := want[m.File]
		if !ok {
			t.Errorf("mapping %s [%#x, %#x) is not in runtime/pprof's profile", m.File, m.Start, m.Limit)
			continue
		}
		if m.BuildID != id {
			t.Errorf("mapping %s: build ID %q, runtime/pprof's %q", m.File, m.BuildID, id)
		}
	}
	if !sawExe {
		t.Errorf("no mapping of the executable %s", exe)
	}
}

// What the build IDs are for: leakhunt takes a runtime/pprof heap profile
// and ours, of the same process, for profiles of one program.
func TestSameProgramAsRuntimePprof(t *testing.T) {
	p := startTestProfiler(t, WithSamplingRate(4096))
	var ours, theirs bytes.Buffer
	if err := p.WriteProfile(&ours); err != nil {
		t.Fatal(err)
	}
	if err := pprof.Lookup("heap").WriteTo(&theirs, 0); err != nil {
		t.Fatal(err)
	}
	var snaps []*leakrank.Snapshot
	for name, data := range map[string][]byte{"ours": ours.Bytes(), "runtime/pprof": theirs.Bytes()} {
		prof, err := profile.ParseData(data)
		if err != nil {
			t.Fatal(err)
		}
		s, err := leakrank.NewSnapshot(name, prof)
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, s)
	}
	if err := leakrank.CheckProgram(snaps); err != nil {
		t.Errorf("leakhunt refuses to compare the two: %v", err)
	}
}
