package logproto

import (
	"encoding/base64"
	"encoding/binary"
	"math/bits"
	"time"
)

// The entry path: the records memlogd writes most, laid out exactly as
// its encoder writes them (AppendEntry, AppendLegacy): keys in a fixed
// order, no whitespace. Each key is matched with one comparison at the
// place it must be, so no key is scanned, looked up or checked for
// duplicates. Anything else (another order, whitespace, a missing or
// unknown key) goes to the general path (decodeFast), which accepts any
// order; values are parsed by the same functions in both.
//
//	{"seq":N,"time":T,"source":S[,"source_b64":B],"msg":S[,"msg_b64":B],
//	 "facility":N,"severity":N[,"pid":N][,"ts":T][,"sd":S[,"sd_b64":B]]
//	 [,"truncated":true][,"partial":true][,"raw":true]}
//	{"time":T,"source":S,"msg":S}

// lit reports whether b holds s at i.
func lit(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// decodeEntry decodes an entry laid out as memlogd writes it into r
// (which is zero); it returns false, with r partly written, for anything
// else.
func (d *Decoder) decodeEntry(b []byte, r *Record) bool {
	var (
		i  int
		ok bool
		v  []byte
	)
	legacy := false
	switch {
	case lit(b, 0, `{"seq":`):
		if r.Seq, i, ok = parseUint(b, 7); !ok || !lit(b, i, `,"time":`) {
			return false
		}
		i += 8
	case lit(b, 0, `{"time":`):
		i, legacy = 8, true
	default:
		return false
	}
	if r.Time, i, ok = d.timeValue(b, i); !ok || !lit(b, i, `,"source":`) {
		return false
	}
	if v, i, ok = d.parseString(b, i+10); !ok {
		return false
	}
	if !legacy && lit(b, i, `,"source_b64":`) {
		if v, i, ok = d.b64Value(b, i+14); !ok {
			return false
		}
	}
	r.Source = d.source(v)
	if !lit(b, i, `,"msg":`) {
		return false
	}
	if r.Msg, i, ok = d.stringValue(b, i+7, !legacy, `,"msg_b64":`); !ok {
		return false
	}
	if legacy {
		return d.entryEnd(b, i)
	}
	if !lit(b, i, `,"facility":`) {
		return false
	}
	var n uint64
	if n, i, ok = smallUint(b, i+12); !ok || n > 1<<62 || !lit(b, i, `,"severity":`) {
		return false
	}
	r.Facility = int(n)
	if n, i, ok = smallUint(b, i+12); !ok || n > 1<<62 {
		return false
	}
	r.Severity = int(n)
	if lit(b, i, `,"pid":`) {
		if r.PID, i, ok = parseInt(b, i+7); !ok {
			return false
		}
	}
	if lit(b, i, `,"ts":`) {
		if r.TS, i, ok = d.timeValue(b, i+6); !ok {
			return false
		}
	}
	if lit(b, i, `,"sd":`) {
		if r.SD, i, ok = d.stringValue(b, i+6, true, `,"sd_b64":`); !ok {
			return false
		}
	}
	if lit(b, i, `,"truncated":true`) {
		r.Truncated, i = true, i+17
	}
	if lit(b, i, `,"partial":true`) {
		r.Partial, i = true, i+15
	}
	if lit(b, i, `,"raw":true`) {
		r.Raw, i = true, i+11
	}
	return d.entryEnd(b, i)
}

// entryEnd checks that the record closes at b[i].
func (d *Decoder) entryEnd(b []byte, i int) bool {
	return i < len(b) && b[i] == '}' && skipSpace(b, i+1) == len(b)
}

// stringValue decodes the string at b[i] and, if withB64 and b64Key
// follows it, the exact bytes of that key in its place.
func (d *Decoder) stringValue(b []byte, i int, withB64 bool, b64Key string) (string, int, bool) {
	v, i, ok := d.parseString(b, i)
	if !ok {
		return "", i, false
	}
	if withB64 && lit(b, i, b64Key) {
		return d.b64String(b, i+len(b64Key))
	}
	return d.str(v), i, true
}

// b64Value decodes the base64 string at b[i] into memory that stays valid
// until the next call.
func (d *Decoder) b64Value(b []byte, i int) ([]byte, int, bool) {
	v, j, ok := rawString(b, i)
	if !ok {
		return nil, i, false
	}
	d.b64buf = growTo(d.b64buf, base64.StdEncoding.DecodedLen(len(v)))
	n, err := base64.StdEncoding.Decode(d.b64buf, v)
	if err != nil {
		return nil, i, false
	}
	return d.b64buf[:n], j, true
}

// b64String is b64Value as a string of its own.
func (d *Decoder) b64String(b []byte, i int) (string, int, bool) {
	v, j, ok := d.b64Value(b, i)
	if !ok {
		return "", i, false
	}
	return d.str(v), j, true
}

func growTo(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// source returns v as an interned string. A small direct-mapped cache of
// recent sources, indexed by a hash of a few words, answers most lookups
// before the map does.
func (d *Decoder) source(v []byte) string {
	h := sourceHash(v)
	if s := d.srcCache[h]; len(s) == len(v) && s == string(v) {
		return s
	}
	s := d.intern(v)
	d.srcCache[h] = s
	return s
}

const srcCacheBits = 4

func sourceHash(v []byte) uint {
	var x uint64
	if n := len(v); n >= 8 {
		x = binary.LittleEndian.Uint64(v) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(v[n-8:]), 29)
	} else {
		for _, c := range v {
			x = x<<8 | uint64(c)
		}
	}
	x ^= uint64(len(v)) << 58
	return uint((x * 0x9e3779b97f4a7c15) >> (64 - srcCacheBits))
}

// timeValue parses the JSON string at b[i] holding an RFC 3339 time, as
// parseTime does, without scanning for its end first.
func (d *Decoder) timeValue(b []byte, i int) (time.Time, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return time.Time{}, i, false
	}
	t, n, ok := d.timeAt(b[i+1:])
	if !ok || i+1+n >= len(b) || b[i+1+n] != '"' {
		return time.Time{}, i, false
	}
	return t, i + n + 2, true
}

