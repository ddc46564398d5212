package pyroscope_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/leakhunt/profiler/pyroscope"
)

// Each invalid Config is an error naming the field at fault.
func TestConfigErrors(t *testing.T) {
	valid := func(edit func(*pyroscope.Config)) pyroscope.Config {
		c := pyroscope.Config{URL: "http://localhost:4040", ServiceName: "svc"}
		edit(&c)
		return c
	}
	manyLabels := map[string]string{}
	for i := range 28 {
		manyLabels[fmt.Sprint("l", i)] = "v"
	}
	cases := []struct {
		cfg  pyroscope.Config
		want string
	}{
		{valid(func(c *pyroscope.Config) { c.URL = "" }), "URL: must not be empty"},
		{valid(func(c *pyroscope.Config) { c.URL = "localhost:4040" }), `URL: scheme "localhost"; want http or https`},
		{valid(func(c *pyroscope.Config) { c.URL = "ftp://host" }), `URL: scheme "ftp"; want http or https`},
		{valid(func(c *pyroscope.Config) { c.URL = "/pyroscope" }), `URL: scheme ""; want http or https`},
		{valid(func(c *pyroscope.Config) { c.URL = "http:///path" }), "URL: must be absolute, with a host"},
		{valid(func(c *pyroscope.Config) { c.URL = "http://host:" }), "URL: empty port"},
		{valid(func(c *pyroscope.Config) { c.URL = "http://host:port" }), "URL: cannot be parsed"},
		{valid(func(c *pyroscope.Config) { c.URL = "http://host/?a=1" }), "URL: must not have a query"},
		{valid(func(c *pyroscope.Config) { c.URL = "http://host/#f" }), "URL: must not have a fragment"},
		{valid(func(c *pyroscope.Config) { c.URL = "http://host/push.v1.PusherService/Push" }), "URL: give the server's base URL, without the push route"},
		{valid(func(c *pyroscope.Config) { c.ServiceName = "" }), "ServiceName: must not be empty"},
		{valid(func(c *pyroscope.Config) { c.ServiceName = "\xff" }), "ServiceName: value is not valid UTF-8"},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"bad-name": "v"} }), `Labels["bad-name"]: name must match [a-zA-Z_][a-zA-Z0-9_]*`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"k8s.pod": "v"} }), `Labels["k8s.pod"]: name must match`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"1st": "v"} }), `Labels["1st"]: name must match`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"": "v"} }), `Labels[""]: name must match`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"__name__": "v"} }), `Labels["__name__"]: names beginning with "__" are Pyroscope's own`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"__tenant": "v"} }), `Labels["__tenant"]: names beginning with "__"`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"service_name": "v"} }), `Labels["service_name"]: set by ServiceName`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"heap": "v"} }), `Labels["heap"]: every sample carries its own heap label`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"env": ""} }), `Labels["env"]: value must not be empty`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"env": "\xffprod"} }), `Labels["env"]: value is not valid UTF-8`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{"env": strings.Repeat("v", 2049)} }), `Labels["env"]: value is 2049 bytes long; at most 2048`},
		{valid(func(c *pyroscope.Config) { c.Labels = map[string]string{strings.Repeat("n", 1025): "v"} }), "name is 1025 bytes long; at most 1024"},
		{valid(func(c *pyroscope.Config) { c.Labels = manyLabels }), "Labels: 28 labels, more than the 27"},
		{valid(func(c *pyroscope.Config) { c.TenantID = "team a" }), `TenantID: holds ' '`},
		{valid(func(c *pyroscope.Config) { c.TenantID = ".." }), `TenantID: ".." is not allowed`},
		{valid(func(c *pyroscope.Config) { c.TenantID = strings.Repeat("t", 151) }), "TenantID: 151 bytes long; at most 150"},
		{valid(func(c *pyroscope.Config) { c.BasicAuthPassword = "p" }), "BasicAuthPassword: set without BasicAuthUser"},
		{valid(func(c *pyroscope.Config) { c.BasicAuthUser, c.BearerToken = "u", "t" }), "BearerToken: set together with basic auth"},
		{valid(func(c *pyroscope.Config) { c.URL, c.BasicAuthUser = "http://u:p@host", "u" }), "URL: has a user and password, and BasicAuthUser or BasicAuthPassword is set too"},
		{valid(func(c *pyroscope.Config) { c.BearerToken = "t\n" }), "BearerToken: holds a control character"},
		{valid(func(c *pyroscope.Config) { c.BasicAuthUser, c.BasicAuthPassword = "a:b", "p" }), "BasicAuthUser: holds a colon or a control character"},
		{valid(func(c *pyroscope.Config) { c.Headers = map[string]string{"X Bad": "v"} }), `Headers["X Bad"]: not a valid header name`},
		{valid(func(c *pyroscope.Config) { c.Headers = map[string]string{"X-A": "a\r\nX-B: b"} }), `Headers["X-A"]: value holds a control character`},
		{valid(func(c *pyroscope.Config) { c.Headers = map[string]string{"content-type": "application/json"} }), `Headers["content-type"]: set by the exporter itself`},
		{valid(func(c *pyroscope.Config) { c.Headers = map[string]string{"Connect-Timeout-Ms": "1"} }), `Headers["Connect-Timeout-Ms"]: set by the exporter itself`},
		{valid(func(c *pyroscope.Config) { c.Headers, c.BearerToken = map[string]string{"Authorization": "x"}, "t" }), `Headers["Authorization"]: Authorization is set by basic auth or BearerToken already`},
		{valid(func(c *pyroscope.Config) { c.Headers, c.TenantID = map[string]string{"X-Scope-OrgID": "a"}, "b" }), `Headers["X-Scope-OrgID"]: X-Scope-OrgID is set by TenantID already`},
		{valid(func(c *pyroscope.Config) { c.Headers = map[string]string{"X-A": "1", "x-a": "2"} }), `Headers["x-a"]: given twice, in different cases`},
		{valid(func(c *pyroscope.Config) { c.MaxSamples = 15 }), "MaxSamples: 15; want 0 (for 16000) or at least 16"},
		{valid(func(c *pyroscope.Config) { c.MaxSamples = -1 }), "MaxSamples: -1"},
		{valid(func(c *pyroscope.Config) { c.MaxProfileBytes = 1000 }), "MaxProfileBytes: 1000; want 0 (for 4194304) or at least 16384"},
	}
	for _, tc := range cases {
		_, err := pyroscope.New(tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "pyroscope: invalid Config: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): error %v; want one holding %q", tc.cfg, err, tc.want)
		}
	}
}

