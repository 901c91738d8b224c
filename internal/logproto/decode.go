package logproto

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Record is one line of a reply, decoded. Type is empty for an entry.
// Source, Msg and SD hold the exact bytes memlogd has (from the _b64 keys
// when the text was not valid UTF-8).
type Record struct {
	Type string `json:"type,omitempty"`

	// Entry fields (legacy replies carry only Time, Source and Msg).
	Seq       uint64    `json:"seq,omitempty"`
	Time      time.Time `json:"time"`
	Source    string    `json:"source,omitempty"`
	Msg       string    `json:"msg,omitempty"`
	Facility  int       `json:"facility,omitempty"`
	Severity  int       `json:"severity,omitempty"`
	PID       int       `json:"pid,omitempty"`
	TS        time.Time `json:"ts"`
	SD        string    `json:"sd,omitempty"`
	Truncated bool      `json:"truncated,omitempty"`
	Partial   bool      `json:"partial,omitempty"`
	Raw       bool      `json:"raw,omitempty"`

	// Hello fields.
	Instance string `json:"instance,omitempty"`
	Boot     string `json:"boot,omitempty"`
	First    uint64 `json:"first,omitempty"`
	Next     uint64 `json:"next,omitempty"`
	Resumed  bool   `json:"resumed,omitempty"`
	Kmsg     bool   `json:"kmsg,omitempty"`

	// Gap field (Seq is the first sequence number after the gap).
	Lost uint64 `json:"lost,omitempty"`

	// Error field.
	Error string `json:"error,omitempty"`
}

// wireRecord is what the general decoder fills: the record and the keys
// that carry exact bytes.
type wireRecord struct {
	Record
	SourceB64 []byte `json:"source_b64"`
	MsgB64    []byte `json:"msg_b64"`
	SDB64     []byte `json:"sd_b64"`
}

func (w *wireRecord) apply() {
	if w.SourceB64 != nil {
		w.Source = string(w.SourceB64)
	}
	if w.MsgB64 != nil {
		w.Msg = string(w.MsgB64)
	}
	if w.SDB64 != nil {
		w.SD = string(w.SDB64)
	}
}

// DecodeRecord decodes one reply line with encoding/json: the general,
// strict decoder. Decoder.Decode gives the same results faster.
func DecodeRecord(line []byte) (Record, error) {
	var w wireRecord
	if err := json.Unmarshal(line, &w); err != nil {
		return Record{}, fmt.Errorf("decoding reply line: %w", err)
	}
	w.apply()
	return w.Record, nil
}

// OrigTime is the sender's timestamp if it has one, else receive time.
func (r *Record) OrigTime() time.Time {
	if !r.TS.IsZero() {
		return r.TS
	}
	return r.Time
}

// Decoder decodes reply lines into Records without reflection and, in the
// steady state, without an allocation per record: it reads the records
// memlogd writes (any key order, any JSON whitespace, unknown keys with
// scalar values) itself and hands anything else (null values, nested
// unknown values, numbers or times in other forms, keys that differ only
// in case, malformed input) to encoding/json, so that its results and
// errors are always DecodeRecord's.
//
// Strings of the records it returns live in append-only memory that is
// never written again, so they stay valid after later calls. A Decoder is
// not safe for concurrent use; the zero value is ready to use.
type Decoder struct {
	line     []byte // DecodeView's line
	arena    []byte
	scratch  []byte
	b64buf   []byte
	sources  map[string]string // interned sources
	srcCache [1 << srcCacheBits]string
	zones    map[int]*time.Location
	// The last whole second parsed, as text and as Unix time, and the
	// Unix time of its date.
	secText  [19]byte
	secWords [3]uint64 // secText's bytes 0-7, 8-15 and 11-18
	secUnix  int64
	dayUnix  int64
	secValid bool
	// The zone of the last numeric offset parsed in that second.
	zoneText  [6]byte
	zoneOff   int
	zoneLoc   *time.Location
	zoneValid bool
	// Path statistics, for tests and benchmarks: entries laid out as
	// memlogd writes them, other records decoded by hand, records
	// handed to encoding/json.
	entry, fast, slow uint64
}

const (
	arenaChunk = 64 << 10
	maxSources = 4096
)

// Decode decodes line into r (all of whose fields are overwritten).
func (d *Decoder) Decode(line []byte, r *Record) error {
	d.line = nil
	return d.decode(line, r)
}

// DecodeView is Decode for a caller that is done with r before line
// changes: r's strings may point into line, which saves copying them.
func (d *Decoder) DecodeView(line []byte, r *Record) error {
	d.line = line
	err := d.decode(line, r)
	d.line = nil
	return err
}

