package heapdump

import (
	"bytes"
	"testing"
)

// FuzzAnalyze checks that no dump, however corrupt, makes Analyze panic or
// return both a result and an error.
func FuzzAnalyze(f *testing.F) {
	f.Add(tinyDump(), uint64(objV))
	w := newDumpWriter(arenaLo, arenaHi)
	w.object(objG, []uint64{objH, 0}, 0)
	w.object(objH, []uint64{0, 0})
	w.finalizer(objG, 0)
	w.eof()
	f.Add(w.Bytes(), uint64(objH))
	f.Fuzz(func(t *testing.T, dump []byte, target uint64) {
		res, err := Analyze(bytes.NewReader(dump), []uint64{target}, tinyOptions())
		if (res == nil) == (err == nil) {
			t.Fatalf("Analyze returned %v and %v", res, err)
		}
		if err != nil {
			return
		}
		for _, s := range res.Samples {
			if len(s.Chain) == 1 || (len(s.Chain) > 0 && s.Chain[0].Root == RootNone) {
				t.Fatalf("sample %#x: chain %+v", s.Addr, s.Chain)
			}
		}
	})
}