// Every field at fault is named at once.
func TestConfigErrorsTogether(t *testing.T) {
	_, err := pyroscope.New(pyroscope.Config{URL: "ftp://host", Labels: map[string]string{"a-b": "v"}, MaxSamples: 1})
	for _, want := range []string{"URL:", "ServiceName:", `Labels["a-b"]:`, "MaxSamples:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v; want it to name %s", err, want)
		}
	}
}

// Valid configs, including headers the exporter leaves to the user when
// no field sets them.
func TestConfigValid(t *testing.T) {
	for _, cfg := range []pyroscope.Config{
		{URL: "http://localhost:4040", ServiceName: "svc"},
		{URL: "https://profiles-prod-001.grafana.net", ServiceName: "svc", BasicAuthUser: "123456", BasicAuthPassword: "glc_x"},
		{URL: "http://[::1]:4040/base/", ServiceName: "svc", Headers: map[string]string{"Authorization": "Custom x", "X-Scope-OrgID": "t"}},
		{URL: "http://h", ServiceName: "svc", Labels: map[string]string{"env": "prod", "_x": "1", "Region2": "eu"}, TenantID: "Team_1-a.b"},
		{URL: "http://h", ServiceName: "svc", BasicAuthUser: "only-a-user"},
	} {
		if _, err := pyroscope.New(cfg); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}