func (d *Decoder) decode(line []byte, r *Record) error {
	*r = Record{}
	if d.decodeEntry(line, r) {
		d.entry++
		return nil
	}
	*r = Record{}
	var b64 [3][]byte
	if d.decodeFast(line, r, &b64) {
		d.fast++
		if b64[0] != nil {
			r.Source = d.intern(b64[0])
		}
		if b64[1] != nil {
			r.Msg = d.str(b64[1])
		}
		if b64[2] != nil {
			r.SD = d.str(b64[2])
		}
		return nil
	}
	d.slow++
	rec, err := DecodeRecord(line)
	*r = rec
	return err
}

// Counts returns how many records the Decoder decoded itself and how many
// it handed to encoding/json.
func (d *Decoder) Counts() (fast, slow uint64) { return d.entry + d.fast, d.slow }

// str returns b as a string in the arena (or, for DecodeView, in the
// line if b is part of it).
func (d *Decoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if d.line != nil {
		p, lo := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&d.line[0]))
		if p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(d.line)) {
			return unsafe.String(&b[0], len(b))
		}
	}
	if len(b) > arenaChunk/8 {
		return string(b)
	}
	if cap(d.arena)-len(d.arena) < len(b) {
		d.arena = make([]byte, 0, arenaChunk)
	}
	n := len(d.arena)
	d.arena = append(d.arena, b...)
	// The arena's bytes up to len are never written again: a full
	// chunk is replaced, not reused.
	return unsafe.String(&d.arena[n], len(b))
}

// intern returns b as a string, shared with earlier records of the same
// source.
func (d *Decoder) intern(b []byte) string {
	if s, ok := d.sources[string(b)]; ok {
		return s
	}
	if d.sources == nil || len(d.sources) >= maxSources {
		d.sources = make(map[string]string)
	}
	s := string(b)
	d.sources[s] = s
	return s
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// knownKeys are the keys the fast path decodes; an unknown key that
// encoding/json would match to one of them case-insensitively goes to
// the general decoder.
var knownKeys = []string{"type", "seq", "time", "source", "msg", "facility", "severity", "pid", "ts", "sd",
	"truncated", "partial", "raw", "instance", "boot", "first", "next", "resumed", "kmsg", "lost", "error",
	KeySourceB64, KeyMsgB64, KeySDB64}

// decodeFast decodes the records memlogd writes; it returns false for
// anything it does not handle exactly as encoding/json does.
func (d *Decoder) decodeFast(b []byte, r *Record, b64 *[3][]byte) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			key, j, ok := rawString(b, i)
			if !ok {
				return false
			}
			i = skipSpace(b, j)
			if i >= len(b) || b[i] != ':' {
				return false
			}
			i = skipSpace(b, i+1)
			switch string(key) {
			case "seq":
				r.Seq, i, ok = parseUint(b, i)
			case "first":
				r.First, i, ok = parseUint(b, i)
			case "next":
				r.Next, i, ok = parseUint(b, i)
			case "lost":
				r.Lost, i, ok = parseUint(b, i)
			case "facility":
				r.Facility, i, ok = parseInt(b, i)
			case "severity":
				r.Severity, i, ok = parseInt(b, i)
			case "pid":
				r.PID, i, ok = parseInt(b, i)
			case "time":
				r.Time, i, ok = d.parseTime(b, i)
			case "ts":
				r.TS, i, ok = d.parseTime(b, i)
			case "source":
				var v []byte
				if v, i, ok = d.parseString(b, i); ok {
					r.Source = d.intern(v)
				}
			case "msg":
				r.Msg, i, ok = d.stringField(b, i)
			case "sd":
				r.SD, i, ok = d.stringField(b, i)
			case "type":
				var v []byte
				if v, i, ok = d.parseString(b, i); ok {
					r.Type = typeName(v, d)
				}
			case "instance":
				r.Instance, i, ok = d.stringField(b, i)
			case "boot":
				r.Boot, i, ok = d.stringField(b, i)
			case "error":
				r.Error, i, ok = d.stringField(b, i)
			case "truncated":
				r.Truncated, i, ok = parseBool(b, i)
			case "partial":
				r.Partial, i, ok = parseBool(b, i)
			case "raw":
				r.Raw, i, ok = parseBool(b, i)
			case "resumed":
				r.Resumed, i, ok = parseBool(b, i)
			case "kmsg":
				r.Kmsg, i, ok = parseBool(b, i)
			case KeySourceB64:
				b64[0], i, ok = d.parseB64(b, i)
			case KeyMsgB64:
				b64[1], i, ok = d.parseB64(b, i)
			case KeySDB64:
				b64[2], i, ok = d.parseB64(b, i)
			default:
				for _, k := range knownKeys {
					if len(k) == len(key) && strings.EqualFold(k, string(key)) {
						return false
					}
				}
				i, ok = skipScalar(b, i)
			}
			if !ok {
				return false
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return false
			}
			if b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if b[i] == '}' {
				i++
				break
			}
			return false
		}
	}
	return skipSpace(b, i) == len(b)
}

