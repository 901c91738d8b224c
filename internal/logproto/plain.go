package logproto

import (
	"encoding/binary"
	"math/bits"
)

// Plain bytes are the printable ASCII bytes (0x20-0x7e) other than `"`,
// `\`, `<`, `>` and `&`: every format memlogd writes a message in (JSON
// as encoding/json writes it, with HTML escaping; the escaped text of
// AppendEscaped) writes them as they are. A message made only of them
// needs no escaping anywhere, so its producer may say so once
// (ring.FlagPlain) and every reader copy it instead of scanning it.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// PlainLen returns the length of the longest prefix of b made of plain
// bytes: len(b) if b is plain. Looking for the end of a line, it stops at
// the newline of a plain line (a newline is not plain).
func PlainLen(b []byte) int { return plainLen(b, plainBlocks) }

// plainLen is PlainLen with blocks scanning b's whole blocks of 16 bytes
// first (blocks returns the index of the first byte that is not plain in
// them, or len(b)&^15): with SSE2 or AVX2 where there is assembly for it
// (plain_amd64.s), else plainBlocksGo. Then the rest.
func plainLen(b []byte, blocks func([]byte) int) int {
	i := blocks(b)
	if i < len(b)&^15 {
		return i
	}
	return i + plainLenWords(b[i:])
}

// plainBlocksGo is plainBlocks in Go, for where there is no assembly.
func plainBlocksGo(b []byte) int { return plainLenWords(b[:len(b)&^15]) }

// plainLenWords is PlainLen eight bytes at a time, in Go.
func plainLenWords(b []byte) int {
	le := binary.LittleEndian
	i := 0
	for ; i+16 <= len(b); i += 16 {
		m0, m1 := plainMask(le.Uint64(b[i:])), plainMask(le.Uint64(b[i+8:]))
		if m0|m1 != 0 {
			if m0 != 0 {
				return i + bits.TrailingZeros64(m0)>>3
			}
			return i + 8 + bits.TrailingZeros64(m1)>>3
		}
	}
	if i+8 <= len(b) {
		if m := plainMask(le.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for ; i < len(b); i++ {
		if !plainByte[b[i]] {
			break
		}
	}
	return i
}

// plainMask has the high bit set in the lowest byte of x that is not
// plain (bits above that byte may be set too); it is zero if every byte
// is plain.
func plainMask(x uint64) uint64 {
	// jsonMask flags all but DEL; adding one reaches the high bit from
	// DEL (a carry out of a byte of 0x80 or more only reaches bytes
	// above one that is flagged already).
	return jsonMask(x) | (x+lsb)&msb
}
