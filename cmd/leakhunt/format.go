package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"
)

// formatBytes formats n bytes with binary prefixes, three significant
// digits: "512B", "64.0KiB", "3.75MiB", "256MiB".
func formatBytes(n float64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	if n < 1024 {
		return fmt.Sprintf("%s%.0fB", sign, n)
	}
	unit := 0
	for n >= 1024 && unit < len(binaryPrefixes)-1 {
		n /= 1024
		unit++
	}
	switch {
	case n < 10:
		return fmt.Sprintf("%s%.2f%s", sign, n, binaryPrefixes[unit])
	case n < 100:
		return fmt.Sprintf("%s%.1f%s", sign, n, binaryPrefixes[unit])
	}
	return fmt.Sprintf("%s%.0f%s", sign, n, binaryPrefixes[unit])
}

var binaryPrefixes = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// formatDelta is formatBytes with a sign, "0B" for less than a byte.
func formatDelta(n float64) string {
	if math.Abs(n) < 0.5 {
		return "0B"
	}
	if n > 0 {
		return "+" + formatBytes(n)
	}
	return formatBytes(n)
}

// formatShare formats a fraction as a percentage.
func formatShare(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f < 0.0001:
		return "<0.01%"
	}
	return fmt.Sprintf("%.2f%%", 100*f)
}

// formatAge formats a duration without the zero units time.Duration
// prints: "1h", "30m", "1h30m", "90s" stays "1m30s".
func formatAge(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// callers formats the callers of a stack's leaf, innermost first, cut
// after a few frames: the table is for reading, -json has them all.
func callers(stack []string) string {
	const shown = 4
	if len(stack) <= 1 {
		return "-"
	}
	c := stack[1:]
	if len(c) <= shown {
		return strings.Join(c, " < ")
	}
	return fmt.Sprintf("%s < ... (%d more)", strings.Join(c[:shown], " < "), len(c)-shown)
}

// siteName is a leaf function for the table; a site may have no stack.
func siteName(function string) string {
	if function == "" {
		return "(no stack)"
	}
	return function
}

// heapName is a heap label for the table; runtime/pprof profiles have none.
func heapName(heap string) string {
	if heap == "" {
		return "-"
	}
	return heap
}

// commandPath returns path as a command line should name it: absolute,
// so the command works from any directory, and quoted for the shell.
func commandPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return shellQuote(path)
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
