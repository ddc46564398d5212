package profiler

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank"
)

// The leak detector: every profile the profiler writes is also reduced to
// the in-use bytes of its sites (leakrank.Tally), and a site whose figures
// have grown steadily for long enough becomes a suspect. Its figures are
// scored as `leakhunt rank` scores a series of profiles
// (leakrank.FitTrend, leakrank.Monotonicity, leakrank.Trend.Score), over a
// bounded history the detector keeps itself: the reduced figures only,
// never a profile or its stacks.

// A Suspect is an allocation site whose in-use memory has grown steadily.
// It is a plain value, its holder's own.
type Suspect struct {
	Function           string  // the leaf function, as `leakhunt rank -json` names it
	Heap               string  // the heap label: "go" or a hook heap's name
	InuseBytes         int64   // in use at the latest profile
	GrowthBytesPerHour float64 // the slope of the least-squares line through its figures since Since
	Score              float64 // as leakhunt rank scores it, over its figures since Since
	// Since is when its growth began to show: the first profile of its
	// longest window of steady growth, or the first profile in the history.
	Since   time.Time
	Profile string // path of the latest profile file ("" when no file was written)
}

// The history. Every profile adds a point (its time, and the time of its
// Go heap figures) to one timeline shared by all watched sites, and each
// site a figure at that point. The timeline holds historyLen points: the
// latest recentLen, one per profile, for the short windows of the
// evidence rule; and older ones, from the first profile on, thinned as
// they age. When it is full, the point dropped is the older one whose
// neighbours are closest together for its age (their distance over its
// age), which leaves the older points spread evenly over the logarithm of
// their age: as many between an hour and two hours ago as between a day
// and two days ago. A leak too slow to show in a minute of profiles still
// shows over the hours the history spans, in a fixed number of figures.
const (
	historyLen = 64
	recentLen  = 32
)

// maxWatched bounds the sites watched at once. After each profile the
// suspects are kept, then the sites that hold the most memory in it, at
// most maxWatched; a site that drops out loses its history. A watched site
// keeps its place until one not watched holds twice as much: the figures
// of sites near the cut churn, and would otherwise take turns at it, each
// losing its history at every turn. A leak that starts small is watched
// from when it holds that much: a site smaller than hundreds of others is
// not yet a leak worth a warning.
const maxWatched = 256

// maxNameLen bounds the bytes kept of a leaf function's name or a heap
// label, so that the detector's memory has a bound in bytes; a longer
// name, which only deeply nested generic types produce, is cut and marked.
const maxNameLen = 256

// The evidence rule. At each profile a watched site passes if, over some
// window of its latest figures (the latest 20, 28, 40 or 56 of them, or
// all it has):
//
//   - there are at least minEvidence figures of distinct times (for the Go
//     heap, of distinct GC cycles: profiles written between two GCs repeat
//     the same figures, which are no more evidence), spanning at least
//     minSpan;
//   - the least-squares growth exceeds two standard errors, and Kendall's
//     tau is at least minMonotonicity: a rise at almost every step;
//   - over the window's latest half the growth also exceeds two standard
//     errors, tau is at least minRecentMonotonicity, and the slope is at
//     least half that of its earlier half: it is still growing, and not
//     slowing down;
//   - the growth, less two standard errors, is at least minGrownShare of
//     what the site holds now: the window's growth has about doubled it.
//
// A site becomes a suspect once it has passed at confirmations profiles
// in a row, and stops being one once it has failed at as many. Its Since,
// score and growth per hour are those of its longest window that passes.
//
// Why each test, against each look-alike:
//   - A cache filled once is a step up: tau across one step is at most
//     about 0.5, and after it the latest half is flat.
//   - Churn at a high rate is independent noise about a level, whatever
//     its size: the tau of noise is near 0, and 0.8 over 20 figures is a
//     chance below one in a million, before the latest half must grow on
//     its own too; and noise about a level is a fraction of the level,
//     which a doubling is not.
//   - A warm-up that levels off has a flat latest half once it has
//     levelled off, and one that slows down grows more slowly in its latest
//     half than in its earlier. Caught at the end of its rise, a ramp of 15
//     profiles still passes at its 20th, when only its last 5 are flat; it
//     fails at the next ones, as more flat figures come in: hence the
//     confirmations.
//   - The profiler's own memory is never scored, as in leakhunt rank.
//
// A steady leak passes at its 20th figure and is a suspect at its 22nd:
// at a 1 s flush interval, 22 profiles over 21 s, within 30 profiles with
// room for noise to cost a few. Less than that would pass warm-ups.
//
// What the rule cannot tell apart from a leak: a warm-up that grows at a
// steady pace for more than about 20 profiles (at 1 s, 20 s); objects
// freed only after about as long as a window, at a site that holds few
// samples of them, whose figures wander up and down over tens of profiles
// and now and then climb for long enough to double (a longer flush
// interval makes the same objects short-lived); and, until it has doubled
// the site, a leak at a site that also holds much more memory that does
// not grow.
//
// minSpan keeps a burst of Flush calls, many profiles within a second,
// from passing for a trend; it is short enough that 20 profiles at the
// shortest flush interval (1 s) span it.
const (
	minEvidence           = 20
	minSpan               = 15 * time.Second
	minMonotonicity       = 0.8
	minRecentMonotonicity = 0.5
	minGrownShare         = 0.5
	confirmations         = 3
)

