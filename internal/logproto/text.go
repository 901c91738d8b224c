package logproto

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Text escaping: how a source or a message is written wherever it is
// printed as text (logread, memlogd's console, logwrite's files), so that
// no byte a sender chose can end a line, start a terminal escape sequence
// or make a field look like another. The scheme is reversible
// (Unescape):
//
//	\        -> \\
//	newline  -> \n,  tab -> \t,  carriage return -> \r
//	;        -> \;   (only in a source, where ';' ends the field)
//	other C0 controls (0x00-0x1f), DEL (0x7f), bytes that are not
//	valid UTF-8, and the UTF-8 bytes of C1 controls (U+0080-U+009F),
//	line/paragraph separators (U+2028, U+2029) and bidirectional
//	controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)
//	         -> \xHH for each byte (two lower-case hex digits)
//
// Everything else, including all other UTF-8, is written as it is.

// escClass[c] says how byte c is written: 0 as it is, 1 escaped, 2 ';'
// (escaped in a source), 3 starts a non-ASCII sequence.
var escClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = 1
	}
	t[0x7f] = 1
	t['\\'] = 1
	t[';'] = 2
	for c := 0x80; c < 0x100; c++ {
		t[c] = 3
	}
	return t
}()

// hostileRune reports whether a valid non-ASCII rune is escaped.
func hostileRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0x2028, r == 0x2029:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// AppendEscapedBytes is AppendEscaped for a byte slice.
func AppendEscapedBytes(dst, b []byte, source bool) []byte {
	return AppendEscaped(dst, unsafe.String(unsafe.SliceData(b), len(b)), source)
}

