package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/pproftest"
)

// TestLeakyServer runs the whole program for three seconds and checks that
// it wrote a series of profiles in which the buffer pool's leak is there,
// and belongs to the leaky tenant alone: what -tagfocus=tenant=globex and
// -tagfocus=heap=bufpool show.
func TestLeakyServer(t *testing.T) {
	cfg := config{
		duration: 3 * time.Second,
		interval: time.Second,
		out:      t.TempDir(),
		// A rate below the demo's, so that the few leaked chunks of a
		// short run are sampled almost surely (p = 0.87 for 32 KiB).
		rate:        16 << 10,
		catalogSize: 2000,
	}
	var log bytes.Buffer
	res, err := run(context.Background(), cfg, &log)
	if err != nil {
		t.Fatal(err)
	}
	if log.Len() > 0 {
		t.Errorf("profiler logged:\n%s", log.Bytes())
	}
	var out bytes.Buffer
	res.print(&out, cfg)
	t.Logf("output:\n%s", out.Bytes())
	// The commands are printed as the README has users run them: leakhunt
	// installed, pprof through the go command.
	for _, line := range strings.Split(out.String(), "\n") {
		if c, ok := strings.CutPrefix(line, "  "); ok && strings.Contains(c, ".pb.gz") &&
			!strings.HasPrefix(c, "leakhunt ") && !strings.HasPrefix(c, "go tool pprof ") {
			t.Errorf("printed command %q is neither leakhunt nor go tool pprof", c)
		}
	}

	// A profile a second and the final one from Stop.
	if len(res.files) < 3 {
		t.Fatalf("wrote %d profiles, want at least 3: %q", len(res.files), res.files)
	}
	leaked := res.rejected[leakyTenant]["bad checksum"]
	if leaked == 0 || res.chunksInUse != leaked {
		t.Fatalf("%d chunks lent out after the load, %d uploads of %s rejected for their checksum: want the same, not 0",
			res.chunksInUse, leaked, leakyTenant)
	}

	// The final profile is taken with no request in flight, so every
	// chunk it holds is a leaked one.
	p := pproftest.Parse(t, res.files[len(res.files)-1])
	inuse := slices.IndexFunc(p.SampleType, func(v *profile.ValueType) bool { return v.Type == "inuse_space" })
	if inuse < 0 {
		t.Fatal("no inuse_space in the profile")
	}
	byTenant := map[string]int64{}
	for _, s := range p.Sample {
		if s.Value[inuse] == 0 || !hasLabel(s.Label, "heap", "bufpool") {
			continue
		}
		byTenant[firstLabel(s.Label, "tenant")] += s.Value[inuse]
		if got := firstLabel(s.Label, "endpoint"); got != "/upload" {
			t.Errorf("bufpool sample with endpoint=%q, want /upload", got)
		}
		if u := s.NumUnit["age"]; len(s.NumLabel["age"]) != 1 || len(u) != 1 || u[0] != "seconds" {
			t.Errorf("bufpool sample without an age in seconds: %v %v", s.NumLabel, s.NumUnit)
		}
		if !stackHas(s, ".(*server).upload") {
			t.Errorf("bufpool sample not allocated under (*server).upload")
		}
	}
	if byTenant[leakyTenant] == 0 {
		t.Errorf("no bufpool memory in use under tenant=%s; in use by tenant: %v", leakyTenant, byTenant)
	}
	for tenant, n := range byTenant {
		if tenant != leakyTenant {
			t.Errorf("tenant=%s holds %d bufpool bytes after the load; only %s leaks", tenant, n, leakyTenant)
		}
	}
	// The estimate is unbiased, each leaked chunk sampled with p = 0.87:
	// with ten or more its error is far from a factor of two.
	want := int64(leaked * chunkSize)
	if got := byTenant[leakyTenant]; leaked >= 10 && (got < want/2 || got > want*2) {
		t.Errorf("tenant=%s holds %d bufpool bytes in the profile, %d leaked", leakyTenant, got, want)
	}
}

// hasLabel reports whether labels has key=value, as -tagfocus=key=value
// would match it (but exactly, not as a regular expression).
func hasLabel(labels map[string][]string, key, value string) bool {
	return slices.Contains(labels[key], value)
}

func firstLabel(labels map[string][]string, key string) string {
	if v := labels[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// stackHas reports whether a function whose name ends in suffix is on the
// sample's stack, inlined or not. A suffix, since in a test binary the
// functions of package main are named by its import path.
func stackHas(s *profile.Sample, suffix string) bool {
	for _, l := range s.Location {
		for _, line := range l.Line {
			if line.Function != nil && strings.HasSuffix(line.Function.Name, suffix) {
				return true
			}
		}
	}
	return false
}
