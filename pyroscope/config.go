package pyroscope

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Pyroscope's default limits on one profile (its -validation.* flags),
// which an Exporter holds its profiles to unless told otherwise.
const (
	DefaultMaxSamples      = 16000   // -validation.max-profile-stacktrace-samples
	DefaultMaxProfileBytes = 4 << 20 // -validation.max-profile-size-bytes, uncompressed

	minMaxSamples      = 16
	minMaxProfileBytes = 16 << 10
)

// Pyroscope's default limits on labels (-validation.max-length-label-name,
// -validation.max-length-label-value, -validation.max-label-names-per-series).
// A profile's series is its series labels plus its samples' string labels:
// __name__, service_name and heap are always among them.
const (
	maxLabelNameLen  = 1024
	maxLabelValueLen = 2048
	maxStaticLabels  = 30 - 3
)

// pushPath is the connect route of push.v1.PusherService's Push method.
const pushPath = "push.v1.PusherService/Push"

// Config configures an Exporter. URL and ServiceName are required; every
// other field's zero value means the documented default. New validates it
// once and copies what it needs: changing a Config afterwards changes no
// Exporter.
type Config struct {
	// URL is the server's base URL, such as http://localhost:4040 or
	// https://profiles-prod-001.grafana.net: absolute, http or https, with
	// no query or fragment. A path is kept as a prefix of the push route,
	// for a server behind a proxy that routes by path. User and password
	// in the URL are taken as basic auth, and never sent in the URL.
	URL string

	// ServiceName is the service_name series label, the name a profile is
	// found under in Pyroscope.
	ServiceName string

	// Labels are static series labels, such as env, region or pod. A name
	// must match [a-zA-Z_][a-zA-Z0-9_]*, which every Pyroscope accepts
	// unchanged (some rewrite dots, some keep them), must not begin with
	// "__", and must not be service_name or heap, which a profile sets
	// itself. A value must be non-empty UTF-8. At most 27 labels: Pyroscope
	// takes 30 label names per series by default, three of them being
	// __name__, service_name and heap.
	Labels map[string]string

	// TenantID is sent as the X-Scope-OrgID header, for a server with
	// multi-tenancy on. The default sends none.
	TenantID string

	// BasicAuthUser and BasicAuthPassword are sent as basic auth: for
	// Grafana Cloud Profiles, the user (instance) id and an access policy
	// token.
	BasicAuthUser     string
	BasicAuthPassword string

	// BearerToken is sent as "Authorization: Bearer <token>". It cannot be
	// combined with basic auth.
	BearerToken string

	// Headers are extra request headers, such as those a proxy asks for.
	// They cannot set what the exporter sets itself: Content-Type,
	// Content-Length, Content-Encoding, Connect-*, Host, and Authorization
	// or X-Scope-OrgID when the fields above set them. Values of headers
	// whose names look like credentials (Authorization, Cookie, or names
	// holding "auth", "token", "key", "secret", "password", "credential"
	// or "signature"), and every value of 8 bytes or more, are treated as
	// secrets: see Exporter.
	Headers map[string]string

	// Client sends the requests. The default is a client of its own with
	// dial, TLS handshake and response header timeouts, and no overall
	// timeout: the context of each Export bounds it.
	Client *http.Client

	// Logger receives the rare notes of an Exporter: a sample label
	// renamed (see Exporter), samples folded to fit the server's limits.
	// The default is slog.Default().
	Logger *slog.Logger

	// MaxSamples bounds the samples of a pushed profile; beyond it the
	// smallest are folded (see Exporter). At least 16; the default is
	// 16000, Pyroscope's default limit.
	MaxSamples int

	// MaxProfileBytes bounds the size of a pushed profile, uncompressed,
	// which is what Pyroscope limits. At least 16 KiB; the default is
	// 4 MiB, Pyroscope's default limit.
	MaxProfileBytes int
}

