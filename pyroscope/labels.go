package pyroscope

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Pyroscope turns every string label of a sample into a series label, next
// to the series labels of the push, and when both name the same label the
// series label wins for every sample: a pprof label tenant=acme would read
// tenant=<static value> after the push, with no sign of it. So the series
// label names (__name__, service_name and the static Labels) are reserved,
// and a sample label that takes one is renamed sample_<name>.

// Series and sample labels every pushed profile has.
const (
	labelMetricName  = "__name__"     // Pyroscope's name of the profile kind
	profileName      = "memory"       // the __name__ of heap profiles, as Go clients send them
	labelServiceName = "service_name" // the service a profile is filed under
	labelHeap        = "heap"         // the profiler's sample label naming the source

	renamedPrefix = "sample_"
)

// checkStaticLabel checks a static series label: a name Pyroscope keeps
// as it is, none it or a sample sets, and a value it accepts.
func checkStaticLabel(name, value string) error {
	switch {
	case !isLabelName(name):
		return errors.New("name must match [a-zA-Z_][a-zA-Z0-9_]*")
	case len(name) > maxLabelNameLen:
		return fmt.Errorf("name is %d bytes long; at most %d", len(name), maxLabelNameLen)
	case strings.HasPrefix(name, "__"):
		return errors.New(`names beginning with "__" are Pyroscope's own`)
	case name == labelServiceName:
		return errors.New("set by ServiceName")
	case name == labelHeap:
		return errors.New("every sample carries its own heap label, which a series label would replace")
	}
	return checkLabelValue(value)
}

// checkLabelValue checks a label value as Pyroscope does, and rejects an
// empty one, which in Pyroscope's (and Prometheus's) model is no label.
func checkLabelValue(v string) error {
	switch {
	case v == "":
		return errors.New("value must not be empty")
	case len(v) > maxLabelValueLen:
		return fmt.Errorf("value is %d bytes long; at most %d", len(v), maxLabelValueLen)
	case !utf8.ValidString(v):
		return errors.New("value is not valid UTF-8")
	}
	return nil
}

// isLabelName reports whether s is a label name in the classic Prometheus
// form, [a-zA-Z_][a-zA-Z0-9_]*. Pyroscope accepts any UTF-8 name when its
// label sanitization is off (v2's default), rewrites dots to underscores
// when it is on, and rejects the rest then: only this form is kept as it
// is by every server.
func isLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// sampleLabelName returns the name a sample label named key is pushed
// under: key itself, or, if a series label takes it, key with as many
// sample_ prefixes as make it free.
func sampleLabelName(key string, reserved map[string]bool) string {
	for reserved[key] {
		key = renamedPrefix + key
	}
	return key
}
