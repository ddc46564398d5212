package profiler

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestMemoryReadingFraction(t *testing.T) {
	tests := []struct {
		name      string
		m         memoryReading
		wantRatio float64
		wantLimit string
		wantOK    bool
	}{
		{"no limit", memoryReading{goTotal: 100, cgroupUsage: 200}, 0, "", false},
		{"cgroup only", memoryReading{cgroupUsage: 70, cgroupLimit: 100}, 0.7, limitCgroup, true},
		{"GOMEMLIMIT only", memoryReading{goTotal: 85, goLimit: 100}, 0.85, limitGOMEMLIMIT, true},
		{"cgroup higher", memoryReading{cgroupUsage: 90, cgroupLimit: 100, goTotal: 50, goLimit: 100}, 0.9, limitCgroup, true},
		{"GOMEMLIMIT higher", memoryReading{cgroupUsage: 50, cgroupLimit: 100, goTotal: 95, goLimit: 100}, 0.95, limitGOMEMLIMIT, true},
		{"tie goes to the cgroup", memoryReading{cgroupUsage: 80, cgroupLimit: 100, goTotal: 40, goLimit: 50}, 0.8, limitCgroup, true},
		{"over the limit", memoryReading{cgroupUsage: 150, cgroupLimit: 100}, 1.5, limitCgroup, true},
		{"usage unknown", memoryReading{cgroupLimit: 100}, 0, limitCgroup, true},
		{"huge figures", memoryReading{goTotal: 3 << 60, goLimit: 4 << 60}, 0.75, limitGOMEMLIMIT, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ratio, limit, ok := tt.m.fraction()
			if ratio != tt.wantRatio || limit != tt.wantLimit || ok != tt.wantOK {
				t.Errorf("fraction() = %v, %q, %v; want %v, %q, %v", ratio, limit, ok, tt.wantRatio, tt.wantLimit, tt.wantOK)
			}
		})
	}
}

// The Go figures are runtime/metrics' own. The runtime's figures move with
// every allocation, so the reader's read is bracketed by two direct reads
// and checked only when those agree.
func TestMemoryReadGoFigures(t *testing.T) {
	r := newMemoryReader()
	defer r.close()
	samples := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	values := func() [3]uint64 {
		metrics.Read(samples)
		return [3]uint64{samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64()}
	}
	for range 1000 {
		before := values()
		m := r.read()
		after := values()
		if before != after {
			continue
		}
		if want := before[0] - before[1]; m.goTotal != want {
			t.Errorf("goTotal = %d, want total %d - released %d = %d", m.goTotal, before[0], before[1], want)
		}
		if m.heapLive != before[2] {
			t.Errorf("heapLive = %d, want %d", m.heapLive, before[2])
		}
		return
	}
	t.Fatal("runtime/metrics never read the same twice in a row")
}

func TestMemoryReadGoLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	r := newMemoryReader()
	defer r.close()
	const limit = 3 << 40
	debug.SetMemoryLimit(limit)
	if got := r.read().goLimit; got != limit {
		t.Errorf("with GOMEMLIMIT %d, goLimit = %d", int64(limit), got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if got := r.read().goLimit; got != 0 {
		t.Errorf("with no GOMEMLIMIT, goLimit = %d, want 0", got)
	}
}

// A reading of this process on this machine, whatever its cgroup.
func TestMemoryReadReal(t *testing.T) {
	runtime.GC() // so that there is a live heap to report
	r := newMemoryReader()
	defer r.close()
	m := r.read()
	t.Logf("reading: %+v", m)
	t.Logf("cgroup: %v", errOrKnown(r.cgroupErr()))
	if ratio, limit, ok := m.fraction(); ok {
		t.Logf("fraction: %.4f of the %s limit", ratio, limit)
	}
	if m.heapLive == 0 || m.goTotal <= m.heapLive {
		t.Errorf("want goTotal > heapLive > 0, got goTotal %d, heapLive %d", m.goTotal, m.heapLive)
	}
	if err := r.cgroupErr(); err != nil && (m.cgroupUsage != 0 || m.cgroupLimit != 0) {
		t.Errorf("cgroup figures %d, %d with cgroupErr %v", m.cgroupUsage, m.cgroupLimit, err)
	}
	if runtime.GOOS != "linux" && r.cgroupErr() == nil {
		t.Errorf("cgroupErr() = nil on %s", runtime.GOOS)
	}
	if r.cgroupErr() == nil && m.cgroupUsage == 0 {
		t.Errorf("cgroup known, but its usage is 0")
	}

	r.close()
	if m := r.read(); m.cgroupUsage != 0 || m.cgroupLimit != 0 || r.cgroupErr() == nil {
		t.Errorf("after close: %+v, cgroupErr %v", m, r.cgroupErr())
	}
}

func errOrKnown(err error) any {
	if err == nil {
		return "known"
	}
	return err
}

// read runs on every poll of a profiler that stays on: it must allocate
// nothing.
func TestMemoryReadAllocs(t *testing.T) {
	r := newMemoryReader()
	defer r.close()
	if n := testing.AllocsPerRun(100, func() { r.read() }); n != 0 {
		t.Errorf("read allocates %v times, want 0", n)
	}
}

// The baselines: runtime/metrics alone, the floor of the Go figures, and
// runtime.ReadMemStats, the usual way to read them, which stops the world.
func BenchmarkMemoryRead(b *testing.B) {
	b.Run("reader", func(b *testing.B) {
		r := newMemoryReader()
		defer r.close()
		b.ReportAllocs()
		for b.Loop() {
			r.read()
		}
	})
	b.Run("baseline=metrics.Read", func(b *testing.B) {
		r := newMemoryReader()
		defer r.close()
		b.ReportAllocs()
		for b.Loop() {
			metrics.Read(r.samples[:])
		}
	})
	b.Run("baseline=ReadMemStats", func(b *testing.B) {
		var s runtime.MemStats
		b.ReportAllocs()
		for b.Loop() {
			runtime.ReadMemStats(&s)
		}
	})
}
