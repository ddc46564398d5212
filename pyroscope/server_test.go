package pyroscope_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/leakhunt/profiler"
)

// A field is one field of a protocol buffer message, as the wire has it.
type field struct {
	num    int
	wire   int
	varint uint64
	bytes  []byte
}

// decodeFields splits a protocol buffer message into its fields. It is the
// test's own decoder, written from the wire format's specification rather
// than from the package's encoder.
func decodeFields(b []byte) ([]field, error) {
	var out []field
	for len(b) > 0 {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad tag")
		}
		b = b[n:]
		f := field{num: int(tag >> 3), wire: int(tag & 7)}
		switch f.wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, errors.New("bad varint")
			}
			f.varint, b = v, b[n:]
		case 1:
			if len(b) < 8 {
				return nil, errors.New("short fixed64")
			}
			f.varint, b = binary.LittleEndian.Uint64(b), b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, errors.New("bad length")
			}
			f.bytes, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return nil, errors.New("short fixed32")
			}
			f.varint, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		default:
			return nil, fmt.Errorf("wire type %d", f.wire)
		}
		out = append(out, f)
	}
	return out, nil
}

// A pushRequest is a decoded push.v1.PushRequest.
type pushRequest struct {
	series []pushSeries
}

type pushSeries struct {
	labels  [][2]string // in the order sent
	samples []rawSample
}

type rawSample struct {
	raw     []byte
	id      string
	profile *profile.Profile
}

// label returns the value of the series label name, or "" if absent.
func (s pushSeries) label(name string) string {
	for _, l := range s.labels {
		if l[0] == name {
			return l[1]
		}
	}
	return ""
}

// decodePush decodes a PushRequest by the field numbers of Pyroscope's
// push.proto and types.proto, and parses each raw profile with the pprof
// parser.
func decodePush(b []byte) (pushRequest, error) {
	var req pushRequest
	fields, err := decodeFields(b)
	if err != nil {
		return req, err
	}
	for _, f := range fields {
		if f.num != 1 || f.wire != 2 {
			return req, fmt.Errorf("PushRequest: unexpected field %d (wire type %d)", f.num, f.wire)
		}
		var s pushSeries
		sf, err := decodeFields(f.bytes)
		if err != nil {
			return req, err
		}
		for _, f := range sf {
			switch {
			case f.num == 1 && f.wire == 2:
				lf, err := decodeFields(f.bytes)
				if err != nil {
					return req, err
				}
				var l [2]string
				for _, f := range lf {
					if f.wire != 2 || f.num < 1 || f.num > 2 {
						return req, fmt.Errorf("LabelPair: unexpected field %d", f.num)
					}
					l[f.num-1] = string(f.bytes)
				}
				s.labels = append(s.labels, l)
			case f.num == 2 && f.wire == 2:
				rf, err := decodeFields(f.bytes)
				if err != nil {
					return req, err
				}
				var r rawSample
				for _, f := range rf {
					switch {
					case f.num == 1 && f.wire == 2:
						r.raw = f.bytes
					case f.num == 2 && f.wire == 2:
						r.id = string(f.bytes)
					default:
						return req, fmt.Errorf("RawSample: unexpected field %d", f.num)
					}
				}
				if r.profile, err = profile.ParseData(r.raw); err != nil {
					return req, fmt.Errorf("raw_profile: %v", err)
				}
				s.samples = append(s.samples, r)
			default:
				return req, fmt.Errorf("RawProfileSeries: unexpected field %d", f.num)
			}
		}
		req.series = append(req.series, s)
	}
	return req, nil
}

// A request is one request a pushServer received.
type request struct {
	method, path string
	header       http.Header
	push         pushRequest
}

// profile returns the one profile of the request, failing the test unless
// there is exactly one.
func (r request) profile(t *testing.T) *profile.Profile {
	t.Helper()
	if len(r.push.series) != 1 || len(r.push.series[0].samples) != 1 {
		t.Fatalf("push holds %d series; want one with one sample", len(r.push.series))
	}
	return r.push.series[0].samples[0].profile
}

// A pushServer is a Pyroscope push endpoint that records every request,
// decoded, and answers as respond says: by default 200 with an empty
// PushResponse, as Pyroscope does.
type pushServer struct {
	*httptest.Server
	t       *testing.T
	respond func(n int, w http.ResponseWriter, r *http.Request) // n counts requests from 1

	mu  sync.Mutex
	got []request
}

