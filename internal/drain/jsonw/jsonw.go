// Package jsonw appends JSON values to byte slices without reflection,
// for the destinations' encoders (one object per entry, at high rates).
package jsonw

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// The ASCII bytes String copies as they are, as bit sets: plainLo for
// 0-63 (0x20-0x3f but '"', '&', '<', '>'), plainHi for 64-127 (all but
// '\\').
const (
	plainLo uint64 = 0xffffffff00000000 &^ (1<<'"' | 1<<'&' | 1<<'<' | 1<<'>')
	plainHi uint64 = ^uint64(0) &^ (1 << ('\\' - 64))
)

func plain(c byte) bool {
	if c < 64 {
		return plainLo>>c&1 != 0
	}
	return plainHi>>(c-64)&1 != 0
}

// SWAR masks: a byte of ones, and the high bit of every byte.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether the 8 bytes of s at i are all plain (ASCII,
// 0x20 or above, none of '"', '\\', '&', '<', '>'), a word at a time.
func plain8(s string, i int) bool {
	s = s[i : i+8]
	w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	// A byte below 0x20, or with its high bit set; then a byte equal
	// to one of the five (w^c has a zero byte there).
	q, bs, a, l, g := w^'"'*ones, w^'\\'*ones, w^'&'*ones, w^'<'*ones, w^'>'*ones
	bad := (w-0x20*ones)&^w | w |
		(q-ones)&^q | (bs-ones)&^bs | (a-ones)&^a | (l-ones)&^l | (g-ones)&^g
	return bad&highs == 0
}

// String appends s as a JSON string. Invalid UTF-8 becomes U+FFFD and
// control characters are escaped, as encoding/json does.
func String(dst []byte, s string) []byte {
	dst, _ = StringLossy(dst, s)
	return dst
}

// StringLossy is String, and reports whether s held bytes that are not
// valid UTF-8 (written as U+FFFD, so the string does not carry s exactly).
func StringLossy(dst []byte, s string) (_ []byte, lossy bool) {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && plain8(s, i) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if plain(c) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			lossy = true
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += n
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), lossy
}

// Base64 appends the key name with s's bytes in standard base64 as its
// value: the exact bytes of a string that JSON (valid UTF-8 only) could
// not carry, written beside it as name_b64 keys are.
func Base64(dst []byte, name, s string) []byte {
	dst = Key(dst, name)
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, []byte(s))
	return append(dst, '"')
}

// Key appends `"name":` after a comma unless the object just opened.
func Key(dst []byte, name string) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' && dst[n-1] != '[' {
		dst = append(dst, ',')
	}
	dst = String(dst, name)
	return append(dst, ':')
}

// Time appends t in UTC as an RFC 3339 string with nanoseconds, as
// time.RFC3339Nano writes it (trailing zeros of the fraction left out).
func Time(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	days := sec / 86400
	if sec%86400 < 0 {
		days--
	}
	y, m, d := civil(days)
	if y < 0 || y > 9999 {
		dst = append(dst, '"')
		dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	hms := sec - days*86400
	h, mi, ss := hms/3600, hms/60%60, hms%60
	dst = append(dst, '"',
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+ss/10), byte('0'+ss%10))
	if ns := t.Nanosecond(); ns != 0 {
		var f [10]byte
		f[0] = '.'
		for k := 9; k >= 1; k-- {
			f[k] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for f[n-1] == '0' {
			n--
		}
		dst = append(dst, f[:n]...)
	}
	return append(dst, 'Z', '"')
}

// civil turns days since 1970-01-01 into a proleptic Gregorian date (the
// well-known era arithmetic: 400-year eras of 146097 days, years
// starting in March).
func civil(days int64) (y, m, d int64) {
	z := days + 719468
	era := z / 146097
	if z%146097 < 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

// Int appends n.
func Int(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// Uint appends n.
func Uint(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) }
