// Command leakhunt reads the heap profiles that github.com/leakhunt/profiler
// writes and points at leaks.
//
//	leakhunt rank [-json] [-n N] [-old AGE] [-retainers FILE] [-max-profile-size SIZE] DIR|FILE...
//	leakhunt diff [-json] [-n N] [-o FILE] [-max-profile-size SIZE] OLD NEW
//
// rank reads a time series of profiles (a directory stands for its
// heap-*.pb.gz files, or if it has none for its *.pb.gz files) and ranks
// the allocation sites by how steadily their in-use memory grows, not by
// size: a large cache that stays flat ranks below a small site that grows
// at every snapshot. The score is the share of the latest in-use memory
// that a site's steady growth accounts for (see internal/leakrank). diff
// shows what grew between two profiles and the `go tool pprof -diff_base`
// command that opens the same view, and can write the difference as a
// profile of its own.
//
// rank -retainers FILE also shows what keeps each site's objects alive,
// from a retainers profile (the profiler's WriteRetainers): the roots that
// hold the most of the site's bytes in it, a global or a goroutine's
// frame, with their shares, and in -json the chain of references from
// each root. It covers the Go heap and objects reported with Track; a
// site of another heap, or whose objects were not sampled, shows nothing.
// The retainers profile is matched through the latest heap profile of the
// series, and is best taken by the same run, while it writes them. It is
// never picked from a directory by itself (a note names one found there),
// and never taken for a heap snapshot: in a directory, files named
// retainers-*.pb.gz are skipped; named as a profile to rank, or found
// under another name, it is an error.
//
// Profiles are read from regular files only, or links to them: opening a
// named pipe waits for a writer that may never come. A named pipe, device
// or socket named on the command line is an error; one in a directory is
// skipped. A profile larger than -max-profile-size (256MiB by default), on
// disk or decompressed, is an error: real profiles are a few MiB, and a
// file that decompresses to more is more likely a gzip bomb. A delta
// profile written by diff -o is refused wherever a snapshot is needed:
// it is the change between two snapshots, not one.
//
// Exit status: 0 on success, 1 when the input is bad (no profiles, a file
// that is not a heap profile or is too large, a delta or retainers profile
// where a snapshot is needed, a -retainers FILE that is no retainers
// profile, profiles of different programs, a single snapshot), 2 on a
// usage error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/leakhunt/profiler/internal/leakrank"
)

const (
	exitOK       = 0
	exitBadInput = 1
	exitUsage    = 2
)

const usage = `usage:
  leakhunt rank [-json] [-n N] [-old AGE] [-retainers FILE] [-max-profile-size SIZE] DIR|FILE...
      rank allocation sites by how steadily their in-use memory grows
      over a series of profiles (DIR: its heap-*.pb.gz files, or if it
      has none its *.pb.gz files but retainers-*.pb.gz; only regular
      files, others are skipped); with -retainers, also what holds each
      site's objects, by a retainers profile
  leakhunt diff [-json] [-n N] [-o FILE] [-max-profile-size SIZE] OLD NEW
      show what grew between two profiles, and how to see it in pprof

Run "leakhunt rank -h" or "leakhunt diff -h" for the flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command with its arguments (without the program name); it
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "rank":
		return runRank(args[1:], stdout, stderr)
	case "diff":
		return runDiff(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "leakhunt: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseFlags parses args into fs. ok is false when the command is done:
// status is then 0 for -h, exitUsage for a bad flag or a flag after the
// first file (the flag package stops at the first file, and a file named
// "-json" is more likely a misplaced flag).
func parseFlags(fs *flag.FlagSet, args []string, synopsis string, stderr io.Writer) (status int, ok bool) {
	fs.SetOutput(io.Discard) // errors are printed here, with the prefix
	printUsage := func() {
		fmt.Fprintf(stderr, "usage: %s\n", synopsis)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage()
			return exitOK, false
		}
		fmt.Fprintf(stderr, "leakhunt: %s: %v\n", fs.Name(), err)
		printUsage()
		return exitUsage, false
	}
	for _, a := range fs.Args() {
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			fmt.Fprintf(stderr, "leakhunt: %s: flag %s after a file: flags go first\n", fs.Name(), a)
			printUsage()
			return exitUsage, false
		}
	}
	return exitOK, true
}

// usageError reports a usage error of a subcommand.
func usageError(stderr io.Writer, synopsis, format string, args ...any) int {
	fmt.Fprintf(stderr, "leakhunt: "+format+"\nusage: %s\n", append(args, synopsis)...)
	return exitUsage
}

// inputError reports bad input.
func inputError(stderr io.Writer, err error) int {
	switch {
	case errors.Is(err, leakrank.ErrTooLarge):
		fmt.Fprintf(stderr, "leakhunt: %v (-max-profile-size raises the limit)\n", err)
		return exitBadInput
	case errors.Is(err, leakrank.ErrRetainersProfile):
		fmt.Fprintf(stderr, "leakhunt: %v (rank -retainers FILE reads it)\n", err)
		return exitBadInput
	}
	fmt.Fprintf(stderr, "leakhunt: %v\n", err)
	return exitBadInput
}

// maxProfileSizeFlag defines the -max-profile-size flag of fs.
func maxProfileSizeFlag(fs *flag.FlagSet) *byteSize {
	size := byteSize(leakrank.DefaultMaxProfileSize)
	fs.Var(&size, "max-profile-size",
		"read at most `SIZE` of a profile, on disk and decompressed: bytes, or a number with a unit, KiB, MiB, GiB...")
	return &size
}

// byteSize is a flag.Value of a number of bytes: a whole number, with an
// optional binary unit (B, KiB, MiB, GiB, TiB, PiB, EiB). Decimal units
// such as MB are refused, rather than read one way or the other.
type byteSize int64

var byteUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

func (s *byteSize) String() string {
	n, u := int64(*s), 0
	for n != 0 && n%1024 == 0 && u < len(byteUnits)-1 {
		n /= 1024
		u++
	}
	return strconv.FormatInt(n, 10) + byteUnits[u]
}

func (s *byteSize) Set(v string) error {
	digits := strings.TrimRight(v, "KMGTPEiB")
	unit := v[len(digits):]
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return fmt.Errorf("want a whole number of bytes, with a unit or not")
	}
	scale := int64(1)
	if unit != "" {
		i := slices.Index(byteUnits, unit)
		if i < 0 {
			return fmt.Errorf("unknown unit %q: want one of %s", unit, strings.Join(byteUnits, ", "))
		}
		scale = 1 << (10 * i)
	}
	if n > math.MaxInt64/scale || n < math.MinInt64/scale {
		return fmt.Errorf("more than an int64 holds")
	}
	*s = byteSize(n * scale)
	return nil
}