func newPushServer(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *pushServer {
	s := &pushServer{t: t, respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *pushServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("server: reading request: %v", err)
		return
	}
	push, err := decodePush(body)
	if err != nil {
		s.t.Errorf("server: decoding request: %v", err)
	}
	s.mu.Lock()
	s.got = append(s.got, request{r.Method, r.URL.Path, r.Header.Clone(), push})
	n := len(s.got)
	s.mu.Unlock()
	if s.respond != nil {
		s.respond(n, w, r)
		return
	}
	ok(w)
}

// ok answers as Pyroscope does a successful push.
func ok(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/proto")
	w.WriteHeader(http.StatusOK)
}

// connectError answers with a connect error, as Pyroscope does a failed
// push.
func connectError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code":%q,"message":%q}`, code, msg)
}

func (s *pushServer) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.got...)
}

// A frame is a function of a synthetic stack, at an address of its own.
type frame struct {
	name string
	addr uint64
	line int64
}

// A synthSample is a sample of a synthetic heap profile.
type synthSample struct {
	stack  []frame // leaf first
	heap   string
	labels map[string]string
	age    int64    // the age label; -1 for none
	values [4]int64 // alloc_objects, alloc_space, inuse_objects, inuse_space
}

// heapProfile returns a heap profile shaped like the profiler's, gzipped.
// Location and function ids start at idBase, so that two profiles of the
// same stacks can number them differently, as the profiler may.
func heapProfile(t *testing.T, at time.Time, idBase uint64, samples ...synthSample) profiler.Profile {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "alloc_objects", Unit: "count"},
			{Type: "alloc_space", Unit: "bytes"},
			{Type: "inuse_objects", Unit: "count"},
			{Type: "inuse_space", Unit: "bytes"},
		},
		DefaultSampleType: "inuse_space",
		PeriodType:        &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:            1,
		TimeNanos:         at.UnixNano(),
		DurationNanos:     int64(time.Minute),
		Comments:          []string{"synthetic"},
	}
	m := &profile.Mapping{ID: 1, Start: 0x1000, Limit: 1 << 40, File: "/bin/app", HasFunctions: true, HasFilenames: true, HasLineNumbers: true}
	p.Mapping = []*profile.Mapping{m}
	locs := map[frame]*profile.Location{}
	// Ids in reverse order of first use in odd bases, so that two
	// profiles disagree about them.
	var frames []frame
	for _, s := range samples {
		for _, f := range s.stack {
			if _, ok := locs[f]; !ok {
				locs[f] = nil
				frames = append(frames, f)
			}
		}
	}
	if idBase%2 == 1 {
		slices.Reverse(frames)
	}
	for i, f := range frames {
		fn := &profile.Function{ID: idBase + uint64(i), Name: f.name, SystemName: f.name, Filename: "app.go"}
		loc := &profile.Location{ID: idBase + uint64(i), Mapping: m, Address: f.addr, Line: []profile.Line{{Function: fn, Line: f.line}}}
		locs[f] = loc
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, loc)
	}
	for _, s := range samples {
		ps := &profile.Sample{Value: s.values[:], Label: map[string][]string{}, NumLabel: map[string][]int64{"bytes": {64}}, NumUnit: map[string][]string{"bytes": {"bytes"}}}
		for _, f := range s.stack {
			ps.Location = append(ps.Location, locs[f])
		}
		if s.heap != "" {
			ps.Label["heap"] = []string{s.heap}
		}
		for k, v := range s.labels {
			ps.Label[k] = []string{v}
		}
		if s.age >= 0 {
			ps.NumLabel["age"] = []int64{s.age}
			ps.NumUnit["age"] = []string{"seconds"}
		}
		p.Sample = append(p.Sample, ps)
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return profiler.Profile{Data: buf.Bytes(), Time: at}
}

// fn returns a frame for a function name, its address derived from it.
func fn(name string) frame {
	var h uint64 = 1469598103934665603
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	return frame{name: name, addr: 0x1000 + h%(1<<30), line: int64(len(name))}
}

// siteValues returns the values of a pushed profile by leaf function name
// and heap label, summed.
func siteValues(p *profile.Profile) map[string][4]int64 {
	out := map[string][4]int64{}
	for _, s := range p.Sample {
		k := s.Location[0].Line[0].Function.Name
		if h := s.Label["heap"]; len(h) > 0 {
			k += "@" + h[0]
		}
		v := out[k]
		for i := range v {
			v[i] += s.Value[i]
		}
		out[k] = v
	}
	return out
}

// logBuffer returns a logger writing text lines to a buffer, at every
// level, and the buffer.
func logBuffer() (*slog.Logger, *syncBuffer) {
	b := new(syncBuffer)
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lines returns the log lines holding s.
func (b *syncBuffer) lines(s string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
