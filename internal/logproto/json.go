// Package logproto holds the wire formats of memlogd's query socket: the
// legacy one-byte requests and JSON-lines replies LinuxKit's clients speak,
// and the extended request and records that let a reader resume from a
// cursor, filter, and see gaps as records of their own.
package logproto

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// safe[c] is true for ASCII bytes that encoding/json writes as they are
// (with its default HTML escaping).
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// AppendString appends s as a JSON string, byte for byte as Go's
// encoding/json writes it with HTML escaping on (the default of
// json.Marshal and json.Encoder): invalid UTF-8 becomes \ufffd and U+2028,
// U+2029 are escaped. Keeping this identical is what makes legacy replies
// indistinguishable from LinuxKit's memlogd.
func AppendString(dst, s []byte) []byte {
	dst, _ = appendString(dst, s)
	return dst
}

// appendString is AppendString that also reports whether s was not valid
// UTF-8, so that the JSON string lost bytes (they became U+FFFD).
func appendString(dst, s []byte) (_ []byte, lossy bool) {
	dst = append(dst, '"')
	start := 0
	for i := 0; ; {
		i = scanJSON(s, i)
		if i >= len(s) {
			break
		}
		if b := s[i]; b < utf8.RuneSelf {
			if safe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xf])
			}
			i++
			start = i
			continue
		}
		if n := plainJSONUTF8(s[i:]); n > 0 {
			// And the plain runes and ASCII letters, digits and
			// spaces right after it.
			for i += n; i < len(s); i += n {
				if c := s[i]; c < utf8.RuneSelf {
					if !textPlain[c] {
						break
					}
					n = 1
				} else if n = plainJSONUTF8(s[i:]); n == 0 {
					break
				}
			}
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			lossy = true
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), lossy
}

// plainJSONUTF8 returns the length of the UTF-8 sequence b starts with if
// it is one of the common two- or three-byte ones that are valid and
// written as they are, else 0 (the caller decodes the rune).
func plainJSONUTF8(b []byte) int {
	c := b[0]
	switch {
	case c >= 0xc2 && c <= 0xdf:
		if len(b) >= 2 && b[1]&0xc0 == 0x80 {
			return 2
		}
	case c >= 0xe1 && c <= 0xef && c != 0xe2 && c != 0xed:
		// Less U+2000-U+2FFF (0xe2: U+2028, U+2029 are escaped) and
		// the surrogates (0xed).
		if len(b) >= 3 && b[1]&0xc0 == 0x80 && b[2]&0xc0 == 0x80 {
			return 3
		}
	}
	return 0
}

// scanJSON returns the index of the first byte at or after i that
// jsonMask flags, or len(s) if there is none. It may also stop at a
// byte that needs nothing (the caller looks at each byte it stops at),
// and for a s of fewer than eight bytes it stops at every byte.
func scanJSON(s []byte, i int) int {
	le := binary.LittleEndian
	for ; i+16 <= len(s); i += 16 {
		m0, m1 := jsonMask(le.Uint64(s[i:])), jsonMask(le.Uint64(s[i+8:]))
		if m0|m1 != 0 {
			if m0 != 0 {
				return i + bits.TrailingZeros64(m0)>>3
			}
			return i + 8 + bits.TrailingZeros64(m1)>>3
		}
	}
	for ; i+8 <= len(s); i += 8 {
		if m := jsonMask(le.Uint64(s[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if i < len(s) && len(s) >= 8 {
		// The last word, less the bytes before i; a byte flagged
		// there may make byte i look flagged too.
		m := jsonMask(le.Uint64(s[len(s)-8:])) >> (8 * uint(8-(len(s)-i)))
		if m == 0 {
			return len(s)
		}
		return i + bits.TrailingZeros64(m)>>3
	}
	return i
}

// jsonMask has the high bit set in the lowest byte of x that
// encoding/json does not write as it is (see safe) or that is not ASCII
// (bits above that byte may be set too); it is zero if there is none.
func jsonMask(x uint64) uint64 {
	// '"' and '&' are 0x22 and 0x26, '<' and '>' 0x3c and 0x3e: with
	// one bit forced, each pair is one value.
	qa := (x | lsb*0x04) ^ (lsb * 0x26)
	lg := (x | lsb*0x02) ^ (lsb * 0x3e)
	bs := x ^ (lsb * '\\')
	// As in strMask.
	return (((x-lsb*0x20)|(qa-lsb)|(lg-lsb)|(bs-lsb))&^x | x) & msb
}

// TimeFormatter formats Unix-nanosecond times as JSON strings the way
// encoding/json formats a time.Time (RFC 3339 with nanoseconds, trailing
// zeros trimmed, in the given location). Entries received in one read
// share a timestamp, so it remembers the last one it formatted.
type TimeFormatter struct {
	Loc  *time.Location // nil means time.Local, as a time from time.Now
	last int64
	buf  []byte
	text TextFormatter // formats the second once
}

// Append appends the quoted time.
func (f *TimeFormatter) Append(dst []byte, ns int64) []byte {
	if f.buf == nil || ns != f.last {
		loc := f.Loc
		if loc == nil {
			loc = time.Local
		}
		f.buf = append(f.buf[:0], '"')
		f.buf = f.text.AppendTime(f.buf, time.Unix(0, ns).In(loc))
		f.buf = append(f.buf, '"')
		f.last = ns
	}
	return append(dst, f.buf...)
}

func appendUint(dst []byte, v uint64) []byte { return strconv.AppendUint(dst, v, 10) }
