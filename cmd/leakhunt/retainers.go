package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/leakhunt/profiler/internal/leakrank"
)

// rank -retainers FILE shows what holds each site's objects, from a
// retainers profile (WriteRetainers). The file is named, never picked
// from the directory ranked: a retainers profile is of one moment, maybe
// of another run than the one ranked, and what rank prints should not
// change with what else lies in the directory. A directory that holds
// one gets a note that says how to use it.

// heldByShown bounds the roots shown of a site, in the table and in JSON:
// the first few hold most of a leak, and a site held by many goroutines
// would list each.
const heldByShown = 3

// heldBy is what rank shows of a retainers profile.
type heldBy struct {
	retainers *leakrank.Retainers
	holders   *leakrank.Holders
}

// matchHeldBy matches ret to the sites of last, the latest heap profile
// of the series ranked: it is read again, since a snapshot keeps no
// lines, which the matching needs. A retainers profile of a moment before
// the run that last is of began gets a note.
func matchHeldBy(ret *leakrank.Retainers, last *leakrank.Snapshot, opts leakrank.ReadOptions, stderr io.Writer) (*heldBy, error) {
	heap, err := leakrank.ReadProfile(last.Path, opts)
	if err != nil {
		return nil, err
	}
	holders, err := ret.Match(last.Path, heap)
	if err != nil {
		return nil, err
	}
	if start := last.Time.Add(-last.Duration); last.Duration > 0 && !ret.Time.IsZero() && ret.Time.Before(start) {
		fmt.Fprintf(stderr, "leakhunt: note: the retainers profile was taken at %s, before the run ranked began (%s): what it shows held the objects of an earlier run\n",
			ret.Time.Format(timeLayout), start.Format(timeLayout))
	}
	return &heldBy{ret, holders}, nil
}

// noteRetainersFiles points at the newest retainers profile in the
// directories among args, if there is one.
func noteRetainersFiles(stderr io.Writer, args []string) {
	files := leakrank.RetainersFiles(args)
	if len(files) == 0 {
		return
	}
	newest := files[len(files)-1]
	fmt.Fprintf(stderr, "leakhunt: note: %s is a retainers profile: -retainers %s shows what holds each site's objects\n",
		newest, commandPath(newest))
}

// rootJSON is one root of a site in `rank -json -retainers`.
type rootJSON struct {
	Root  string   `json:"root"`
	Bytes int64    `json:"bytes"`
	Chain []string `json:"chain"` // the chain that holds the most of them, root first
}

// setHeldBy sets the held-by fields of out, the JSON of site s, if h
// covers its heap.
func (h *heldBy) setHeldBy(out *siteJSON, s leakrank.SiteRank) {
	if h == nil {
		return
	}
	ret, ok := h.holders.Of(s.Site)
	if !ok {
		return
	}
	out.HeldBytes = &ret.Bytes
	out.HeldBy = []rootJSON{}
	for _, r := range ret.Roots[:min(len(ret.Roots), heldByShown)] {
		out.HeldBy = append(out.HeldBy, rootJSON{r.Name, r.Bytes, r.Chain})
	}
}

// print writes what holds the objects of sites, those that have any.
func (h *heldBy) print(w io.Writer, sites []leakrank.SiteRank) {
	fmt.Fprintf(w, "\nwhat holds them, in the retainers profile of %s:\n", h.retainers.Time.Format(timeLayout))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	shown := 0
	for i, s := range sites {
		ret, _ := h.holders.Of(s.Site)
		if ret.Bytes <= 0 {
			continue
		}
		shown++
		fmt.Fprintf(tw, "  %d\t%s\theld by %s\n", i+1, siteName(s.Function()), formatRoots(ret))
	}
	tw.Flush()
	if shown == 0 {
		fmt.Fprintf(w, "  none of these sites' objects is in it\n")
	}
}

// formatRoots formats the roots that hold the most of ret with their
// shares: "main.registry (92%), main.worker (goroutine 7, chan receive)
// (8%)", and how many more there are.
func formatRoots(ret leakrank.Retention) string {
	var b strings.Builder
	shown := ret.Roots[:min(len(ret.Roots), heldByShown)]
	rest := ret.Bytes
	for i, r := range shown {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", r.Name, rootShare(r.Bytes, ret.Bytes))
		rest -= r.Bytes
	}
	if more := len(ret.Roots) - len(shown); more > 0 {
		fmt.Fprintf(&b, " and %d more (%s)", more, rootShare(rest, ret.Bytes))
	}
	return b.String()
}

// rootShare formats part of total as a whole percentage, "<1%" for a part
// that would round to nothing and "99%" for less than all that would
// round to all: a root shown holds something, and other roots hold the
// rest.
func rootShare(part, total int64) string {
	f := float64(part) / float64(total)
	switch p := math.Round(100 * f); {
	case p == 0 && part > 0:
		return "<1%"
	case p == 100 && part < total:
		return "99%"
	default:
		return fmt.Sprintf("%.0f%%", p)
	}
}
