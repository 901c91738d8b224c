package logproto

import (
	"encoding/binary"
	"time"
	"unicode/utf8"
	"unsafe"
)

// The implementations before the word-at-a-time scans, kept as the
// reference the new ones must match byte for byte (fuzzed) and as the
// baseline of their benchmarks.

// appendEscapedRef is the former AppendEscaped.
func appendEscapedRef(dst []byte, s string, source bool) []byte {
	semi := uint8(2)
	if !source {
		semi = 0
	}
	special := byte(';')
	if !source {
		special = '"'
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

// plain8 reports whether the eight bytes of x are all printable ASCII
// (0x20-0x7e) and none is '\\' or special.
func plain8(x uint64, special byte) bool {
	low := (x - lsb*0x20) & ^x // a byte below 0x20
	high := (x + lsb*0x01) | x // a byte of 0x7f or more
	bs := x ^ (lsb * '\\')
	bs = (bs - lsb) & ^bs // a byte equal to '\\'
	sp := x ^ (lsb * uint64(special))
	sp = (sp - lsb) & ^sp // a byte equal to special
	return (low|high|bs|sp)&msb == 0
}

// textFormatterRef is the former TextFormatter.
type textFormatterRef struct {
	sec    int64
	loc    *time.Location
	prefix []byte
	zone   []byte
}

func (f *textFormatterRef) appendTime(dst []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	if f.prefix == nil || sec != f.sec || loc != f.loc {
		whole := time.Unix(sec, 0).In(loc)
		f.prefix = whole.AppendFormat(f.prefix[:0], "2006-01-02T15:04:05")
		f.zone = whole.AppendFormat(f.zone[:0], "Z07:00")
		f.sec, f.loc = sec, loc
	}
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

func (f *textFormatterRef) appendBytes(dst []byte, t time.Time, source, msg []byte) []byte {
	dst = f.appendTime(dst, t)
	dst = append(dst, ';')
	dst = appendEscapedRef(dst, unsafe.String(unsafe.SliceData(source), len(source)), true)
	dst = append(dst, ';')
	dst = appendEscapedRef(dst, unsafe.String(unsafe.SliceData(msg), len(msg)), false)
	return append(dst, '\n')
}

// appendStringRef is the former appendString.
func appendStringRef(dst, s []byte) (_ []byte, lossy bool) {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && jsonPlain8Ref(binary.LittleEndian.Uint64(s[i:])) {
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

func jsonPlain8Ref(x uint64) bool {
	eq := func(c byte) uint64 {
		y := x ^ (lsb * uint64(c))
		return (y - lsb) & ^y
	}
	low := (x - lsb*0x20) & ^x
	return (low|x|eq('"')|eq('\\')|eq('<')|eq('>')|eq('&'))&msb == 0
}

// timeFormatterRef is the former TimeFormatter: time.AppendFormat for
// each new time.
type timeFormatterRef struct {
	last int64
	buf  []byte
}

func (f *timeFormatterRef) append(dst []byte, ns int64) []byte {
	if f.buf == nil || ns != f.last {
		f.buf = append(f.buf[:0], '"')
		f.buf = time.Unix(0, ns).AppendFormat(f.buf, time.RFC3339Nano)
		f.buf = append(f.buf, '"')
		f.last = ns
	}
	return append(dst, f.buf...)
}
