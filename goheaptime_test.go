package profiler

import (
	"reflect"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// goHeapTimeMarker keeps the objects the marker functions allocate, each
// under its own stack.
var goHeapTimeMarker [2][]byte

//go:noinline
func allocateGoHeapTimeMarker() { goHeapTimeMarker[0] = make([]byte, 3<<10) }

//go:noinline
func allocateGoHeapTimeMarkerForGC() { goHeapTimeMarker[1] = make([]byte, 3<<10) }

// markerPublished reports whether the runtime's heap profile shows an
// object that marker allocated in use.
func markerPublished(t *testing.T, marker func()) bool {
	t.Helper()
	name := runtime.FuncForPC(reflect.ValueOf(marker).Pointer()).Name()
	n, _ := runtime.MemProfile(nil, false)
	for {
		records := make([]runtime.MemProfileRecord, n+64)
		var ok bool
		if n, ok = runtime.MemProfile(records, false); !ok {
			continue
		}
		for _, r := range records[:n] {
			for _, pc := range r.Stack() {
				if f := runtime.FuncForPC(pc - 1); f != nil && f.Name() == name && r.InUseObjects() > 0 {
					return true
				}
			}
		}
		return false
	}
}

// automaticGC allocates garbage until the runtime has ended a GC cycle of
// its own, which, unlike runtime.GC, does not publish its heap profile
// early.
// gcCycles returns the number of GC cycles completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func automaticGC(t *testing.T) {
	t.Helper()
	start := gcCycles()
	for i := 0; gcCycles() == start; i++ {
		if i == 1e5 {
			t.Skip("no automatic GC: is GOGC off?")
		}
		sink = make([]byte, 256<<10)
	}
	sink = nil
}

var sink []byte

// readFigures reads whether the marker is published and the time the
// figures describe, again if a GC cycle ends meanwhile.
func readFigures(t *testing.T, marker func(), gcForced bool) (published bool, at, lastGC time.Time) {
	t.Helper()
	for {
		n := gcCycles()
		published = markerPublished(t, marker)
		at = goHeapFiguresAt(gcForced)
		var s debug.GCStats
		debug.ReadGCStats(&s)
		if gcCycles() == n {
			return published, at, s.LastGC
		}
	}
}

// The runtime publishes an allocation in its heap profile exactly when the
// time goHeapFiguresAt returns has passed it: two GC cycles after it,
// not one, unless runtime.GC publishes it at once.
func TestGoHeapFiguresTime(t *testing.T) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1 // every allocation is in the profile
	defer func() { goHeapTimeMarker = [2][]byte{} }()
	runtime.GC()

	before := time.Now()
	allocateGoHeapTimeMarker()
	after := time.Now()
	if published, at, _ := readFigures(t, allocateGoHeapTimeMarker, false); published || !at.Before(before) {
		t.Fatalf("before any GC: marker published %v, figures as of %v; want unpublished, before %v", published, at, before)
	}

	// The first cycle after the allocation does not publish it, though its
	// mark termination came after it: the lag the figures' time stands for.
	automaticGC(t)
	published, at, lastGC := readFigures(t, allocateGoHeapTimeMarker, false)
	if published || !at.Before(before) || !lastGC.After(after) {
		t.Errorf("one GC later: marker published %v, figures as of %v, last GC at %v; want unpublished, before %v, after %v",
			published, at, lastGC, before, after)
	}
	for range 3 {
		automaticGC(t)
		published, at, _ := readFigures(t, allocateGoHeapTimeMarker, false)
		if at.After(before) && at.Before(after) {
			continue // the figures' time fell during the allocation: either answer is right
		}
		if published != at.After(after) {
			t.Errorf("marker published %v, figures as of %v; allocated between %v and %v", published, at, before, after)
		}
	}
	if published, _, _ := readFigures(t, allocateGoHeapTimeMarker, false); !published {
		t.Error("marker not published after four GC cycles")
	}

	// runtime.GC publishes the cycle it ran.
	allocateGoHeapTimeMarkerForGC()
	after = time.Now()
	runtime.GC()
	if published, at, lastGC := readFigures(t, allocateGoHeapTimeMarkerForGC, true); !published || !at.After(after) || !at.Equal(lastGC) {
		t.Errorf("after runtime.GC: marker published %v, figures as of %v; want published, as of the last GC at %v", published, at, lastGC)
	}
}
