package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/leakhunt/profiler/internal/pproftest"
)

// TestEndToEndRetainers runs a program that leaks Go memory under the real
// profiler (testdata/retainleak: a test binary cannot take a retainers
// profile, being linked without its symbol table) and ranks the directory
// it wrote, where a retainers profile lies beside the heap profiles. Rank
// without -retainers ranks the heap profiles alone and names the
// retainers profile in a note; with it, the leak's site is held three
// quarters by a global map and a quarter by a goroutine, to the byte, as
// the program holds them: every allocation is sampled. The leak is
// allocated by a function inlined into its caller, which the heap profile
// names and the retainers profile does not.
func TestEndToEndRetainers(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "retainleak")
	if out, err := exec.Command(pproftest.GoTool(), "build", "-o", bin, "./testdata/retainleak").CombinedOutput(); err != nil {
		t.Fatalf("building testdata/retainleak: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, dir).CombinedOutput(); err != nil {
		t.Fatalf("retainleak: %v\n%s", err, out)
	}
	retainers, err := filepath.Glob(filepath.Join(dir, "retainers-*.pb.gz"))
	if err != nil || len(retainers) != 1 {
		t.Fatalf("retainers profiles %q, %v; want one", retainers, err)
	}
	leak := "main.newSession"
	const (
		registryBytes = 8 * 15 * 256 // rounds, sessions of a round, bytes of one
		keeperBytes   = 8 * 5 * 256
	)

	status, out, errOut := leakhunt(t, "rank", "-n", "0", dir)
	if want := "leakhunt: note: " + retainers[0] + " is a retainers profile: -retainers " + retainers[0] + " shows what holds each site's objects\n"; status != 0 || errOut != want {
		t.Fatalf("rank: status %d, stderr\n%q\nwant 0 and\n%q", status, errOut, want)
	}
	if !regexp.MustCompile(`(?m)^\d+ .*  go +main\.newSession  `).MatchString(out) || strings.Contains(out, "what holds them") {
		t.Errorf("rank does not show %s, or shows what holds it:\n%s", leak, out)
	}

	status, out, errOut = leakhunt(t, "rank", "-n", "0", "-retainers", retainers[0], dir)
	if status != 0 || errOut != "" {
		t.Fatalf("rank -retainers: status %d, stderr:\n%s", status, errOut)
	}
	t.Logf("leakhunt rank -n 0 -retainers %s %s\n%s", retainers[0], dir, out)
	held := regexp.MustCompile(`(?m)^  \d+ +main\.newSession +held by main\.registry \(75%\), main\.keeper \(goroutine \d+, chan receive\) \(25%\)$`)
	if !held.MatchString(out[strings.Index(out, "what holds them"):]) {
		t.Errorf("rank -retainers does not show %s held by main.registry (75%%) and main.keeper (25%%)", leak)
	}

	status, out, errOut = leakhunt(t, "rank", "-json", "-n", "0", "-retainers", retainers[0], dir)
	if status != 0 {
		t.Fatalf("rank -json -retainers: status %d, stderr:\n%s", status, errOut)
	}
	var sites []siteJSON
	if err := json.Unmarshal([]byte(out), &sites); err != nil {
		t.Fatal(err)
	}
	var site *siteJSON
	for i := range sites {
		if sites[i].Function == leak {
			site = &sites[i]
		}
	}
	if site == nil {
		t.Fatalf("no site %s in\n%s", leak, out)
	}
	if site.HeldBytes == nil || *site.HeldBytes != registryBytes+keeperBytes || len(site.HeldBy) != 2 {
		t.Fatalf("%s: held bytes %v by %+v; want %d by two roots", leak, site.HeldBytes, site.HeldBy, registryBytes+keeperBytes)
	}
	registry, keeper := site.HeldBy[0], site.HeldBy[1]
	if registry.Root != "main.registry" || registry.Bytes != registryBytes ||
		strings.Join(registry.Chain, " | ") != "[held by] main.registry | [map] map[int]*main.session" {
		t.Errorf("first root %+v, want main.registry with %d bytes, through the map", registry, registryBytes)
	}
	// The slice keeper appends to: each session at its own offset in it.
	if !regexp.MustCompile(`^main\.keeper \(goroutine \d+, chan receive\)$`).MatchString(keeper.Root) || keeper.Bytes != keeperBytes ||
		len(keeper.Chain) != 2 || keeper.Chain[0] != "[held by] "+keeper.Root || !regexp.MustCompile(`^\[\d+ B object\] \+\d+$`).MatchString(keeper.Chain[1]) {
		t.Errorf("second root %+v, want main.keeper's frame with %d bytes, through a slice", keeper, keeperBytes)
	}

	// Inlined, the leak's function is no frame of the retainers profile,
	// whose frames are named by the function compiled: the match went
	// through files and lines. Not inlined (say, under other flags), the
	// names agree; either way the figures above must hold.
	for _, f := range pproftest.Parse(t, retainers[0]).Function {
		if f.Name == leak {
			return
		}
	}
	t.Logf("%s is inlined into main.main: the retainers profile names main.main", leak)
}
