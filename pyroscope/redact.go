package pyroscope

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// An Exporter's errors are counted and logged by the profiler, and may be
// logged again by whoever reads them, so they must never hold a credential.
// Errors are built from parts that hold none (the endpoint without user
// and password, status codes, label names), but a server or a proxy may
// echo a request header in an error body, and a transport error may quote
// more than expected: every error text is scrubbed of every configured
// secret before it leaves the Exporter.

// minSecretLen is the length from which any header value given in
// Config.Headers counts as a secret, whatever the header's name: tokens
// are long, and shorter values (a version, a flag) scrubbed from a message
// would only garble it.
const minSecretLen = 8

// maxMessageLen bounds the server's message quoted in an error.
const maxMessageLen = 256

const redacted = "[redacted]"

// looksSecret reports whether a canonical header name is one whose value
// is a credential.
func looksSecret(name string) bool {
	name = strings.ToLower(name)
	if name == "authorization" || name == "proxy-authorization" || name == "cookie" {
		return true
	}
	for _, word := range []string{"auth", "token", "key", "secret", "password", "credential", "signature"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

// A scrubber replaces every occurrence of a set of secrets with
// "[redacted]".
type scrubber struct {
	r *strings.Replacer
}

func newScrubber(secrets []string) scrubber {
	secrets = slices.DeleteFunc(slices.Clone(secrets), func(s string) bool { return s == "" })
	// The replacer tries the secrets in order at each position: the
	// longest first, so that one holding another is replaced whole.
	slices.SortFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	secrets = slices.Compact(secrets)
	if len(secrets) == 0 {
		return scrubber{}
	}
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, redacted)
	}
	return scrubber{strings.NewReplacer(pairs...)}
}

func (s scrubber) scrub(text string) string {
	if s.r == nil {
		return text
	}
	return s.r.Replace(text)
}

// oneLine returns text as one line of valid UTF-8, every run of spaces and
// control characters made one space, and, if limit > 0, at most limit
// bytes long: cut at a character boundary, with "…" where it was cut.
// Scrub before cutting: a secret cut short would no longer match.
func oneLine(text string, limit int) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(text, "\uFFFD") {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
		if limit > 0 && b.Len() > limit {
			break
		}
	}
	line := b.String()
	if limit <= 0 || len(line) <= limit {
		return line
	}
	const ellipsis = "…"
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + ellipsis
}
