package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler/internal/leakrank"
)

const diffSynopsis = "leakhunt diff [-json] [-n N] [-o FILE] [-max-profile-size SIZE] OLD NEW"

// shrankShown bounds the sites that shrank in the output: diff is about
// what grew, the shrinks are context.
const shrankShown = 3

func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print a JSON object instead of tables")
	top := fs.Int("n", 10, "show the `N` sites that grew most, 0 for all")
	out := fs.String("o", "", "also write the delta profile, NEW minus OLD, to `FILE` for go tool pprof (rank and diff refuse it)")
	maxSize := maxProfileSizeFlag(fs)
	if status, ok := parseFlags(fs, args, diffSynopsis, stderr); !ok {
		return status
	}
	switch {
	case fs.NArg() != 2:
		return usageError(stderr, diffSynopsis, "diff: name two profiles, OLD and NEW (got %d)", fs.NArg())
	case *top < 0:
		return usageError(stderr, diffSynopsis, "diff: -n %d: must be 0 (all) or more", *top)
	case *maxSize <= 0:
		return usageError(stderr, diffSynopsis, "diff: -max-profile-size %v: must be positive", maxSize)
	}
	oldPath, newPath := fs.Arg(0), fs.Arg(1)
	opts := leakrank.ReadOptions{MaxSize: int64(*maxSize)}

	oldProf, oldSnap, err := readSnapshot(oldPath, opts)
	if err != nil {
		return inputError(stderr, err)
	}
	newProf, newSnap, err := readSnapshot(newPath, opts)
	if err != nil {
		return inputError(stderr, err)
	}
	if err := leakrank.CheckProgram([]*leakrank.Snapshot{oldSnap, newSnap}); err != nil {
		return inputError(stderr, err)
	}
	if newSnap.Time.Before(oldSnap.Time) {
		fmt.Fprintf(stderr, "leakhunt: note: NEW (%s) was taken before OLD (%s); showing NEW minus OLD as given\n", newPath, oldPath)
	}
	if *out != "" {
		if err := writeDelta(*out, oldProf, newProf, oldPath, newPath); err != nil {
			return inputError(stderr, err)
		}
	}

	changes := leakrank.Diff(oldSnap, newSnap)
	var grew, shrank []leakrank.Change
	for _, c := range changes {
		if c.Delta() > 0 && (*top == 0 || len(grew) < *top) {
			grew = append(grew, c)
		}
	}
	for i := len(changes) - 1; i >= 0 && changes[i].Delta() < 0 && len(shrank) < shrankShown; i-- {
		shrank = append(shrank, changes[i])
	}
	commands := pprofCommands(oldPath, newPath)
	if *asJSON {
		return writeJSON(stdout, stderr, diffJSON{
			Old:          profileJSON{oldPath, oldSnap.Time, oldSnap.InUse},
			New:          profileJSON{newPath, newSnap.Time, newSnap.InUse},
			Grew:         changesJSON(grew),
			Shrank:       changesJSON(shrank),
			Pprof:        commands,
			DeltaProfile: *out,
		})
	}
	printDiff(stdout, oldSnap, newSnap, grew, shrank, commands, *out)
	return exitOK
}

func readSnapshot(path string, opts leakrank.ReadOptions) (*profile.Profile, *leakrank.Snapshot, error) {
	p, err := leakrank.ReadProfile(path, opts)
	if err != nil {
		return nil, nil, err
	}
	s, err := leakrank.NewSnapshot(path, p)
	return p, s, err
}

// pprofCommands returns the go tool pprof command lines that show the
// same comparison: interactive, as a table, and in the browser.
func pprofCommands(oldPath, newPath string) []string {
	base := "-diff_base " + commandPath(oldPath) + " " + commandPath(newPath)
	return []string{
		"go tool pprof " + base,
		"go tool pprof -top " + base,
		"go tool pprof -http=: " + base,
	}
}

// writeDelta writes NEW minus OLD to path. It refuses to overwrite either
// input, which a slip of the fingers on the command line would do.
func writeDelta(path string, oldProf, newProf *profile.Profile, oldPath, newPath string) error {
	if info, err := os.Stat(path); err == nil {
		for _, in := range []string{oldPath, newPath} {
			if inInfo, err := os.Stat(in); err == nil && os.SameFile(info, inInfo) {
				return fmt.Errorf("-o %s: would overwrite the input %s", path, in)
			}
		}
	}
	d, err := leakrank.DeltaProfile(oldProf, newProf, oldPath, newPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := d.Write(&buf); err != nil {
		return fmt.Errorf("encoding the delta profile: %w", err)
	}
	// 0600 like the profiler's own files: stacks and labels can say more
	// about a program than its owner wants shared.
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

type diffJSON struct {
	Old          profileJSON  `json:"old"`
	New          profileJSON  `json:"new"`
	Grew         []changeJSON `json:"grew"`   // most first
	Shrank       []changeJSON `json:"shrank"` // most first
	Pprof        []string     `json:"pprof"`
	DeltaProfile string       `json:"delta_profile,omitempty"`
}

type profileJSON struct {
	Path  string    `json:"path"`
	Time  time.Time `json:"time"`
	InUse int64     `json:"inuse_bytes"`
}

type changeJSON struct {
	Function string   `json:"function"`
	Stack    []string `json:"stack"`
	Heap     string   `json:"heap"`
	Old      int64    `json:"old_bytes"`
	New      int64    `json:"new_bytes"`
	Delta    int64    `json:"delta_bytes"`
}

func changesJSON(cs []leakrank.Change) []changeJSON {
	out := make([]changeJSON, len(cs))
	for i, c := range cs {
		out[i] = changeJSON{c.Function(), c.Stack, c.Heap, c.Old, c.New, c.Delta()}
	}
	return out
}

func printDiff(w io.Writer, oldSnap, newSnap *leakrank.Snapshot, grew, shrank []leakrank.Change, commands []string, deltaPath string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "OLD\t%s\t%s\t%s in use\n", oldSnap.Path, oldSnap.Time.Format(timeLayout), formatBytes(float64(oldSnap.InUse)))
	fmt.Fprintf(tw, "NEW\t%s\t%s\t%s in use\n", newSnap.Path, newSnap.Time.Format(timeLayout), formatBytes(float64(newSnap.InUse)))
	tw.Flush()
	fmt.Fprintf(w, "change: %s in %v\n", formatDelta(float64(newSnap.InUse-oldSnap.InUse)), newSnap.Time.Sub(oldSnap.Time))

	fmt.Fprintf(w, "\ngrew most:\n")
	printChanges(w, grew)
	if len(shrank) > 0 {
		fmt.Fprintf(w, "\nshrank most:\n")
		printChanges(w, shrank)
	}

	fmt.Fprintf(w, "\nthe same view in pprof:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %s\n", c)
	}
	if deltaPath != "" {
		fmt.Fprintf(w, "\ndelta profile (NEW minus OLD) written to %s:\n  go tool pprof -top %s\n", deltaPath, commandPath(deltaPath))
	}
}

func printChanges(w io.Writer, cs []leakrank.Change) {
	if len(cs) == 0 {
		fmt.Fprintf(w, "  nothing\n")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  DELTA\tOLD\tNEW\tHEAP\tSITE\tCALLED FROM\n")
	for _, c := range cs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", formatDelta(float64(c.Delta())), formatBytes(float64(c.Old)),
			formatBytes(float64(c.New)), heapName(c.Heap), siteName(c.Function()), callers(c.Stack))
	}
	tw.Flush()
}