// AppendEscaped appends s escaped as described above; source selects
// the escaping of ';'.
func AppendEscaped(dst []byte, s string, source bool) []byte {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	start := 0
	for i := 0; ; {
		if source {
			i = scanSource(b, i)
		} else {
			i = scanText(b, i)
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		if c < utf8.RuneSelf {
			if escClass[c] == 0 || (c == ';' && !source) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\r':
				dst = append(dst, '\\', 'r')
			case ';':
				dst = append(dst, '\\', ';')
			default:
				dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		if n := plainUTF8(b[i:]); n > 0 {
			// And the plain runes and ASCII letters, digits and
			// spaces right after it.
			for i += n; i < len(b); i += n {
				if c := b[i]; c < utf8.RuneSelf {
					if !textPlain[c] {
						break
					}
					n = 1
				} else if n = plainUTF8(b[i:]); n == 0 {
					break
				}
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || hostileRune(r) {
			dst = append(dst, s[start:i]...)
			for j := i; j < i+size; j++ {
				dst = append(dst, '\\', 'x', hex[s[j]>>4], hex[s[j]&0xf])
			}
			start = i + size
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// textPlain[c] is true for the ASCII bytes that text between non-ASCII
// runes is mostly made of, and that are written as they are (in text and
// in JSON).
var textPlain = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = c == ' ' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == ',' || c == '.'
	}
	return t
}()

// plainUTF8 returns the length of the UTF-8 sequence b starts with if it
// is one of the common two- or three-byte ones that are valid and written
// as they are, else 0 (the caller decodes the rune).
func plainUTF8(b []byte) int {
	c := b[0]
	switch {
	case c >= 0xc2 && c <= 0xdf:
		// U+0080-U+07FF, less the C1 controls (0xc2 0x80-0x9f) and
		// U+061C (0xd8 0x9c).
		if len(b) >= 2 && b[1]&0xc0 == 0x80 && (c != 0xc2 || b[1] >= 0xa0) && (c != 0xd8 || b[1] != 0x9c) {
			return 2
		}
	case c >= 0xe1 && c <= 0xef && c != 0xe2 && c != 0xed:
		// U+1000-U+FFFF, less U+2000-U+2FFF (0xe2: the separators and
		// bidirectional controls) and the surrogates (0xed).
		if len(b) >= 3 && b[1]&0xc0 == 0x80 && b[2]&0xc0 == 0x80 {
			return 3
		}
	}
	return 0
}

// scanText returns the index of the first byte at or after i that
// textMask flags, or len(b) if there is none. It may also stop at a
// byte that needs nothing (the caller looks at each byte it stops at),
// and for a b of fewer than eight bytes it stops at every byte.
func scanText(b []byte, i int) int {
	le := binary.LittleEndian
	for ; i+16 <= len(b); i += 16 {
		m0, m1 := textMask(le.Uint64(b[i:])), textMask(le.Uint64(b[i+8:]))
		if m0|m1 != 0 {
			if m0 != 0 {
				return i + bits.TrailingZeros64(m0)>>3
			}
			return i + 8 + bits.TrailingZeros64(m1)>>3
		}
	}
	for ; i+8 <= len(b); i += 8 {
		if m := textMask(le.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if i < len(b) && len(b) >= 8 {
		// The last word, less the bytes before i; a byte flagged
		// there may make byte i look flagged too.
		m := textMask(le.Uint64(b[len(b)-8:])) >> (8 * uint(8-(len(b)-i)))
		if m == 0 {
			return len(b)
		}
		return i + bits.TrailingZeros64(m)>>3
	}
	return i
}

// scanSource returns the index of the first byte at or after i that
// sourceMask flags, or len(b) if there is none. It may also stop at a
// byte that needs nothing (the caller looks at each byte it stops at),
// and for a b of fewer than eight bytes it stops at every byte.
// (scanText for a source: also ';'.)
func scanSource(b []byte, i int) int {
	le := binary.LittleEndian
	for ; i+16 <= len(b); i += 16 {
		m0, m1 := sourceMask(le.Uint64(b[i:])), sourceMask(le.Uint64(b[i+8:]))
		if m0|m1 != 0 {
			if m0 != 0 {
				return i + bits.TrailingZeros64(m0)>>3
			}
			return i + 8 + bits.TrailingZeros64(m1)>>3
		}
	}
	for ; i+8 <= len(b); i += 8 {
		if m := sourceMask(le.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if i < len(b) && len(b) >= 8 {
		// The last word, less the bytes before i; a byte flagged
		// there may make byte i look flagged too.
		m := sourceMask(le.Uint64(b[len(b)-8:])) >> (8 * uint(8-(len(b)-i)))
		if m == 0 {
			return len(b)
		}
		return i + bits.TrailingZeros64(m)>>3
	}
	return i
}

// textMask has the high bit set in the lowest byte of x that may need
// escaping in a message: below 0x20, DEL, '\\' or non-ASCII (bits above
// that byte may be set too); it is zero if there is none.
func textMask(x uint64) uint64 {
	bs := x ^ (lsb * '\\')
	// As in strMask; adding one reaches the high bit from DEL.
	return (((x-lsb*0x20)|(bs-lsb))&^x | (x + lsb) | x) & msb
}

// sourceMask is textMask for a source: ';' is flagged too.
func sourceMask(x uint64) uint64 {
	sc := x ^ (lsb * ';')
	return textMask(x) | (sc-lsb)&^x&msb
}

// ErrBadEscape is returned by Unescape for text that AppendEscaped
// cannot have produced.
var ErrBadEscape = errors.New("bad escape sequence")

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Unescape reverses AppendEscaped: it appends to dst the bytes s was
// made of.
func Unescape(dst, s []byte) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		if i+1 >= len(s) {
			return dst, ErrBadEscape
		}
		i++
		switch s[i] {
		case '\\':
			dst = append(dst, '\\')
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case ';':
			dst = append(dst, ';')
		case 'x':
			if i+2 >= len(s) {
				return dst, ErrBadEscape
			}
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return dst, ErrBadEscape
			}
			dst = append(dst, h<<4|l)
			i += 2
		default:
			return dst, ErrBadEscape
		}
	}
	return dst, nil
}

// TextFormatter writes entries as text lines, LinuxKit's logread format
// with the escaping above:
//
//	<RFC3339Nano time>;<escaped source>;<escaped msg>
//
// It keeps the formatted time up to the second, so that lines in the same
// second cost no time formatting. The zero value is ready to use; it is
// not safe for concurrent use.
type TextFormatter struct {
	sec    int64
	loc    *time.Location
	prefix []byte // "2006-01-02T15:04:05"
	zone   []byte // "Z" or "-07:00"
	// The last time AppendTime wrote, in that second: its nanoseconds
	// and its text.
	ns   int
	text []byte
}

func (f *TextFormatter) second(t time.Time) {
	sec, loc := t.Unix(), t.Location()
	if f.prefix == nil || sec != f.sec || loc != f.loc {
		whole := time.Unix(sec, 0).In(loc)
		f.prefix = whole.AppendFormat(f.prefix[:0], "2006-01-02T15:04:05")
		f.zone = whole.AppendFormat(f.zone[:0], "Z07:00")
		f.sec, f.loc = sec, loc
		f.text = f.text[:0]
	}
}

// AppendSeconds appends t as time.RFC3339 formats it.
func (f *TextFormatter) AppendSeconds(dst []byte, t time.Time) []byte {
	f.second(t)
	dst = append(dst, f.prefix...)
	return append(dst, f.zone...)
}

// AppendTime appends t as time.RFC3339Nano formats it. Entries of one
// read often share their time: the last one is kept whole.
func (f *TextFormatter) AppendTime(dst []byte, t time.Time) []byte {
	f.second(t)
	if ns := t.Nanosecond(); len(f.text) == 0 || ns != f.ns {
		f.text = append(f.text[:0], f.prefix...)
		f.text = appendFraction(f.text, ns)
		f.text = append(f.text, f.zone...)
		f.ns = ns
	}
	return append(dst, f.text...)
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendFraction appends ns (0 to 999999999) as the fraction
// time.RFC3339Nano writes: a dot and up to nine digits, trailing zeros
// trimmed; nothing for zero.
func appendFraction(dst []byte, ns int) []byte {
	if ns == 0 {
		return dst
	}
	var frac [10]byte
	frac[0] = '.'
	frac[1] = byte('0' + ns/1e8)
	r := uint(ns % 1e8)
	p1, p2, p3, p4 := r/1e6*2, r/1e4%100*2, r/100%100*2, r%100*2
	frac[2], frac[3] = digitPairs[p1], digitPairs[p1+1]
	frac[4], frac[5] = digitPairs[p2], digitPairs[p2+1]
	frac[6], frac[7] = digitPairs[p3], digitPairs[p3+1]
	frac[8], frac[9] = digitPairs[p4], digitPairs[p4+1]
	n := 10
	for frac[n-1] == '0' {
		n--
	}
	return append(dst, frac[:n]...)
}

// Append appends one line and its newline.
func (f *TextFormatter) Append(dst []byte, t time.Time, source, msg string) []byte {
	dst = f.AppendTime(dst, t)
	dst = append(dst, ';')
	dst = AppendEscaped(dst, source, true)
	dst = append(dst, ';')
	dst = AppendEscaped(dst, msg, false)
	return append(dst, '\n')
}

// AppendBytes is Append for byte slices.
func (f *TextFormatter) AppendBytes(dst []byte, t time.Time, source, msg []byte) []byte {
	dst = f.AppendTime(dst, t)
	dst = append(dst, ';')
	dst = AppendEscapedBytes(dst, source, true)
	dst = append(dst, ';')
	dst = AppendEscapedBytes(dst, msg, false)
	return append(dst, '\n')
}