// typeName returns the record type, without allocating for known ones.
func typeName(v []byte, d *Decoder) string {
	switch string(v) {
	case TypeHello:
		return TypeHello
	case TypeGap:
		return TypeGap
	case TypeEnd:
		return TypeEnd
	case TypeError:
		return TypeError
	}
	return d.str(v)
}

// rawString returns the contents of the JSON string at b[i] if it holds
// no escape sequence and no byte outside printable ASCII (for keys).
func rawString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			return b[i+1 : j], j + 1, true
		}
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			return nil, i, false
		}
	}
	return nil, i, false
}

func (d *Decoder) stringField(b []byte, i int) (string, int, bool) {
	v, i, ok := d.parseString(b, i)
	if !ok {
		return "", i, false
	}
	return d.str(v), i, true
}

// parseString decodes the JSON string at b[i] as encoding/json does:
// escape sequences resolved (unpaired surrogates become U+FFFD) and each
// byte that is not part of valid UTF-8 replaced by U+FFFD. The result is
// either a slice of b or of d.scratch, valid until the next call.
func (d *Decoder) parseString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	start := i + 1
	ascii := true
	j := start
	// Eight bytes at a time to the next byte that is '"', '\\', a
	// control byte or, until one is seen, a byte of a non-ASCII
	// sequence (validated as a whole below).
	hi := uint64(msb)
scan:
	for {
		j = scanString(b, j, hi)
		if j >= len(b) {
			break
		}
		switch c := b[j]; {
		case c == '"':
			break scan
		case c == '\\':
			return d.unquote(b, start)
		case c < 0x20:
			return nil, i, false
		case c >= utf8.RuneSelf:
			ascii, hi = false, 0
		}
		j++
	}
	if j >= len(b) {
		return nil, i, false
	}
	v := b[start:j]
	if ascii || utf8.Valid(v) {
		return v, j + 1, true
	}
	d.scratch = appendCoerced(d.scratch[:0], v)
	return d.scratch, j + 1, true
}

// appendCoerced appends v with every byte that is not part of valid
// UTF-8 replaced by U+FFFD.
func appendCoerced(dst, v []byte) []byte {
	for len(v) > 0 {
		r, size := utf8.DecodeRune(v)
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, v[:size]...)
		}
		v = v[size:]
	}
	return dst
}

// hex4 parses the four hex digits of a \u escape at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		v, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// unquote is the slow part of parseString: a string with escapes,
// starting after its opening quote at b[start].
func (d *Decoder) unquote(b []byte, start int) ([]byte, int, bool) {
	out := d.scratch[:0]
	i := start
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			d.scratch = out
			return out, i + 1, true
		case c < 0x20:
			return nil, start, false
		case c == '\\':
			if i+1 >= len(b) {
				return nil, start, false
			}
			switch b[i+1] {
			case '"', '\\', '/':
				out = append(out, b[i+1])
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(b, i+2)
				if !ok {
					return nil, start, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
						if r2, ok := hex4(b, i+2); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								out = utf8.AppendRune(out, dec)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return nil, start, false
			}
			i += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
	return nil, start, false
}

// parseB64 decodes a base64 string without escapes.
func (d *Decoder) parseB64(b []byte, i int) ([]byte, int, bool) {
	v, j, ok := rawString(b, i)
	if !ok {
		return nil, i, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
	n, err := base64.StdEncoding.Decode(out, v)
	if err != nil {
		return nil, i, false
	}
	return out[:n], j, true
}

// numberEnd reports whether b[i] may follow a number that is complete
// as an integer (a fraction or exponent goes to the general decoder).
func numberEnd(b []byte, i int) bool {
	return i == len(b) || isSpace(b[i]) || b[i] == ',' || b[i] == '}'
}

// parseUint parses a JSON integer for a uint64 field.
func parseUint(b []byte, i int) (uint64, int, bool) {
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		return 0, i, false
	}
	if b[i] == '0' {
		return 0, i + 1, numberEnd(b, i+1)
	}
	var v uint64
	j := i
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		if j-i >= 19 { // 20 digits may overflow: leave it to strconv
			return 0, i, false
		}
		v = v*10 + uint64(b[j]-'0')
	}
	return v, j, numberEnd(b, j)
}

