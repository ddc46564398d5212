// Package auto starts the profiler from environment variables, so that one
// import line is the whole change to a service:
//
//	import _ "github.com/leakhunt/profiler/auto"
//
// With no variable set, it profiles as profiler.Start() does: a profile a
// second after start and then every minute, in ./heapprofiles. The
// variables:
//
//	LEAKHUNT_ENABLED          false turns the profiler off (default true)
//	LEAKHUNT_SAMPLING_RATE    mean bytes between samples (default 524288)
//	LEAKHUNT_OUTPUT_DIR       directory of the profile files (default heapprofiles);
//	                          set and empty: no files
//	LEAKHUNT_FLUSH_INTERVAL   a Go duration, at least 1s (default 60s)
//	LEAKHUNT_PYROSCOPE_URL    push every profile to this Pyroscope server
//	                          (default: no push); the variables below need it
//	LEAKHUNT_SERVICE_NAME     service_name in Pyroscope (default OTEL_SERVICE_NAME,
//	                          then the executable's name)
//	LEAKHUNT_LABELS           static series labels, k=v,k=v
//	LEAKHUNT_PYROSCOPE_TENANT_ID             X-Scope-OrgID, for a multi-tenant server
//	LEAKHUNT_PYROSCOPE_BASIC_AUTH_USER       basic auth (Grafana Cloud: the user id)
//	LEAKHUNT_PYROSCOPE_BASIC_AUTH_PASSWORD   basic auth (Grafana Cloud: an API token)
//	LEAKHUNT_PYROSCOPE_BEARER_TOKEN          bearer token
//	LEAKHUNT_PYROSCOPE_HEADERS               extra headers, k=v,k=v
//
// The profiler starts when the package is initialized, before main runs.
// If a variable is invalid, or the profiler cannot start (an output
// directory that cannot be created, say), one line at level ERROR says so
// through slog's default logger, naming each invalid variable, and the
// program carries on without the profiler: it is never crashed or stopped
// by its profiler's configuration. Credentials never appear in that line
// or any other.
//
// Logging goes to whatever slog.Default() is at the time of each line, so
// a program that sets its own default logger in main gets the profiler's
// lines in its format.
//
// # At exit
//
// The package installs no signal handler: a program's exit code and its
// response to SIGTERM and SIGINT stay exactly what they were. Go runs no
// code of a library at exit, so the profile taken at exit is the last
// periodic one: what the program did after it, at most one flush interval,
// is in no profile. Every profile written or pushed is complete (files are
// written to a temporary name and renamed); a push cut short by the exit
// is simply not stored. To bound what is missed, shorten
// LEAKHUNT_FLUSH_INTERVAL; a program that has a shutdown path of its own
// can stop the profiler there, which writes and pushes a final profile:
//
//	if p := auto.Profiler(); p != nil {
//		p.Stop()
//	}
//
// A handler for SIGTERM in the library could not keep that promise: Go
// cannot tell whether the program handles the signal itself, and raising
// it again after the final profile would deliver it twice to a program
// that does (many treat a second signal as a demand to exit at once, with
// another exit code) or, not raising it, keep alive one that does not.
package auto

import (
	"context"
	"log/slog"
	"os"

	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/internal/envconfig"
)

var started *profiler.Profiler

func init() {
	opts, enabled, err := envconfig.Read(os.LookupEnv)
	if err == nil && !enabled {
		return
	}
	if err == nil {
		opts = append(opts, profiler.WithLogger(slog.New(currentDefault{})))
		started, err = profiler.Start(opts...)
	}
	if err != nil {
		slog.Error("leakhunt: heap profiler not started", "err", err)
	}
}

// Profiler returns the profiler the environment started, or nil if it is
// disabled or could not start.
func Profiler() *profiler.Profiler { return started }

// currentDefault is a slog.Handler that hands each record to the handler
// of slog.Default() at the time: the profiler is started before main can
// set the program's own default logger.
type currentDefault struct{}

func (currentDefault) Enabled(ctx context.Context, l slog.Level) bool {
	return slog.Default().Handler().Enabled(ctx, l)
}

func (currentDefault) Handle(ctx context.Context, r slog.Record) error {
	return slog.Default().Handler().Handle(ctx, r)
}

func (currentDefault) WithAttrs(attrs []slog.Attr) slog.Handler {
	return slog.Default().Handler().WithAttrs(attrs)
}

func (currentDefault) WithGroup(name string) slog.Handler {
	return slog.Default().Handler().WithGroup(name)
}
