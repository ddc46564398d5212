package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/leakhunt/profiler/internal/leakrank"
)

const rankSynopsis = "leakhunt rank [-json] [-n N] [-old AGE] [-retainers FILE] [-max-profile-size SIZE] DIR|FILE..."

// timeLayout shows milliseconds: profiles written by Flush in a test are
// that close together.
const timeLayout = "2006-01-02 15:04:05.000 UTC"

func runRank(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rank", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print a JSON array, most suspicious site first, instead of a table")
	top := fs.Int("n", 10, "show the top `N` sites, 0 for all")
	old := fs.Duration("old", leakrank.DefaultOldAge,
		"objects at least `AGE` old count as old (ages are recorded in steps: ..., 30m, 1h, 2h, 3h, 6h, 12h, 24h, ...)")
	retainers := fs.String("retainers", "",
		"show what holds each site's objects, from the retainers profile in `FILE` (as WriteRetainers writes it)")
	maxSize := maxProfileSizeFlag(fs)
	if status, ok := parseFlags(fs, args, rankSynopsis, stderr); !ok {
		return status
	}
	switch {
	case fs.NArg() == 0:
		return usageError(stderr, rankSynopsis, "rank: name a directory or profile files")
	case *top < 0:
		return usageError(stderr, rankSynopsis, "rank: -n %d: must be 0 (all) or more", *top)
	case *old <= 0:
		return usageError(stderr, rankSynopsis, "rank: -old %v: must be positive", *old)
	case *maxSize <= 0:
		return usageError(stderr, rankSynopsis, "rank: -max-profile-size %v: must be positive", maxSize)
	}

	opts := leakrank.ReadOptions{MaxSize: int64(*maxSize)}
	var ret *leakrank.Retainers
	if *retainers != "" {
		// First, so that a wrong file fails before the series is read.
		var err error
		if ret, err = leakrank.ReadRetainers(*retainers, opts); err != nil {
			return inputError(stderr, fmt.Errorf("-retainers: %w", err))
		}
	}
	snaps, err := leakrank.Load(fs.Args(), opts)
	if err != nil {
		return inputError(stderr, err)
	}
	runs := leakrank.Runs(snaps)
	series := runs[len(runs)-1]
	if len(runs) > 1 {
		fmt.Fprintf(stderr, "leakhunt: note: the profiles come from %d runs of the program (it restarted); ranking the latest, %d profiles from %s on\n",
			len(runs), len(series), series[0].Path)
	}
	r, err := leakrank.Rank(series, leakrank.Options{OldAge: *old})
	if err != nil {
		return inputError(stderr, err)
	}
	var held *heldBy
	if ret != nil {
		if held, err = matchHeldBy(ret, r.Last, opts, stderr); err != nil {
			return inputError(stderr, err)
		}
	} else {
		noteRetainersFiles(stderr, fs.Args())
	}
	sites := r.Sites
	if *top > 0 && len(sites) > *top {
		sites = sites[:*top]
	}
	if *asJSON {
		return writeJSON(stdout, stderr, rankJSON(r, sites, held))
	}
	printRanking(stdout, r, sites, *old, held)
	return exitOK
}

// siteJSON is one element of `rank -json`.
type siteJSON struct {
	Rank     int      `json:"rank"`
	Function string   `json:"function"` // the leaf, as pprof prints it
	Stack    []string `json:"stack"`    // leaf first
	Heap     string   `json:"heap"`
	InUse    int64    `json:"inuse_bytes"` // in the latest profile
	// Growth is over the whole series, by the least-squares line, with
	// its standard error; GrowthPerHour is null when all profiles have the
	// same time.
	Growth        int64    `json:"growth_bytes"`
	GrowthError   int64    `json:"growth_error_bytes"`
	GrowthPerHour *float64 `json:"growth_bytes_per_hour"`
	Monotonicity  float64  `json:"monotonicity"` // Kendall's tau, -1 to 1
	Share         float64  `json:"share"`        // of the latest in-use total
	OldShare      *float64 `json:"old_share"`    // null: no age labels
	Score         float64  `json:"score"`
	History       []int64  `json:"inuse_history"` // oldest first
	// With -retainers, for a site of a heap the retainers profile covers
	// (see leakrank.Holders.Of): HeldBytes, the bytes of its objects in
	// it, and HeldBy, the heldByShown roots that hold the most of them,
	// most first, [] if none of them is in it. Both absent otherwise.
	HeldBytes *int64     `json:"held_bytes,omitempty"`
	HeldBy    []rootJSON `json:"held_by,omitzero"`
}

