package pyroscope

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
)

// An Exporter pushes each profile it is given to a Pyroscope server, as a
// profiler.Exporter: see the package documentation for what it pushes. Make
// one with New, for one profiler run: its alloc_* baseline is the profile
// it last pushed, which a new run's profiles, counting from zero again,
// would be measured against.
//
// Export calls are serialized: one waits for the one before to end, or for
// its own context. Its errors name the endpoint, the HTTP status and the
// server's message, cut to one line of 256 bytes, and never hold a
// credential: every configured secret (the password, the bearer token, the
// values of secret-looking and long Headers) is scrubbed from their text.
// Its log lines name labels and count samples, and hold none either.
type Exporter struct {
	endpoint   string // the push URL, without user and password
	name       string // for String
	series     []labelPair
	reserved   map[string]bool // series label names, which sample labels must not take
	header     http.Header     // of every request
	client     *http.Client
	logger     *slog.Logger
	scrubber   scrubber
	maxSamples int
	maxBytes   int

	// turn is held by the Export running: a lock that a waiting Export
	// can give up on when its context ends. It guards the fields below.
	turn    chan struct{}
	base    baseline
	keys    *keyer
	renamed map[string]bool // sample labels whose renaming was logged
	folded  bool            // folding was logged
}

var _ profiler.Exporter = (*Exporter)(nil)

// String names the exporter in log lines: its endpoint and service, never
// a credential.
func (e *Exporter) String() string { return e.name }

// Export pushes p. Its alloc_* values are pushed as what was allocated
// since the last successful push; a push that fails leaves the baseline as
// it was, so the next one carries those allocations too. A profile with
// nothing to push (nothing in use, nothing allocated since) is not sent,
// and counts as pushed. Export retries network errors and 408, 429 and 5xx
// answers (but 501) within ctx, and returns an error when ctx ends or the
// server answers otherwise.
func (e *Exporter) Export(ctx context.Context, p profiler.Profile) error {
	select {
	case e.turn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("pyroscope: waiting for the export before: %w", ctx.Err())
	}
	defer func() { <-e.turn }()

	in, err := profile.ParseData(p.Data)
	if err != nil {
		return fmt.Errorf("pyroscope: reading profile: %w", err)
	}
	timeNanos := in.TimeNanos
	if timeNanos == 0 && !p.Time.IsZero() {
		timeNanos = p.Time.UnixNano()
	}
	duration := in.DurationNanos
	if e.base.set {
		duration = max(timeNanos-e.base.time, 0)
	}

	sites, renamed := mergeSamples(in, e.keys, e.reserved)
	e.logRenames(renamed)
	idx, names := cumulativeTypes(in.SampleType)
	pushed := e.base.delta(sites, idx, names)
	if len(pushed) == 0 {
		e.base.advance(sites, idx, names, timeNanos)
		return nil
	}
	enc, err := encodeSites(in, pushed, timeNanos, duration, e.maxSamples, e.maxBytes)
	if err != nil {
		return fmt.Errorf("pyroscope: %w", err)
	}
	e.logFolding(enc)
	if err := e.push(ctx, encodePushRequest(e.series, enc.data, newID())); err != nil {
		return err
	}
	e.base.advance(sites, idx, names, timeNanos)
	return nil
}

// logRenames logs, once per label, the sample labels renamed because a
// series label has their name.
func (e *Exporter) logRenames(renamed map[string]string) {
	for _, old := range sortedKeys(renamed) {
		if e.renamed[old] {
			continue
		}
		e.renamed[old] = true
		e.logger.Warn("pyroscope: sample label renamed, as a series label of the same name would replace it in Pyroscope",
			"exporter", e.name, "label", old, "pushed_as", renamed[old])
	}
}

// logFolding logs, the first time it happens, that samples were folded to
// fit the server's limits.
func (e *Exporter) logFolding(enc encoding) {
	if enc.folded == 0 || e.folded {
		return
	}
	e.folded = true
	e.logger.Warn("pyroscope: profile over the server's limits: its smallest samples are folded under a "+foldedFrame+" frame, totals kept (logged once)",
		"exporter", e.name, "sites", enc.sites, "folded", enc.folded, "samples_pushed", enc.samples,
		"max_samples", e.maxSamples, "bytes", enc.size, "max_profile_bytes", e.maxBytes)
}

// newID returns a random UUID (version 4), which names the push in the
// server's logs.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
