package profiler

// The pprof protocol buffer (github.com/google/pprof's proto/profile.proto),
// written and read by hand: the messages are few and flat, and writing them
// straight into a reused buffer costs a fraction of building a
// profile.Profile and encoding it, which allocates per sample, label and
// location on every profile. Reading likewise indexes a profile in place
// rather than building a profile.Profile of it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

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

// appendStrLabel appends a Label with a string value; key and value are
// string table indices.
func appendStrLabel(b []byte, key, value int64) []byte {
	return appendMessage(b, fieldSampleLabel, func(b []byte) []byte {
		b = appendInt(b, fieldLabelKey, key)
		return appendInt(b, fieldLabelStr, value)
	})
}

// appendNumLabel appends a Label with a numeric value and its unit.
func appendNumLabel(b []byte, key, num, unit int64) []byte {
	return appendMessage(b, fieldSampleLabel, func(b []byte) []byte {
		b = appendInt(b, fieldLabelKey, key)
		b = appendInt(b, fieldLabelNum, num)
		return appendInt(b, fieldLabelNumUnit, unit)
	})
}

const (
	wireFixed64 = 1
	wireFixed32 = 5
)

var errTruncated = errors.New("truncated protocol buffer")

// field is one field of a message as read: its number and wire type, and
// its value, a number or, for a length-delimited field, its bytes.
type field struct {
	num, wire int
	v         uint64
	data      []byte
}

// readField reads the field at the start of b and returns it with the rest
// of b.
func readField(b []byte) (field, []byte, error) {
	key, n := binary.Uvarint(b)
	if n <= 0 {
		return field{}, nil, errTruncated
	}
	b = b[n:]
	f := field{num: int(key >> 3), wire: int(key & 7)}
	switch f.wire {
	case wireVarint:
		if f.v, n = binary.Uvarint(b); n <= 0 {
			return f, nil, errTruncated
		}
		return f, b[n:], nil
	case wireFixed64:
		if len(b) < 8 {
			return f, nil, errTruncated
		}
		return f, b[8:], nil
	case wireFixed32:
		if len(b) < 4 {
			return f, nil, errTruncated
		}
		return f, b[4:], nil
	case wireBytes:
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return f, nil, errTruncated
		}
		f.data = b[n : n+int(l)]
		return f, b[n+int(l):], nil
	}
	return f, nil, fmt.Errorf("unknown wire type %d", f.wire)
}

// eachField calls fn with every field of the message b.
func eachField(b []byte, fn func(field) error) error {
	for len(b) > 0 {
		f, rest, err := readField(b)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
		b = rest
	}
	return nil
}

// appendNumbers appends the values of a repeated numeric field as read: one
// value, or a packed list of them.
func appendNumbers(dst []uint64, f field) ([]uint64, error) {
	if f.wire == wireVarint {
		return append(dst, f.v), nil
	}
	if f.wire != wireBytes {
		return dst, fmt.Errorf("field %d: wire type %d for a number", f.num, f.wire)
	}
	for b := f.data; len(b) > 0; {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return dst, errTruncated
		}
		dst = append(dst, v)
		b = b[n:]
	}
	return dst, nil
}

// foreignProfile indexes a profile written by another program (the Go
// heap's, by runtime/pprof) in place: its strings and messages are slices of
// the data it was parsed from. Its scratch fields serve the encoder, which
// reuses one foreignProfile for every profile.
type foreignProfile struct {
	strings     [][]byte
	sampleTypes [][2]uint64 // string indices of type and unit
	samples     [][]byte
	locations   [][]byte
	functions   [][]byte
	funcByID    []int32 // index in functions + 1, by function id
	period      int64

	locIDs []uint64 // of the sample last read
	values []uint64
	locMap []uint64 // this encoder's location id, by the profile's
	fresh  []freshLocation
	out    []goSample
	order  []int32 // of out, sorted
	stacks []byte  // the packed location ids of every goSample
}

// freshLocation is a Location of a foreign profile that the encoder lacks:
// its key, its id there and its message's index in locations.
type freshLocation struct {
	key locKey
	id  uint64
	msg int
}

// goSample is a sample of the Go heap's profile, read: its stack as a
// range of foreignProfile.stacks, its values in this profile's order, and
// its bytes label, -1 if none.
type goSample struct {
	stk    [2]int
	values [len(sampleTypes)]int64
	size   int64
}

func (f *foreignProfile) stack(s goSample) []byte { return f.stacks[s.stk[0]:s.stk[1]] }