// windowLengths are the lengths of the windows tried, shortest first,
// before the whole history of the site.
var windowLengths = [...]int{minEvidence, 28, 40, 56}

// rewarnGrowth is how much a suspect's in-use bytes must have grown since
// its last warning for another: half as much again. A leak warns about
// seventeen times while it grows a thousandfold, not once a profile; a
// suspect that stops growing, and starts again, warns again only once it
// holds half as much again as at its last warning.
const rewarnGrowth = 1.5

// maxKeptCandidates bounds the list of candidates for watching that the
// detector keeps from one profile to the next, to save building it again;
// a profile with more sites builds its own and lets it go.
const maxKeptCandidates = 4 * maxWatched

// leakDetector finds leak suspects in the series of profiles it observes.
// Calls of observe are serialized; suspects and size may be called
// concurrently with them and with each other. Its memory is bounded: at
// most maxWatched sites of historyLen figures, about 700 bytes a site with
// their names, some 210 KiB in all, and at most about 370 KiB however long
// the names (see size); what observe builds in proportion to a profile,
// it lets go.
type leakDetector struct {
	mu     sync.Mutex // held by observe and size
	tally  leakrank.Tally
	points [historyLen]historyPoint
	n      int // points in use
	sites  map[leakrank.SiteID]*watchedSite
	path   string       // of the latest profile
	ranked []rankedSite // scratch of observe: candidates to watch
	// The most entries the map of sites has held, for size: a Go map does
	// not shrink.
	sitesPeak int
	x, xGo    [historyLen]float64
	y         [historyLen]float64
	current   atomic.Pointer[[]Suspect] // the latest suspects, most suspicious first; never modified
}

// historyPoint is one profile in the timeline.
type historyPoint struct {
	at     time.Time // when it was taken
	goHeap time.Time // when its Go heap figures are from; zero if unknown
}

// watchedSite is the history of one site. Its figures are an allocation
// of their own, without pointers, which the garbage collector need not
// scan.
type watchedSite struct {
	function, heap string
	first          int // index in the timeline of its first figure
	inuse          *[historyLen]int64
	own            bool // the profiler's own memory, never scored
	suspect        bool
	// streak counts the latest profiles in a row at which the evidence
	// rule held, or, negative, failed.
	streak int
	trend  leakrank.Trend // over its longest window of steady growth, if suspect
	score  float64
	since  time.Time
	warned int64 // in-use bytes at the latest warning, 0 if none
}

// rankedSite is a candidate for watching.
type rankedSite struct {
	id      leakrank.SiteID
	inuse   int64
	sample  int // in the profile, for a site not yet watched; -1 if watched
	suspect bool
}

// newLeakDetector returns a detector that has observed nothing.
func newLeakDetector() *leakDetector {
	return &leakDetector{sites: make(map[leakrank.SiteID]*watchedSite)}
}

