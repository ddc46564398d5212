package heapdump

import (
	"bytes"
	"encoding/binary"
)

// dumpWriter writes records in the format of runtime/heapdump.go, for
// tests that need a dump whose every byte they know.
type dumpWriter struct {
	bytes.Buffer
}

func newDumpWriter(arenaStart, arenaEnd uint64) *dumpWriter {
	w := new(dumpWriter)
	w.WriteString(header)
	w.params(false, 8, arenaStart, arenaEnd)
	return w
}

func (w *dumpWriter) uint(vs ...uint64) {
	for _, v := range vs {
		w.Write(binary.AppendUvarint(nil, v))
	}
}

func (w *dumpWriter) str(s string) {
	w.uint(uint64(len(s)))
	w.WriteString(s)
}

func (w *dumpWriter) params(bigEndian bool, ptrSize, arenaStart, arenaEnd uint64) {
	w.uint(tagParams)
	if bigEndian {
		w.uint(1)
	} else {
		w.uint(0)
	}
	w.uint(ptrSize, arenaStart, arenaEnd)
	w.str("amd64")
	w.str("go1.26.8")
	w.uint(2)
}

// words encodes a memory range of 64-bit words and the field list that
// marks those at ptrs (word indexes) as pointers.
func (w *dumpWriter) words(contents []uint64, ptrs ...int) {
	w.uint(uint64(8 * len(contents)))
	for _, v := range contents {
		w.Write(binary.LittleEndian.AppendUint64(nil, v))
	}
	for _, i := range ptrs {
		w.uint(fieldKindPtr, uint64(8*i))
	}
	w.uint(fieldKindEol)
}

func (w *dumpWriter) object(addr uint64, contents []uint64, ptrs ...int) {
	w.uint(tagObject, addr)
	w.words(contents, ptrs...)
}

func (w *dumpWriter) segment(tag, start uint64, contents []uint64, ptrs ...int) {
	w.uint(tag, start)
	w.words(contents, ptrs...)
}

func (w *dumpWriter) goroutine(g, id uint64, reason string) {
	w.uint(tagGoroutine, g, 0xdead0, id, 0, 4, 0, 0, 0)
	w.str(reason)
	w.uint(0, 0, 0, 0)
}

func (w *dumpWriter) frame(sp uint64, fn string, contents []uint64, ptrs ...int) {
	w.uint(tagStackFrame, sp, 0, 0)
	w.uint(uint64(8 * len(contents)))
	for _, v := range contents {
		w.Write(binary.LittleEndian.AppendUint64(nil, v))
	}
	w.uint(0x401000, 0x401010, 0x401010)
	w.str(fn)
	for _, i := range ptrs {
		w.uint(fieldKindPtr, uint64(8*i))
	}
	w.uint(fieldKindEol)
}

func (w *dumpWriter) finalizer(obj, fn uint64) {
	w.uint(tagFinalizer, obj, fn, 0x401000, 0, 0)
}

func (w *dumpWriter) memProf(bucket, size uint64, stack ...Frame) {
	w.uint(tagMemProf, bucket, size, uint64(len(stack)))
	for _, f := range stack {
		w.str(f.Func)
		w.str(f.File)
		w.uint(uint64(f.Line))
	}
	w.uint(1, 0)
}

func (w *dumpWriter) memStats() {
	w.uint(tagMemStats)
	for range memStatsWords {
		w.uint(7)
	}
}

func (w *dumpWriter) allocSample(addr, bucket uint64) { w.uint(tagAllocSample, addr, bucket) }

func (w *dumpWriter) eof() { w.uint(tagEOF) }