// parse indexes data, a pprof Profile message.
func (f *foreignProfile) parse(data []byte) error {
	f.strings, f.sampleTypes = f.strings[:0], f.sampleTypes[:0]
	f.samples, f.locations, f.functions = f.samples[:0], f.locations[:0], f.functions[:0]
	f.period = 0
	err := eachField(data, func(fl field) error {
		switch fl.num {
		case fieldSampleType:
			var st [2]uint64
			err := eachField(fl.data, func(v field) error {
				if v.num == fieldValueTypeType || v.num == fieldValueTypeUnit {
					st[v.num-1] = v.v
				}
				return nil
			})
			f.sampleTypes = append(f.sampleTypes, st)
			return err
		case fieldSample:
			f.samples = append(f.samples, fl.data)
		case fieldLocation:
			f.locations = append(f.locations, fl.data)
		case fieldFunction:
			f.functions = append(f.functions, fl.data)
		case fieldStringTable:
			f.strings = append(f.strings, fl.data)
		case fieldPeriod:
			f.period = int64(fl.v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.funcByID = f.funcByID[:0]
	for i, msg := range f.functions {
		var id uint64
		if err := eachField(msg, func(v field) error {
			if v.num == fieldFunctionID {
				id = v.v
			}
			return nil
		}); err != nil {
			return err
		}
		if id == 0 || id > uint64(4*len(f.functions)+16) {
			return fmt.Errorf("function id %d out of range", id)
		}
		for uint64(len(f.funcByID)) <= id {
			f.funcByID = append(f.funcByID, 0)
		}
		f.funcByID[id] = int32(i + 1)
	}
	return nil
}

// str returns string i of the table, "" if there is none.
func (f *foreignProfile) str(i uint64) []byte {
	if i >= uint64(len(f.strings)) {
		return nil
	}
	return f.strings[i]
}

// stringIndex returns the index of s in the string table.
func (f *foreignProfile) stringIndex(s string) (uint64, bool) {
	for i, t := range f.strings {
		if string(t) == s {
			return uint64(i), true
		}
	}
	return 0, false
}

// valueIndex returns, for each of this profile's sample types, the index of
// the same type and unit among the foreign profile's values.
func (f *foreignProfile) valueIndex() ([len(sampleTypes)]int, error) {
	var index [len(sampleTypes)]int
	for i, want := range sampleTypes {
		index[i] = -1
		for j, have := range f.sampleTypes {
			if string(f.str(have[0])) == want[0] && string(f.str(have[1])) == want[1] {
				index[i] = j
			}
		}
		if index[i] < 0 {
			return index, fmt.Errorf("no %s/%s values", want[0], want[1])
		}
	}
	return index, nil
}

// sample reads the sample msg: its location ids into f.locIDs, its values
// in this profile's order by index, and the numeric label with key
// sizeKey, the object size.
func (f *foreignProfile) sample(msg []byte, index [len(sampleTypes)]int, sizeKey uint64) (goSample, error) {
	s := goSample{size: -1}
	f.locIDs, f.values = f.locIDs[:0], f.values[:0]
	for len(msg) > 0 {
		fl, rest, err := readField(msg)
		if err != nil {
			return s, err
		}
		msg = rest
		switch fl.num {
		case fieldSampleLocationID:
			f.locIDs, err = appendNumbers(f.locIDs, fl)
		case fieldSampleValue:
			f.values, err = appendNumbers(f.values, fl)
		case fieldSampleLabel:
			var key, num uint64
			for l := fl.data; len(l) > 0 && err == nil; {
				var lf field
				if lf, l, err = readField(l); lf.num == fieldLabelKey {
					key = lf.v
				} else if lf.num == fieldLabelNum {
					num = lf.v
				}
			}
			if key == sizeKey && sizeKey != 0 {
				s.size = int64(num)
			}
		}
		if err != nil {
			return s, err
		}
	}
	for i, j := range index {
		if j >= len(f.values) {
			return s, fmt.Errorf("sample with %d values, want %d", len(f.values), len(f.sampleTypes))
		}
		if f.values[j] > math.MaxInt64 {
			return s, fmt.Errorf("sample with a negative value")
		}
		s.values[i] = int64(f.values[j])
	}
	return s, nil
}

// locationKey reads the id of the Location msg and its key: its address
// and number of lines.
func (f *foreignProfile) locationKey(msg []byte) (uint64, locKey, error) {
	var id uint64
	var k locKey
	for len(msg) > 0 {
		fl, rest, err := readField(msg)
		if err != nil {
			return 0, k, err
		}
		msg = rest
		switch fl.num {
		case fieldLocationID:
			id = fl.v
		case fieldLocationAddress:
			k.addr = fl.v
		case fieldLocationLine:
			k.lines++
		}
	}
	return id, k, nil
}

// lines calls fn with the function name, file and line of each Line of the
// Location msg, innermost first, skipping lines with no function.
func (f *foreignProfile) lines(msg []byte, fn func(name, file string, line int64)) error {
	return eachField(msg, func(fl field) error {
		if fl.num != fieldLocationLine {
			return nil
		}
		var fid, line uint64
		if err := eachField(fl.data, func(l field) error {
			switch l.num {
			case fieldLineFunctionID:
				fid = l.v
			case fieldLineLine:
				line = l.v
			}
			return nil
		}); err != nil {
			return err
		}
		if fid >= uint64(len(f.funcByID)) || f.funcByID[fid] == 0 {
			return nil
		}
		var name, file uint64
		if err := eachField(f.functions[f.funcByID[fid]-1], func(v field) error {
			switch v.num {
			case fieldFunctionName:
				name = v.v
			case fieldFunctionFilename:
				file = v.v
			}
			return nil
		}); err != nil {
			return err
		}
		fn(string(f.str(name)), string(f.str(file)), int64(line))
		return nil
	})
}