// New validates cfg and returns an Exporter for it. An invalid Config is an
// error that names each field at fault; it never quotes a credential.
func New(cfg Config) (*Exporter, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	base, urlUser, urlPassword, hasUserinfo, err := parseBaseURL(cfg.URL)
	if err != nil {
		errs = append(errs, err)
	}
	user, password := cfg.BasicAuthUser, cfg.BasicAuthPassword
	if hasUserinfo {
		if user != "" || password != "" {
			fail("URL: has a user and password, and BasicAuthUser or BasicAuthPassword is set too; give them one way")
		}
		user, password = urlUser, urlPassword
	}
	basic := user != "" || password != ""
	if password != "" && user == "" {
		fail("BasicAuthPassword: set without BasicAuthUser")
	}
	if strings.Contains(user, ":") || !validHeaderValue(user) {
		// RFC 7617: the user id ends at the first colon.
		fail("BasicAuthUser: holds a colon or a control character")
	}
	if basic && cfg.BearerToken != "" {
		fail("BearerToken: set together with basic auth; give one or the other")
	}
	if cfg.ServiceName == "" {
		fail("ServiceName: must not be empty")
	} else if err := checkLabelValue(cfg.ServiceName); err != nil {
		fail("ServiceName: %v", err)
	}
	if cfg.TenantID != "" {
		if err := checkTenantID(cfg.TenantID); err != nil {
			fail("TenantID: %v", err)
		}
	}

	series := []labelPair{{labelMetricName, profileName}, {labelServiceName, cfg.ServiceName}}
	for _, name := range sortedKeys(cfg.Labels) {
		if err := checkStaticLabel(name, cfg.Labels[name]); err != nil {
			fail("Labels[%q]: %v", name, err)
			continue
		}
		series = append(series, labelPair{name, cfg.Labels[name]})
	}
	if len(cfg.Labels) > maxStaticLabels {
		fail("Labels: %d labels, more than the %d a series has room for (Pyroscope takes 30 label names per series by default, of which __name__, service_name and heap are taken)",
			len(cfg.Labels), maxStaticLabels)
	}
	slices.SortFunc(series, func(a, b labelPair) int { return strings.Compare(a.name, b.name) })

	header := http.Header{}
	var secrets []string
	for _, name := range sortedKeys(cfg.Headers) {
		value := cfg.Headers[name]
		canonical := http.CanonicalHeaderKey(name)
		switch {
		case !isToken(name):
			fail("Headers[%q]: not a valid header name", name)
			continue
		case !validHeaderValue(value):
			fail("Headers[%q]: value holds a control character", name)
			continue
		case isExporterHeader(canonical):
			fail("Headers[%q]: set by the exporter itself", name)
			continue
		case canonical == "Authorization" && (basic || cfg.BearerToken != ""):
			fail("Headers[%q]: Authorization is set by basic auth or BearerToken already", name)
			continue
		case canonical == "X-Scope-Orgid" && cfg.TenantID != "":
			fail("Headers[%q]: X-Scope-OrgID is set by TenantID already", name)
			continue
		case header[canonical] != nil:
			fail("Headers[%q]: given twice, in different cases", name)
			continue
		}
		header.Set(canonical, value)
		if looksSecret(canonical) || len(value) >= minSecretLen {
			secrets = append(secrets, value)
		}
	}
	switch {
	case basic:
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		header.Set("Authorization", "Basic "+auth)
		secrets = append(secrets, password, auth)
	case cfg.BearerToken != "":
		if !validHeaderValue(cfg.BearerToken) {
			fail("BearerToken: holds a control character")
		}
		header.Set("Authorization", "Bearer "+cfg.BearerToken)
		secrets = append(secrets, cfg.BearerToken)
	}
	if cfg.TenantID != "" {
		header.Set("X-Scope-OrgID", cfg.TenantID)
	}
	header.Set("Content-Type", contentTypeProto)
	header.Set("Connect-Protocol-Version", "1")
	if header.Get("User-Agent") == "" {
		header.Set("User-Agent", userAgent)
	}

	maxSamples, maxBytes := cfg.MaxSamples, cfg.MaxProfileBytes
	if maxSamples == 0 {
		maxSamples = DefaultMaxSamples
	} else if maxSamples < minMaxSamples {
		fail("MaxSamples: %d; want 0 (for %d) or at least %d", maxSamples, DefaultMaxSamples, minMaxSamples)
	}
	if maxBytes == 0 {
		maxBytes = DefaultMaxProfileBytes
	} else if maxBytes < minMaxProfileBytes {
		fail("MaxProfileBytes: %d; want 0 (for %d) or at least %d", maxBytes, DefaultMaxProfileBytes, minMaxProfileBytes)
	}

	if err := errors.Join(errs...); err != nil {
		// The messages name fields, headers and labels, and quote no
		// value: no credential.
		return nil, fmt.Errorf("pyroscope: invalid Config: %w", err)
	}

	client, logger := cfg.Client, cfg.Logger
	if client == nil {
		client = defaultClient()
	}
	if logger == nil {
		logger = slog.Default()
	}
	e := &Exporter{
		endpoint:   base.JoinPath(pushPath).String(),
		name:       fmt.Sprintf("pyroscope %s %s=%s", base, labelServiceName, cfg.ServiceName),
		series:     series,
		reserved:   make(map[string]bool, len(series)),
		header:     header,
		client:     client,
		logger:     logger,
		scrubber:   newScrubber(secrets),
		maxSamples: maxSamples,
		maxBytes:   maxBytes,
		turn:       make(chan struct{}, 1),
		renamed:    make(map[string]bool),
		keys:       newKeyer(),
	}
	for _, l := range series {
		e.reserved[l.name] = true
	}
	return e, nil
}