// observe adds one profile p, taken at at and written to path (may be ""),
// and returns the suspects to warn about now, most suspicious first: those
// newly established, and those grown by rewarnGrowth since their last
// warning. A profile that is not a heap snapshot is ignored. A time before
// the latest observed is taken as equal to it.
func (d *leakDetector) observe(p *profile.Profile, at time.Time, path string) []Suspect {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.tally.Read(path, p); err != nil {
		d.tally.Release()
		return nil
	}
	if d.n > 0 && at.Before(d.points[d.n-1].at) {
		at = d.points[d.n-1].at
	}
	if d.n == historyLen {
		d.thin()
	}
	d.points[d.n] = historyPoint{at: at, goHeap: d.tally.GoHeapTime}
	d.n++
	d.path = path
	for id, w := range d.sites {
		w.inuse[d.n-1] = d.tally.Sites[id].InUse
	}
	d.watch(p)
	d.sitesPeak = max(d.sitesPeak, len(d.sites))

	origin := d.points[0].at
	for i, pt := range d.points[:d.n] {
		d.x[i] = leakrank.HoursSince(origin, pt.at)
		d.xGo[i] = leakrank.HoursSince(origin, leakrank.FiguresTime(leakrank.GoHeap, pt.at, pt.goHeap))
	}
	var warn, all []Suspect
	for _, w := range d.sites {
		if !d.evaluate(w) {
			continue
		}
		s := d.suspectOf(w)
		all = append(all, s)
		if now := s.InuseBytes; w.warned == 0 || float64(now) >= rewarnGrowth*float64(w.warned) {
			w.warned = now
			warn = append(warn, s)
		}
	}
	slices.SortFunc(all, compareSuspects)
	slices.SortFunc(warn, compareSuspects)
	d.current.Store(&all)

	// The tally's map and buffers are in proportion to the profile: the
	// detector keeps only what it needs, bounded.
	d.tally.Release()
	if cap(d.ranked) > maxKeptCandidates {
		d.ranked = nil
	}
	return warn
}

// thin drops a point of the full timeline, from it and from every
// site's figures: of those older than the latest recentLen, the first
// excepted, the one whose neighbours are closest together for its age.
func (d *leakDetector) thin() {
	now := d.points[d.n-1].at
	drop, closest := 1, math.Inf(1)
	for i := 1; i < d.n-recentLen; i++ {
		gap := d.points[i+1].at.Sub(d.points[i-1].at)
		age := now.Sub(d.points[i].at)
		r := 0.0 // profiles of the same time are the first to go
		if age > 0 {
			r = float64(gap) / float64(age)
		}
		if r < closest {
			drop, closest = i, r
		}
	}
	copy(d.points[drop:d.n], d.points[drop+1:d.n])
	d.n--
	for _, w := range d.sites {
		copy(w.inuse[drop:], w.inuse[drop+1:])
		if w.first > drop {
			w.first--
		}
	}
}

// watch chooses the sites to watch after the profile p, read into the
// tally (see maxWatched). A site that comes in starts its history at the
// latest point.
func (d *leakDetector) watch(p *profile.Profile) {
	d.ranked = slices.Grow(d.ranked[:0], len(d.sites)+len(d.tally.Sites))
	for id, w := range d.sites {
		d.ranked = append(d.ranked, rankedSite{id: id, inuse: w.inuse[d.n-1], sample: -1, suspect: w.suspect})
	}
	for id, s := range d.tally.Sites {
		if d.sites[id] == nil {
			d.ranked = append(d.ranked, rankedSite{id: id, inuse: s.InUse, sample: s.Sample})
		}
	}
	if len(d.ranked) > maxWatched {
		slices.SortFunc(d.ranked, compareCandidates)
		for _, r := range d.ranked[maxWatched:] {
			delete(d.sites, r.id)
		}
		d.ranked = d.ranked[:maxWatched]
	}
	for _, r := range d.ranked {
		if r.sample < 0 {
			continue
		}
		name := leakrank.NameSite(p.Sample[r.sample])
		w := &watchedSite{function: clipName(name.Function), heap: clipName(name.Heap), own: name.Own, first: d.n - 1,
			inuse: new([historyLen]int64)}
		w.inuse[d.n-1] = r.inuse
		d.sites[r.id] = w
	}
}