// parseInt parses a JSON integer for an int field.
func parseInt(b []byte, i int) (int, int, bool) {
	neg := false
	j := i
	if j < len(b) && b[j] == '-' {
		neg = true
		j++
	}
	v, k, ok := parseUint(b, j)
	if !ok || v > 1<<62 {
		return 0, i, false
	}
	if neg {
		return -int(v), k, true
	}
	return int(v), k, true
}

func parseBool(b []byte, i int) (bool, int, bool) {
	switch {
	case len(b)-i >= 4 && string(b[i:i+4]) == "true":
		return true, i + 4, numberEnd(b, i+4)
	case len(b)-i >= 5 && string(b[i:i+5]) == "false":
		return false, i + 5, numberEnd(b, i+5)
	}
	return false, i, false
}

// skipScalar skips a string, number, true or false (null and nested
// values go to the general decoder).
func skipScalar(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		for j := i + 1; j < len(b); j++ {
			switch c := b[j]; {
			case c == '"':
				return j + 1, true
			case c < 0x20:
				return i, false
			case c == '\\':
				if j+1 >= len(b) {
					return i, false
				}
				switch b[j+1] {
				case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
					j++
				case 'u':
					if _, ok := hex4(b, j+2); !ok {
						return i, false
					}
					j += 5
				default:
					return i, false
				}
			}
		}
		return i, false
	case c == 't' || c == 'f':
		_, j, ok := parseBool(b, i)
		return j, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	}
	return i, false
}

// skipNumber skips a number of JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, bool) {
	j := i
	if b[j] == '-' {
		j++
	}
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '0' {
		j++
	} else if !digits() {
		return i, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return i, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return i, false
		}
	}
	return j, numberEnd(b, j)
}

func digits2(b []byte) (int, bool) {
	if b[0] < '0' || b[0] > '9' || b[1] < '0' || b[1] > '9' {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}

func daysIn(m, year int) int {
	switch m {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parseTime parses a JSON string holding an RFC 3339 time as
// time.Time's UnmarshalJSON does, for the forms timeAt reads.
func (d *Decoder) parseTime(b []byte, i int) (time.Time, int, bool) {
	v, j, ok := rawString(b, i)
	if !ok {
		return time.Time{}, i, false
	}
	t, n, ok := d.timeAt(v)
	if !ok || n != len(v) {
		return time.Time{}, i, false
	}
	return t, j, true
}

func (d *Decoder) zone(off int) *time.Location {
	if z, ok := d.zones[off]; ok {
		return z
	}
	if d.zones == nil || len(d.zones) > 64 {
		d.zones = make(map[int]*time.Location)
	}
	z := time.FixedZone("", off)
	d.zones[off] = z
	return z
}

// SWAR constants: every byte 0x01, every byte 0x80.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// scanString returns the index of the first byte at or after j that
// strMask flags, or of the first of the last seven bytes of b if none
// before them is.
func scanString(b []byte, j int, hi uint64) int {
	le := binary.LittleEndian
	for ; j+16 <= len(b); j += 16 {
		m0, m1 := strMask(le.Uint64(b[j:]), hi), strMask(le.Uint64(b[j+8:]), hi)
		if m0|m1 != 0 {
			if m0 != 0 {
				return j + bits.TrailingZeros64(m0)>>3
			}
			return j + 8 + bits.TrailingZeros64(m1)>>3
		}
	}
	for ; j+8 <= len(b); j += 8 {
		if m := strMask(le.Uint64(b[j:]), hi); m != 0 {
			return j + bits.TrailingZeros64(m)>>3
		}
	}
	return j
}

// strMask has the high bit set in the lowest byte of x that is '"',
// '\\' or below 0x20, or at or above 0x80 if hi is msb (bits above
// that byte may be set too); it is zero if there is none.
func strMask(x, hi uint64) uint64 {
	q := x ^ (lsb * '"')
	bs := x ^ (lsb * '\\')
	// A subtraction sets a byte's high bit if the byte is below the
	// subtrahend, or if it borrowed from a lower byte that was; &^ x
	// drops bytes that had the high bit set already.
	return (((x-lsb*0x20)|(q-lsb)|(bs-lsb))&^x | x&hi) & msb
}
