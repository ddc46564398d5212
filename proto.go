package profiler

// Appending the pprof protocol buffer (github.com/google/pprof's
// proto/profile.proto) by hand: the messages are few and flat, and writing
// them straight into a reused buffer costs a fraction of building a
// profile.Profile and encoding it, which allocates per sample, label and
// location on every flush.

// Field numbers of profile.proto.
const (
	// Profile
	fieldSampleType        = 1
	fieldSample            = 2
	fieldMapping           = 3
	fieldLocation          = 4
	fieldFunction          = 5
	fieldStringTable       = 6
	fieldTimeNanos         = 9
	fieldDurationNanos     = 10
	fieldPeriodType        = 11
	fieldPeriod            = 12
	fieldComment           = 13
	fieldDefaultSampleType = 14

	// ValueType
	fieldValueTypeType = 1
	fieldValueTypeUnit = 2

	// Sample
	fieldSampleLocationID = 1
	fieldSampleValue      = 2
	fieldSampleLabel      = 3

	// Label
	fieldLabelKey     = 1
	fieldLabelStr     = 2
	fieldLabelNum     = 3
	fieldLabelNumUnit = 4

	// Mapping
	fieldMappingID              = 1
	fieldMappingStart           = 2
	fieldMappingLimit           = 3
	fieldMappingOffset          = 4
	fieldMappingFilename        = 5
	fieldMappingBuildID         = 6
	fieldMappingHasFunctions    = 7
	fieldMappingHasFilenames    = 8
	fieldMappingHasLineNumbers  = 9
	fieldMappingHasInlineFrames = 10

	// Location
	fieldLocationID        = 1
	fieldLocationMappingID = 2
	fieldLocationAddress   = 3
	fieldLocationLine      = 4

	// Line
	fieldLineFunctionID = 1
	fieldLineLine       = 2

	// Function
	fieldFunctionID         = 1
	fieldFunctionName       = 2
	fieldFunctionSystemName = 3
	fieldFunctionFilename   = 4
)

const (
	wireVarint = 0
	wireBytes  = 2
)

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendTag(b []byte, field, wire int) []byte {
	return appendVarint(b, uint64(field)<<3|uint64(wire))
}

// appendUint appends a varint field, omitted when zero as proto3 does.
func appendUint(b []byte, field int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return appendVarint(appendTag(b, field, wireVarint), v)
}

// appendInt appends an int64 field; negative values take ten bytes, as
// protobuf encodes them.
func appendInt(b []byte, field int, v int64) []byte { return appendUint(b, field, uint64(v)) }

func appendBool(b []byte, field int, v bool) []byte {
	if !v {
		return b
	}
	return appendUint(b, field, 1)
}

// appendBytes appends a length-delimited field: a string, a nested message
// or a packed list.
func appendBytes(b []byte, field int, p []byte) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(p)))
	return append(b, p...)
}

// appendMessage appends a nested message built by fill, writing it in place
// and then its length before it, so nothing is built twice.
func appendMessage(b []byte, field int, fill func([]byte) []byte) []byte {
	b = appendTag(b, field, wireBytes)
	start := len(b)
	b = fill(b)
	n := len(b) - start
	// Shift the body right by the length's size and write the length.
	var lenBuf [10]byte
	l := appendVarint(lenBuf[:0], uint64(n))
	b = append(b, l...)
	copy(b[start+len(l):], b[start:start+n])
	copy(b[start:], l)
	return b
}
