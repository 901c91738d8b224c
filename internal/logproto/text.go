package logproto

import (
	"encoding/binary"
	"errors"
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
	semi := uint8(2)
	if !source {
		semi = 0
	}
	special := byte(';')
	if !source {
		special = '"' // any byte that is not escaped: no effect
	}
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[i:]), special) {
			i += 8
			continue
		}
		k := escClass[s[i]]
		if k == 0 || (k == 2 && semi == 0) {
			i++
			continue
		}
		c := s[i]
		if k != 3 {
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
}

func (f *TextFormatter) second(t time.Time) {
	sec, loc := t.Unix(), t.Location()
	if f.prefix == nil || sec != f.sec || loc != f.loc {
		whole := time.Unix(sec, 0).In(loc)
		f.prefix = whole.AppendFormat(f.prefix[:0], "2006-01-02T15:04:05")
		f.zone = whole.AppendFormat(f.zone[:0], "Z07:00")
		f.sec, f.loc = sec, loc
	}
}

// AppendSeconds appends t as time.RFC3339 formats it.
func (f *TextFormatter) AppendSeconds(dst []byte, t time.Time) []byte {
	f.second(t)
	dst = append(dst, f.prefix...)
	return append(dst, f.zone...)
}

// AppendTime appends t as time.RFC3339Nano formats it.
func (f *TextFormatter) AppendTime(dst []byte, t time.Time) []byte {
	f.second(t)
	dst = append(dst, f.prefix...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, f.zone...)
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
