// Package logproto holds the wire formats of memlogd's query socket: the
// legacy one-byte requests and JSON-lines replies LinuxKit's clients speak,
// and the extended request and records that let a reader resume from a
// cursor, filter, and see gaps as records of their own.
package logproto

import (
	"encoding/binary"
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
	for i := 0; i < len(s); {
		if i+8 <= len(s) && jsonPlain8(binary.LittleEndian.Uint64(s[i:])) {
			i += 8
			continue
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

// TimeFormatter formats Unix-nanosecond times as JSON strings the way
// encoding/json formats a time.Time (RFC 3339 with nanoseconds, trailing
// zeros trimmed, in the given location). Entries received in one read
// share a timestamp, so it remembers the last one it formatted.
type TimeFormatter struct {
	Loc  *time.Location // nil means time.Local, as a time from time.Now
	last int64
	buf  []byte
}

// Append appends the quoted time.
func (f *TimeFormatter) Append(dst []byte, ns int64) []byte {
	if f.buf == nil || ns != f.last {
		loc := f.Loc
		if loc == nil {
			loc = time.Local
		}
		f.buf = append(f.buf[:0], '"')
		f.buf = time.Unix(0, ns).In(loc).AppendFormat(f.buf, time.RFC3339Nano)
		f.buf = append(f.buf, '"')
		f.last = ns
	}
	return append(dst, f.buf...)
}

func appendUint(dst []byte, v uint64) []byte { return strconv.AppendUint(dst, v, 10) }

// jsonPlain8 reports whether the eight bytes of x are all ASCII that
// encoding/json writes as they are (safe above).
func jsonPlain8(x uint64) bool {
	eq := func(c byte) uint64 {
		y := x ^ (lsb * uint64(c))
		return (y - lsb) & ^y
	}
	low := (x - lsb*0x20) & ^x // a byte below 0x20
	return (low|x|eq('"')|eq('\\')|eq('<')|eq('>')|eq('&'))&msb == 0
}
