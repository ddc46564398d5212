package pyroscope

import "encoding/binary"

// The push request is a protocol buffer of three small messages, written
// here by hand rather than with generated code: a protobuf runtime would be
// a large dependency for a few fields. From Pyroscope's
// api/push/v1/push.proto and api/types/v1/types.proto:
//
//	message PushRequest      { repeated RawProfileSeries series = 1; }
//	message RawProfileSeries { repeated types.v1.LabelPair labels = 1; repeated RawSample samples = 2; }
//	message LabelPair        { string name = 1; string value = 2; }
//	message RawSample        { bytes raw_profile = 1; string ID = 2; }
//
// Every field number is below 16, so each tag is one byte.
const (
	fieldPushRequestSeries = 1
	fieldSeriesLabels      = 1
	fieldSeriesSamples     = 2
	fieldLabelPairName     = 1
	fieldLabelPairValue    = 2
	fieldRawSampleProfile  = 1
	fieldRawSampleID       = 2

	wireBytes = 2 // the wire type of length-delimited fields
)

// A labelPair is one series label, as LabelPair sends it.
type labelPair struct{ name, value string }

// encodePushRequest returns a PushRequest of one series, with labels and
// one raw sample: the gzipped profile and its id. The size of each message
// is worked out first, so the profile, the bulk of it, is copied once.
func encodePushRequest(labels []labelPair, profile []byte, id string) []byte {
	sample := bytesFieldSize(len(profile)) + bytesFieldSize(len(id))
	series := bytesFieldSize(sample)
	for _, l := range labels {
		series += bytesFieldSize(labelPairSize(l))
	}
	b := make([]byte, 0, bytesFieldSize(series))

	b = appendLen(b, fieldPushRequestSeries, series)
	for _, l := range labels {
		b = appendLen(b, fieldSeriesLabels, labelPairSize(l))
		b = appendString(b, fieldLabelPairName, l.name)
		b = appendString(b, fieldLabelPairValue, l.value)
	}
	b = appendLen(b, fieldSeriesSamples, sample)
	b = appendLen(b, fieldRawSampleProfile, len(profile))
	b = append(b, profile...)
	return appendString(b, fieldRawSampleID, id)
}

func labelPairSize(l labelPair) int {
	return bytesFieldSize(len(l.name)) + bytesFieldSize(len(l.value))
}

// bytesFieldSize is the encoded size of a length-delimited field holding n
// bytes: a one-byte tag, the length and the bytes.
func bytesFieldSize(n int) int {
	return 1 + varintSize(uint64(n)) + n
}

func varintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendLen appends the tag and length of a length-delimited field whose n
// bytes follow.
func appendLen(b []byte, field, n int) []byte {
	b = appendTag(b, field, wireBytes)
	return binary.AppendUvarint(b, uint64(n))
}

func appendString(b []byte, field int, s string) []byte {
	b = appendLen(b, field, len(s))
	return append(b, s...)
}

func appendTag(b []byte, field, wire int) []byte {
	return append(b, byte(field<<3|wire))
}
