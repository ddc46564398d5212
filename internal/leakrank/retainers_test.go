package leakrank

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank/leakranktest"
)

// retainersFixture is a retainers profile of one sample, of the growing
// site of leakranktest.LeakSeries.
var retainersFixture = leakranktest.Retainers{
	Time: leakranktest.Start.Add(10 * time.Minute),
	Samples: []leakranktest.Retained{
		{Heap: "default", Stack: leakranktest.GrowingStack, Chain: []string{"[held by] app.sessions"}, Bytes: 4096},
	},
}

func TestReadRetainers(t *testing.T) {
	path := retainersFixture.Write(t, t.TempDir())
	r, err := ReadRetainers(path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != path || !r.Time.Equal(retainersFixture.Time) {
		t.Errorf("path %s, time %v; want %s, %v", r.Path, r.Time, path, retainersFixture.Time)
	}
	h, err := r.Match("heap", leakranktest.LeakSeries(2)[1].Build())
	if err != nil {
		t.Fatal(err)
	}
	got, ok := h.Of(Site{"default", leakranktest.GrowingStack})
	if want := "4096: app.sessions=4096 [[held by] app.sessions];"; !ok || describeRetention(got) != want {
		t.Errorf("growing site: %v %s, want true %s", ok, describeRetention(got), want)
	}
}

// A heap profile is not a retainers profile, nor is a profile without the
// values to weigh chains with.
func TestNewRetainersRefuses(t *testing.T) {
	heap := leakranktest.LeakSeries(1)[0].Build()
	_, err := NewRetainers("heap.pb.gz", heap)
	if want := `heap.pb.gz: not a retainers profile: none of its comments starts with "leakhunt retainers profile:", as WriteRetainers writes them`; err == nil || err.Error() != want {
		t.Errorf("heap profile: error %v, want %s", err, want)
	}
	cpu := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Comments:   []string{leakranktest.RetainersComment},
	}
	_, err = NewRetainers("cpu.pb.gz", cpu)
	if want := "cpu.pb.gz: not a retainers profile: it has no inuse_space/bytes values (its sample types: cpu/nanoseconds)"; err == nil || err.Error() != want {
		t.Errorf("cpu profile: error %v, want %s", err, want)
	}
}

// A retainers profile has inuse values, but is no snapshot: NewSnapshot,
// Tally and Match refuse it, whether its mark is the first comment or
// not, as in a merge.
func TestRetainersNotSnapshot(t *testing.T) {
	merged := retainersFixture.Build()
	merged.Comments = append([]string{"leakhunt heap profile: sampling rate 524288 bytes"}, merged.Comments...)
	for name, p := range map[string]*profile.Profile{"r.pb.gz": retainersFixture.Build(), "merged.pb.gz": merged} {
		want := name + ": a retainers profile (what keeps objects alive), not a heap snapshot"
		_, err := NewSnapshot(name, p)
		if !errors.Is(err, ErrRetainersProfile) || err.Error() != want {
			t.Errorf("NewSnapshot: %v, want %s", err, want)
		}
		var tally Tally
		if err := tally.Read(name, p); !errors.Is(err, ErrRetainersProfile) {
			t.Errorf("Tally.Read: %v, want %s", err, want)
		}
		r, err := NewRetainers("r.pb.gz", retainersFixture.Build())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Match(name, p); !errors.Is(err, ErrRetainersProfile) {
			t.Errorf("Match: %v, want %s", err, want)
		}
	}
}

// In a directory, files named as retainers profiles are skipped, whichever
// pattern picks the profiles; one under another name is refused by name.
// RetainersFiles lists the skipped ones.
func TestLoadSkipsRetainers(t *testing.T) {
	heapNames := t.TempDir()
	paths := leakranktest.WriteSeries(t, heapNames, leakranktest.LeakSeries(3))
	newer := retainersFixture
	newer.Time = newer.Time.Add(time.Hour)
	retainers := []string{retainersFixture.Write(t, heapNames), newer.Write(t, heapNames)}

	otherNames := t.TempDir()
	for i, p := range leakranktest.LeakSeries(2) {
		if err := os.WriteFile(filepath.Join(otherNames, "snap-"+string(rune('a'+i))+".pb.gz"), p.Encode(t), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	older := retainersFixture
	older.Time = older.Time.Add(-time.Hour)
	retainers = append(retainers, older.Write(t, otherNames))

	for dir, want := range map[string]int{heapNames: len(paths), otherNames: 2} {
		snaps, err := Load([]string{dir}, ReadOptions{})
		if err != nil || len(snaps) != want {
			t.Errorf("%s: %d snapshots, error %v; want %d", dir, len(snaps), err, want)
		}
	}
	got := RetainersFiles([]string{heapNames, otherNames, paths[0]})
	slices.SortFunc(retainers, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	if !slices.Equal(got, retainers) {
		t.Errorf("RetainersFiles: %q, want %q", got, retainers)
	}

	onlyRetainers := t.TempDir()
	retainersFixture.Write(t, onlyRetainers)
	_, err := Load([]string{onlyRetainers}, ReadOptions{})
	if want := "no heap profiles in " + onlyRetainers + ", only retainers profiles (retainers-*.pb.gz), which are no snapshots"; err == nil || err.Error() != want {
		t.Errorf("only retainers: %v, want %s", err, want)
	}

	renamed := filepath.Join(otherNames, "saved.pb.gz")
	if err := os.WriteFile(renamed, retainersFixture.Encode(t), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load([]string{otherNames}, ReadOptions{})
	if !errors.Is(err, ErrRetainersProfile) || err.Error() != renamed+": a retainers profile (what keeps objects alive), not a heap snapshot" {
		t.Errorf("renamed: %v", err)
	}
}
