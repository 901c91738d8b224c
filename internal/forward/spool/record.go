package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A record on disk is an 8-byte header, the payload's length and its
// CRC-32C (both little-endian uint32), then the payload. A torn write at
// the end of a segment leaves a short or mismatching record, which Open
// cuts off.
const headerLen = 8

// MaxPayload is the largest payload a record may hold.
const MaxPayload = 16 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errShort means b holds only the beginning of a record.
var errShort = errors.New("short record")

// ErrCorrupt means the bytes are not a record: a bad length or checksum.
var ErrCorrupt = errors.New("corrupt spool record")

// AppendRecord appends payload as a record.
func AppendRecord(dst, payload []byte) []byte {
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(payload, castagnoli))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// DecodeRecord decodes the record at the start of b and returns its
// payload (a slice of b) and its length on disk. A record that does not
// fit in b yet is errShort; anything that cannot be a record is
// ErrCorrupt.
func DecodeRecord(b []byte) (payload []byte, n int, err error) {
	if len(b) < headerLen {
		return nil, 0, errShort
	}
	l := binary.LittleEndian.Uint32(b[0:4])
	if l > MaxPayload {
		return nil, 0, fmt.Errorf("%w: length %d", ErrCorrupt, l)
	}
	if uint64(len(b)) < headerLen+uint64(l) {
		return nil, 0, errShort
	}
	p := b[headerLen : headerLen+int(l)]
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return p, headerLen + int(l), nil
}
