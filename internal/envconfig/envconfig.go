// Package envconfig reads the profiler's configuration from environment
// variables, for package auto, which starts the profiler with no code
// change. The variables are documented in auto's package comment; this
// package keeps them apart from auto so that they can be tested without
// starting a profiler in the test binary.
package envconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/leakhunt/profiler"
	"github.com/leakhunt/profiler/pyroscope"
)

// The variables read.
const (
	Enabled       = "LEAKHUNT_ENABLED"
	SamplingRate  = "LEAKHUNT_SAMPLING_RATE"
	OutputDir     = "LEAKHUNT_OUTPUT_DIR"
	FlushInterval = "LEAKHUNT_FLUSH_INTERVAL"
	PyroscopeURL  = "LEAKHUNT_PYROSCOPE_URL"
	ServiceName   = "LEAKHUNT_SERVICE_NAME"
	Labels        = "LEAKHUNT_LABELS"
	TenantID      = "LEAKHUNT_PYROSCOPE_TENANT_ID"
	BasicAuthUser = "LEAKHUNT_PYROSCOPE_BASIC_AUTH_USER"
	BasicAuthPass = "LEAKHUNT_PYROSCOPE_BASIC_AUTH_PASSWORD"
	BearerToken   = "LEAKHUNT_PYROSCOPE_BEARER_TOKEN"
	Headers       = "LEAKHUNT_PYROSCOPE_HEADERS"

	otelServiceName = "OTEL_SERVICE_NAME"
)

// Read returns the options that the environment, as seen through lookup
// (os.LookupEnv), asks for, and whether the profiler is to run at all. The
// error names every invalid variable and its value, except the values of
// the credentials.
func Read(lookup func(string) (string, bool)) (opts []profiler.Option, enabled bool, err error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	var errs []error
	invalid := func(name, value string, err error) {
		errs = append(errs, fmt.Errorf("%s=%q: %w", name, value, err))
	}

	enabled = true
	if v := get(Enabled); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			invalid(Enabled, v, errors.New("want true or false"))
		}
		enabled = b || err != nil
	}
	if v := get(SamplingRate); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			invalid(SamplingRate, v, errors.New("want a number of bytes"))
		} else {
			opts = append(opts, profiler.WithSamplingRate(n))
		}
	}
	if v, set := lookup(OutputDir); set {
		if v = strings.TrimSpace(v); v == "" {
			opts = append(opts, profiler.WithoutFiles())
		} else {
			opts = append(opts, profiler.WithOutputDir(v))
		}
	}
	if v := get(FlushInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			invalid(FlushInterval, v, errors.New("want a Go duration such as 30s or 5m"))
		} else {
			opts = append(opts, profiler.WithFlushInterval(d))
		}
	}

	if url := get(PyroscopeURL); url != "" {
		cfg := pyroscope.Config{
			URL:               url,
			ServiceName:       serviceName(get),
			TenantID:          get(TenantID),
			BasicAuthUser:     get(BasicAuthUser),
			BasicAuthPassword: get(BasicAuthPass),
			BearerToken:       get(BearerToken),
		}
		var err error
		if cfg.Labels, err = pairs(get(Labels)); err != nil {
			invalid(Labels, get(Labels), err)
		}
		if cfg.Headers, err = pairs(get(Headers)); err != nil {
			// Header values may be secret: name the variable only.
			errs = append(errs, fmt.Errorf("%s: %w", Headers, err))
		}
		exp, err := pyroscope.New(cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", PyroscopeURL, err))
		} else {
			opts = append(opts, profiler.WithExporter(exp))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, enabled, err
	}
	return opts, enabled, nil
}

// serviceName is LEAKHUNT_SERVICE_NAME, else OTEL_SERVICE_NAME, else the
// executable's name.
func serviceName(get func(string) string) string {
	for _, name := range []string{ServiceName, otelServiceName} {
		if v := get(name); v != "" {
			return v
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return filepath.Base(os.Args[0])
	}
	return strings.TrimSuffix(filepath.Base(exe), ".exe")
}

// pairs parses "k=v,k=v" into a map; spaces around keys and values are
// dropped. Empty input is a nil map.
func pairs(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	m := make(map[string]string)
	i := 0
	for item := range strings.SplitSeq(s, ",") {
		i++
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			// The item itself is not quoted: it may be a secret.
			return nil, fmt.Errorf("item %d is not key=value; want k=v,k=v", i)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("key %q given twice", k)
		}
		m[k] = v
	}
	return m, nil
}