// parseBaseURL checks the server's base URL and returns it without its
// user and password, which it returns apart.
func parseBaseURL(raw string) (base *url.URL, user, password string, hasUserinfo bool, err error) {
	if raw == "" {
		return nil, "", "", false, errors.New("URL: must not be empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the URL, and its cause may quote a piece of
		// it, such as a bad escape: either may be of a password.
		if strings.Contains(raw, "@") {
			return nil, "", "", false, errors.New("URL: cannot be parsed")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", "", false, fmt.Errorf("URL: cannot be parsed: %v", err)
	}
	if u.User != nil {
		user = u.User.Username()
		password, _ = u.User.Password()
		hasUserinfo = true
		u.User = nil
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "", "", false, fmt.Errorf("URL: scheme %q; want http or https", u.Scheme)
	case u.Host == "" || u.Opaque != "":
		return nil, "", "", false, errors.New("URL: must be absolute, with a host")
	case u.RawQuery != "" || u.ForceQuery:
		return nil, "", "", false, errors.New("URL: must not have a query")
	case u.Fragment != "":
		return nil, "", "", false, errors.New("URL: must not have a fragment")
	}
	if _, port, err := net.SplitHostPort(u.Host); err == nil && port == "" {
		return nil, "", "", false, errors.New("URL: empty port")
	}
	if strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/"+pushPath) {
		return nil, "", "", false, errors.New("URL: give the server's base URL, without the push route")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u, user, password, hasUserinfo, nil
}

// checkTenantID applies the rules of the tenant ids Pyroscope accepts
// (grafana/dskit's tenant.ValidTenantID): at most 150 letters, digits and
// !-_.*'(), and neither "." nor "..".
func checkTenantID(id string) error {
	if len(id) > 150 {
		return fmt.Errorf("%d bytes long; at most 150", len(id))
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%q is not allowed", id)
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("!-_.*'()", r)) {
			return fmt.Errorf("holds %q; allowed are letters, digits and !-_.*'()", r)
		}
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110), the form of a
// header name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s can be sent as a header value: valid
// UTF-8 with no control character but tab, as net/http requires.
func validHeaderValue(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isExporterHeader reports whether the exporter sets the canonical header
// name itself, or the transport does.
func isExporterHeader(name string) bool {
	switch name {
	case "Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Host", "Connection", "Te", "Trailer", "Upgrade":
		return true
	}
	return strings.HasPrefix(name, "Connect-")
}

// defaultClient returns a client whose transport bounds each stage that can
// hang on an unresponsive server. It has no overall Timeout: the context of
// each Export bounds a push, retries included, and a Timeout shorter than
// that would cut a slow upload the context still allows.
func defaultClient() *http.Client {
	t, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		t = t.Clone()
	} else {
		// A program replaced the default transport with its own kind:
		// start from net/http's defaults.
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, MaxIdleConns: 100}
	}
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConnsPerHost = 2
	return &http.Client{Transport: t}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