// rankJSON returns the JSON of sites; held is nil without -retainers.
func rankJSON(r *leakrank.Ranking, sites []leakrank.SiteRank, held *heldBy) []siteJSON {
	out := make([]siteJSON, len(sites))
	for i, s := range sites {
		out[i] = siteJSON{
			Rank:         i + 1,
			Function:     s.Function(),
			Stack:        s.Stack,
			Heap:         s.Heap,
			InUse:        s.InUse,
			Growth:       roundBytes(s.Growth),
			GrowthError:  roundBytes(s.GrowthError),
			Monotonicity: s.Monotonicity,
			Share:        s.Share,
			Score:        s.Score,
			History:      s.History,
		}
		if !r.ByIndex {
			g := math.Round(s.GrowthPerHour)
			if g == 0 {
				g = 0 // not -0, which JSON would print as such
			}
			out[i].GrowthPerHour = &g
		}
		if s.HasAge {
			out[i].OldShare = &s.OldShare
		}
		held.setHeldBy(&out[i], s)
	}
	return out
}

// roundBytes rounds a fitted number of bytes to an integer; clamped, since
// converting a float64 beyond the range of int64 is not defined.
func roundBytes(f float64) int64 {
	const limit = 1 << 62
	return int64(math.Round(math.Max(-limit, math.Min(f, limit))))
}

func writeJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return inputError(stderr, fmt.Errorf("writing JSON: %w", err))
	}
	return exitOK
}

// printRanking writes the table of sites; held is nil without -retainers.
func printRanking(w io.Writer, r *leakrank.Ranking, sites []leakrank.SiteRank, old time.Duration, held *heldBy) {
	fmt.Fprintf(w, "%d profiles over %v, %s to %s; %s in use in the last\n",
		r.Count, r.Span, r.First.Time.Format(timeLayout), r.Last.Time.Format(timeLayout), formatBytes(float64(r.Last.InUse)))
	fmt.Fprintf(w, "sites by steady growth of in-use memory (score: the share of it that steady growth explains)\n\n")

	growthHeader := "GROWTH/H"
	if r.ByIndex {
		growthHeader = "GROWTH/PROFILE"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "RANK\tSCORE\tIN USE\t%s\tOLD>=%s\tHEAP\tSITE\tCALLED FROM\n", growthHeader, formatAge(old))
	for i, s := range sites {
		growth := formatDelta(s.GrowthPerHour) + "/h"
		if r.ByIndex {
			growth = formatDelta(s.Growth / float64(r.Count-1))
		}
		oldShare := "-"
		if s.HasAge {
			oldShare = fmt.Sprintf("%.0f%%", 100*s.OldShare)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, formatShare(s.Score), formatBytes(float64(s.InUse)),
			growth, oldShare, heapName(s.Heap), siteName(s.Function()), callers(s.Stack))
	}
	tw.Flush()
	if held != nil {
		held.print(w, sites)
	}

	if r.ByIndex {
		fmt.Fprintf(w, "\nall profiles have the same time: growth is per profile, in file order\n")
	}
	if len(sites) == 0 || sites[0].Score == 0 {
		fmt.Fprintf(w, "\nno site grew steadily over this series\n")
	}
	fmt.Fprintf(w, "\nwhat changed from the first profile to the last:\n  leakhunt diff %s %s\n",
		commandPath(r.First.Path), commandPath(r.Last.Path))
}