// compareCandidates orders candidates for watching: suspects first, then
// by in-use bytes, those of a watched site counted twice; ties broken by
// id, so that the choice does not depend on the order of the maps.
func compareCandidates(a, b rankedSite) int {
	if a.suspect != b.suspect {
		if a.suspect {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(b.standing(), a.standing()); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// standing is what a candidate's place depends on: its in-use bytes,
// twice over for a site already watched.
func (r rankedSite) standing() float64 {
	if r.sample < 0 {
		return 2 * float64(r.inuse)
	}
	return float64(r.inuse)
}

// clipName returns a copy of s, which keeps no profile alive, cut to at
// most maxNameLen bytes.
func clipName(s string) string {
	const mark = "..."
	if len(s) <= maxNameLen {
		return strings.Clone(s)
	}
	cut := maxNameLen - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut-- // do not split a character
	}
	return s[:cut] + mark
}

// evaluate applies the evidence rule to w at the latest profile, and
// returns whether w is a suspect: it becomes one once the rule has held at
// confirmations profiles in a row, and stops being one once it has failed
// at as many. A suspect's trend, score and since are those of its longest
// window of steady growth at the latest profile at which the rule held.
func (d *leakDetector) evaluate(w *watchedSite) bool {
	t, start, ok := d.steadyWindow(w)
	if ok {
		w.trend, w.since = t, d.points[start].at
		w.score = t.Score(w.inuse[d.n-1], d.tally.InUse)
		w.streak = max(w.streak, 0) + 1
	} else {
		w.streak = min(w.streak, 0) - 1
	}
	switch {
	case w.streak >= confirmations:
		w.suspect = true
	case -w.streak >= confirmations:
		w.suspect = false
	}
	return w.suspect
}

// steadyWindow returns the trend of w's longest window of steady growth at
// the latest profile, and the index of its first point; ok is false if it
// has none.
func (d *leakDetector) steadyWindow(w *watchedSite) (t leakrank.Trend, start int, ok bool) {
	figures := d.n - w.first
	if w.own || figures < minEvidence {
		return t, 0, false
	}
	x := d.x[:d.n]
	if w.heap == leakrank.GoHeap {
		x = d.xGo[:d.n]
	}
	y := d.y[:d.n]
	for i := w.first; i < d.n; i++ {
		y[i] = float64(w.inuse[i])
	}
	for _, length := range windowLengths {
		if length >= figures {
			break
		}
		if wt, pass := steadyGrowth(x[d.n-length:], y[d.n-length:]); pass {
			t, start, ok = wt, d.n-length, true
		}
	}
	if wt, pass := steadyGrowth(x[w.first:], y[w.first:]); pass {
		t, start, ok = wt, w.first, true
	}
	return t, start, ok
}

// steadyGrowth applies the evidence rule to the figures y at the times x,
// in hours, the latest last, and returns their trend if they pass. The
// fits, O(n), come first: most sites fail them and never reach Kendall's
// tau, O(n²).
func steadyGrowth(x, y []float64) (leakrank.Trend, bool) {
	now := y[len(y)-1]
	if now <= 0 || distinctTimes(x) < minEvidence || x[len(x)-1]-x[0] < minSpan.Hours() {
		return leakrank.Trend{}, false
	}
	all := leakrank.FitTrend(x, y)
	if sure := all.Growth - 2*all.GrowthError; sure <= 0 || sure < minGrownShare*now {
		return leakrank.Trend{}, false
	}
	h := len(y) / 2
	earlier := leakrank.FitTrend(x[:len(x)-h], y[:len(y)-h])
	recent := leakrank.FitTrend(x[len(x)-h:], y[len(y)-h:])
	if recent.Growth <= 2*recent.GrowthError || recent.GrowthPerHour < earlier.GrowthPerHour/2 {
		return leakrank.Trend{}, false
	}
	if leakrank.Monotonicity(y[len(y)-h:]) < minRecentMonotonicity {
		return leakrank.Trend{}, false
	}
	all.Monotonicity = leakrank.Monotonicity(y)
	return all, all.Monotonicity >= minMonotonicity
}

// distinctTimes returns how many distinct times x, in order, holds.
func distinctTimes(x []float64) int {
	n := 0
	for i := range x {
		if i == 0 || x[i] != x[i-1] {
			n++
		}
	}
	return n
}

func (d *leakDetector) suspectOf(w *watchedSite) Suspect {
	return Suspect{
		Function:           w.function,
		Heap:               w.heap,
		InuseBytes:         w.inuse[d.n-1],
		GrowthBytesPerHour: w.trend.GrowthPerHour,
		Score:              w.score,
		Since:              w.since,
		Profile:            d.path,
	}
}

// compareSuspects orders by score, then by growth and size, then by site,
// so that the order is the same on every run.
func compareSuspects(a, b Suspect) int {
	if c := cmp.Compare(b.Score, a.Score); c != 0 {
		return c
	}
	if c := cmp.Compare(b.GrowthBytesPerHour, a.GrowthBytesPerHour); c != 0 {
		return c
	}
	if c := cmp.Compare(b.InuseBytes, a.InuseBytes); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Heap, b.Heap); c != 0 {
		return c
	}
	return cmp.Compare(a.Function, b.Function)
}

// suspects returns the current suspects, most suspicious first: the
// watched sites that pass the evidence rule at the latest profile. The
// slice is the caller's.
func (d *leakDetector) suspects() []Suspect {
	if s := d.current.Load(); s != nil {
		return slices.Clone(*s)
	}
	return nil
}

// size returns the bytes the detector holds between calls of observe:
// its own struct, its watched sites and their names, the scratch it keeps,
// and the latest suspects, each allocation rounded up as the Go allocator
// rounds it (see allocBytes), and maps counted as mapBytes does.
func (d *leakDetector) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := allocBytes(int(unsafe.Sizeof(*d)))
	n += mapBytes(d.sitesPeak, int(unsafe.Sizeof(leakrank.SiteID(0))+unsafe.Sizeof((*watchedSite)(nil))))
	for _, w := range d.sites {
		n += allocBytes(int(unsafe.Sizeof(*w))) + allocBytes(int(unsafe.Sizeof(*w.inuse)))
		n += allocBytes(len(w.function)) + allocBytes(len(w.heap))
	}
	n += allocBytes(cap(d.ranked) * int(unsafe.Sizeof(rankedSite{})))
	if s := d.current.Load(); s != nil {
		// The names are the sites'.
		n += allocBytes(int(unsafe.Sizeof(*s))) + allocBytes(cap(*s)*int(unsafe.Sizeof(Suspect{})))
	}
	return n
}