var pow10 = [10]int64{1e9, 1e8, 1e7, 1e6, 1e5, 1e4, 1e3, 1e2, 1e1, 1}

// timeAt parses the RFC 3339 time at the start of v in the forms memlogd
// writes (YYYY-MM-DDTHH:MM:SS, 1 to 9 fraction digits, then Z or
// +HH:MM/-HH:MM), as time.Time's UnmarshalJSON would, and returns how many
// bytes it took. The second (as text and as Unix time) is cached, and
// within a second the zone of its last offset; a new second on the same
// date costs no date arithmetic.
func (d *Decoder) timeAt(v []byte) (time.Time, int, bool) {
	if len(v) < 20 {
		return time.Time{}, 0, false
	}
	le := binary.LittleEndian
	if !d.secValid || le.Uint64(v) != d.secWords[0] || le.Uint64(v[8:]) != d.secWords[1] || le.Uint64(v[11:]) != d.secWords[2] {
		if !d.newSecond(v[:19]) {
			return time.Time{}, 0, false
		}
	}
	k := 19
	var nsec int64
	if v[k] == '.' {
		k++
		start := k
		if len(v)-k >= 8 {
			// Up to eight digits at once.
			var m int
			nsec, m = digits8(le.Uint64(v[k:]))
			k += m
		}
		for k < len(v) && k-start < 10 && v[k] >= '0' && v[k] <= '9' {
			nsec = nsec*10 + int64(v[k]-'0')
			k++
		}
		n := k - start
		if n < 1 || n > 9 {
			return time.Time{}, 0, false
		}
		nsec *= pow10[n]
	}
	if k >= len(v) {
		return time.Time{}, 0, false
	}
	if v[k] == 'Z' {
		return time.Unix(d.secUnix, nsec).UTC(), k + 1, true
	}
	if len(v)-k < 6 || (v[k] != '+' && v[k] != '-') || v[k+3] != ':' {
		return time.Time{}, 0, false
	}
	zone := v[k : k+6]
	if !d.zoneValid || string(zone) != string(d.zoneText[:]) {
		oh, okh := digits2(zone[1:3])
		om, okm := digits2(zone[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, 0, false
		}
		off := (oh*60 + om) * 60
		if zone[0] == '-' {
			off = -off
		}
		// As time.Parse: the local zone if it has this offset at that
		// time, else a zone of this offset with no name.
		loc := time.Local
		if _, lo := time.Unix(d.secUnix-int64(off), 0).In(time.Local).Zone(); lo != off {
			loc = d.zone(off)
		}
		copy(d.zoneText[:], zone)
		d.zoneOff, d.zoneLoc, d.zoneValid = off, loc, true
	}
	return time.Unix(d.secUnix-int64(d.zoneOff), nsec).In(d.zoneLoc), k + 6, true
}

// newSecond parses YYYY-MM-DDTHH:MM:SS into the second cache; the date
// part is converted only when it differs from the cached one.
func (d *Decoder) newSecond(v []byte) bool {
	if v[10] != 'T' || v[13] != ':' || v[16] != ':' {
		return false
	}
	hh, ok1 := digits2(v[11:13])
	mm, ok2 := digits2(v[14:16])
	ss, ok3 := digits2(v[17:19])
	if !(ok1 && ok2 && ok3) || hh > 23 || mm > 59 || ss > 59 {
		return false
	}
	if !d.secValid || string(v[:10]) != string(d.secText[:10]) {
		if v[4] != '-' || v[7] != '-' {
			return false
		}
		y1, ok1 := digits2(v[0:2])
		y2, ok2 := digits2(v[2:4])
		mon, ok3 := digits2(v[5:7])
		day, ok4 := digits2(v[8:10])
		if !(ok1 && ok2 && ok3 && ok4) {
			return false
		}
		year := y1*100 + y2
		if mon < 1 || mon > 12 || day < 1 || day > daysIn(mon, year) {
			return false
		}
		d.dayUnix = time.Date(year, time.Month(mon), day, 0, 0, 0, 0, time.UTC).Unix()
	}
	d.secUnix = d.dayUnix + int64(hh*3600+mm*60+ss)
	copy(d.secText[:], v)
	le := binary.LittleEndian
	d.secWords = [3]uint64{le.Uint64(v), le.Uint64(v[8:]), le.Uint64(v[11:])}
	d.secValid = true
	d.zoneValid = false
	return true
}

// digits8 returns the value of the decimal digits x starts with (its
// bytes in memory order) and how many there are, at most eight.
func digits8(x uint64) (int64, int) {
	t := x - lsb*'0'
	// A byte's high bit is set if it is not a digit (below '0': the
	// subtraction wrapped; above '9': adding 0x76 reaches 0x80), or
	// possibly if a lower byte was not: the lowest one is exact.
	n := bits.TrailingZeros64((t|(t+lsb*0x76))&msb) >> 3
	if n == 0 {
		return 0, 0
	}
	// The n digits into the high bytes, zeros below them as leading
	// digits; then digits into pairs, and pairs into the whole.
	t <<= 64 - 8*uint(n)
	t = t*10 + t>>8
	t = ((t&0x000000ff000000ff)*(100+1000000<<32) + (t>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
	return int64(t), n
}

// smallUint is parseUint for the one- or two-digit numbers most fields
// hold, inline; others go to parseUint.
func smallUint(b []byte, i int) (uint64, int, bool) {
	if i+2 < len(b) {
		c0, c1 := b[i]-'0', b[i+1]
		if c0 <= 9 && (c1 == ',' || c1 == '}') {
			return uint64(c0), i + 1, true
		}
		if c0-1 <= 8 && c1-'0' <= 9 && (b[i+2] == ',' || b[i+2] == '}') {
			return uint64(c0*10 + c1 - '0'), i + 2, true
		}
	}
	return parseUint(b, i)
}
