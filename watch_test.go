package profiler

import (
	"strings"
	"testing"
	"time"
)

// The watcher fires each limit fraction once on the way up, the highest
// passed for all below, re-arms a fraction 5 points below it, and writes
// peak profiles past the margin, at most one a second.
func TestWatcherTriggers(t *testing.T) {
	const mb = 1 << 20
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	// A cgroup limit of 1000 MB; resident memory follows the usage.
	at := func(usageMB uint64) memoryReading {
		return memoryReading{cgroupUsage: usageMB * mb, cgroupLimit: 1000 * mb, resident: usageMB * mb, goTotal: usageMB * mb / 2}
	}
	w := newWatcher([]float64{0.70, 0.85, 0.95}, 0.2, at(100))
	steps := []struct {
		after time.Duration
		usage uint64
		want  string // tag, or "" for none
	}{
		{0, 110, ""},
		{100 * time.Millisecond, 119, ""},
		{200 * time.Millisecond, 121, "peak"},     // 21 % above 100
		{300 * time.Millisecond, 146, ""},         // 20 % above 121, within a second of it
		{1300 * time.Millisecond, 146, "peak"},    // a second later
		{1400 * time.Millisecond, 690, ""},        // a peak, but within a second of the last
		{1500 * time.Millisecond, 720, "limit70"}, // limits need no gap
		{1600 * time.Millisecond, 960, "limit95"}, // 85 and 95 at once: the highest
		{1700 * time.Millisecond, 990, ""},
		{1800 * time.Millisecond, 810, ""}, // 85 re-arms below 80, not at 81
		{1900 * time.Millisecond, 860, ""},
		{2000 * time.Millisecond, 790, ""},
		{2100 * time.Millisecond, 860, "limit85"},
		{2200 * time.Millisecond, 1100, "limit95"}, // re-armed below 90 at 1.8s
		{3300 * time.Millisecond, 1100, ""},        // 1100 < 1.2 × 1100, the last limit profile's
		{3400 * time.Millisecond, 1320, "peak"},
	}
	for _, s := range steps {
		tr, ok := w.check(at(s.usage), start.Add(s.after))
		got := ""
		if ok {
			got = tr.tag
		}
		if got != s.want {
			t.Errorf("at %v, usage %d MB: trigger %q, want %q", s.after, s.usage, got, s.want)
		}
		if ok && !strings.Contains(tr.reason, "%") {
			t.Errorf("reason %q says no figure", tr.reason)
		}
	}
}

// Without a limit only peaks fire; with the margin 0, nothing; with no
// fraction, no limit profile.
func TestWatcherOff(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	noLimit := newWatcher([]float64{0.7}, 0.2, memoryReading{goTotal: 10 << 20})
	if tr, ok := noLimit.check(memoryReading{goTotal: 60 << 20}, now); ok {
		t.Errorf("no limit, memory up to 60 MiB: %v, want no profile below 64 MiB", tr)
	}
	if tr, ok := noLimit.check(memoryReading{goTotal: 100 << 20}, now); !ok || tr.tag != "peak" {
		t.Errorf("no limit, memory up to 100 MiB: %v %v, want a peak profile", tr, ok)
	}
	noPeak := newWatcher(nil, 0, memoryReading{goTotal: 100})
	if tr, ok := noPeak.check(memoryReading{goTotal: 1e9, goLimit: 1e9}, now); ok {
		t.Errorf("watcher with no fraction and no margin fired %v", tr)
	}
	goLimit := newWatcher([]float64{0.9}, 0, memoryReading{goTotal: 100})
	tr, ok := goLimit.check(memoryReading{goTotal: 95, goLimit: 100}, now)
	if !ok || tr.tag != "limit90" || !strings.Contains(tr.reason, "GOMEMLIMIT") {
		t.Errorf("at 95 %% of GOMEMLIMIT: %v %v, want limit90 naming GOMEMLIMIT", tr, ok)
	}
}
