package heapdump

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// errorf makes an error with the package's prefix.
func errorf(format string, args ...any) error {
	return fmt.Errorf("heapdump: "+format, args...)
}

// errTruncated is what a dump that ends before its EOF record reads as,
// whichever field it ends in: the runtime drops its write errors, so a
// short dump is the usual failure (a full disk, a closed pipe).
var errTruncated = errors.New("heapdump: truncated dump: no EOF record")

// decoder reads the primitives of the format: uvarints and byte strings.
// It counts the bytes it consumed, for error messages.
type decoder struct {
	r   *bufio.Reader
	off int64
}

func (d *decoder) uvarint() (uint64, error) {
	var x uint64
	for shift := uint(0); ; shift += 7 {
		b, err := d.r.ReadByte()
		if err != nil {
			return 0, eofIsTruncation(err)
		}
		d.off++
		if shift == 63 && b > 1 {
			return 0, fmt.Errorf("uvarint overflows 64 bits at offset %d", d.off)
		}
		if b < 0x80 {
			return x | uint64(b)<<shift, nil
		}
		x |= uint64(b&0x7f) << shift
	}
}

func (d *decoder) bool() (bool, error) {
	v, err := d.uvarint()
	return v != 0, err
}

// chunk is the most readBytes allocates ahead of the data that arrives: a
// corrupt length then fails with a truncation, not with an allocation of
// the length's size.
const chunk = 1 << 20

// readBytes reads a length-prefixed byte string into buf, growing it as
// needed, and returns it. The result aliases buf.
func (d *decoder) readBytes(buf []byte) ([]byte, error) {
	n, err := d.uvarint()
	if err != nil {
		return nil, err
	}
	buf = buf[:0]
	for uint64(len(buf)) < n {
		step := min(n-uint64(len(buf)), uint64(max(len(buf), chunk)))
		start := len(buf)
		if uint64(cap(buf)-start) < step {
			grown := make([]byte, start, uint64(start)+step)
			copy(grown, buf)
			buf = grown
		}
		buf = buf[:start+int(step)]
		m, err := io.ReadFull(d.r, buf[start:])
		d.off += int64(m)
		if err != nil {
			return nil, eofIsTruncation(err)
		}
	}
	return buf, nil
}

// skipBytes skips a length-prefixed byte string.
func (d *decoder) skipBytes() error {
	n, err := d.uvarint()
	if err != nil {
		return err
	}
	for n > 0 {
		m, err := d.r.Discard(int(min(n, chunk)))
		d.off += int64(m)
		n -= uint64(m)
		if err != nil {
			return eofIsTruncation(err)
		}
	}
	return nil
}

// string reads a length-prefixed string of names (functions, files, wait
// reasons), which the runtime writes, never the program's data.
func (d *decoder) string(scratch *[]byte) (string, error) {
	b, err := d.readBytes(*scratch)
	if err != nil {
		return "", err
	}
	*scratch = b
	return string(b), nil
}

// skip reads and drops n uvarints.
func (d *decoder) skip(n int) error {
	for range n {
		if _, err := d.uvarint(); err != nil {
			return err
		}
	}
	return nil
}

func eofIsTruncation(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTruncated
	}
	return fmt.Errorf("heapdump: read: %w", err)
}
