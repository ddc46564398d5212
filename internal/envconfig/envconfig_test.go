package envconfig

import (
	"strings"
	"testing"
)

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func TestReadDefaults(t *testing.T) {
	opts, enabled, err := Read(lookupIn(nil))
	if err != nil || !enabled || len(opts) != 0 {
		t.Errorf("Read of an empty environment = %d options, %v, %v; want none, enabled, no error", len(opts), enabled, err)
	}
}

func TestReadValid(t *testing.T) {
	env := map[string]string{
		SamplingRate:  "4096",
		OutputDir:     "",
		FlushInterval: "15s",
		PyroscopeURL:  "http://127.0.0.1:4040",
		ServiceName:   "checkout",
		Labels:        "env=prod, region = eu-west-1",
		Headers:       "X-Extra=1",
	}
	opts, enabled, err := Read(lookupIn(env))
	if err != nil || !enabled {
		t.Fatalf("Read = %v, %v", enabled, err)
	}
	// rate, no files, interval, exporter
	if len(opts) != 4 {
		t.Errorf("Read gave %d options, want 4", len(opts))
	}
	for _, off := range []string{"false", "0", "FALSE"} {
		if _, enabled, err := Read(lookupIn(map[string]string{Enabled: off})); enabled || err != nil {
			t.Errorf("%s=%s: enabled %v, err %v; want disabled", Enabled, off, enabled, err)
		}
	}
}

// Every invalid variable is named in one error, with its value unless the
// value may be secret.
func TestReadInvalid(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	env := map[string]string{
		Enabled:       "maybe",
		SamplingRate:  "lots",
		FlushInterval: "1 minute",
		PyroscopeURL:  "ftp://user:" + secret + "@host",
		Labels:        "env",
		Headers:       "Authorization " + secret,
		BasicAuthPass: secret,
	}
	_, _, err := Read(lookupIn(env))
	if err == nil {
		t.Fatal("Read of invalid variables succeeded")
	}
	msg := err.Error()
	for _, name := range []string{Enabled, SamplingRate, FlushInterval, PyroscopeURL, Labels, Headers, `"lots"`, `"1 minute"`} {
		if !strings.Contains(msg, name) {
			t.Errorf("error %q does not name %s", msg, name)
		}
	}
	if strings.Contains(msg, secret) {
		t.Errorf("error %q holds a credential", msg)
	}
}

func TestPairs(t *testing.T) {
	m, err := pairs(" a=1 ,b = x=y,c=")
	if err != nil || len(m) != 3 || m["a"] != "1" || m["b"] != "x=y" || m["c"] != "" {
		t.Errorf("pairs = %v, %v", m, err)
	}
	for _, bad := range []string{"a", "=1", "a=1,,b=2", "a=1,a=2"} {
		if _, err := pairs(bad); err == nil {
			t.Errorf("pairs(%q) succeeded", bad)
		}
	}
}