// allocBytes returns about the bytes the Go allocator takes for an
// object of n bytes: small objects are rounded up to a size class, which
// are at most an eighth apart (runtime/sizeclasses.go), large ones, beyond
// 32 KiB, to whole 8 KiB pages.
func allocBytes(n int) int {
	const page, maxSmall = 8 << 10, 32 << 10
	if n <= 0 {
		return 0
	}
	if n > maxSmall {
		return (n + page - 1) / page * page
	}
	step := 8
	for step*8 < n {
		step *= 2
	}
	return (n + step - 1) / step * step
}

// mapBytes returns about the bytes of a Go map that has held up to
// entries entries of slot bytes each (key and value), laid out as the
// runtime's Swiss tables are (internal/runtime/maps): groups of 8 slots
// with an 8-byte control word, at most 7/8 full, in tables of up to 1024
// slots, each an allocation of its own, behind a directory of tables.
func mapBytes(entries, slot int) int {
	const header, groupSlots, maxTableSlots = 48, 8, 1024
	group := 8 + groupSlots*slot
	slots := groupSlots
	for slots*7/8 < entries {
		slots *= 2
	}
	if slots == groupSlots {
		return header + allocBytes(group)
	}
	tableSlots := min(slots, maxTableSlots)
	tables := slots / tableSlots
	return header + allocBytes(tables*8) + tables*(header+allocBytes(tableSlots/groupSlots*group))
}
