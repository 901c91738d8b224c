package syslogd

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/lklog/lklog/internal/ring"
	"gopkg.in/mcuadros/go-syslog.v2/format"
)

// Format says how a datagram was understood.
type Format uint8

const (
	// FormatRaw: no usable header; the entry's Msg is the whole datagram
	// (after stripping trailing newlines, carriage returns and NULs) and its
	// flags include ring.FlagRaw.
	FormatRaw Format = iota
	// Format3164: a BSD-style message as sent by glibc, musl and busybox:
	// <PRI>, then optionally a timestamp, optionally a TAG[PID]: prefix.
	Format3164
	// Format5424: an RFC 5424 message (<PRI>1 TIMESTAMP HOST APP PROCID
	// MSGID SD MSG).
	Format5424
)

func (f Format) String() string {
	switch f {
	case FormatRaw:
		return "raw"
	case Format3164:
		return "rfc3164"
	case Format5424:
		return "rfc5424"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Defaults used when a message carries no PRI: user.notice, as syslogd
// and RFC 3164 section 4.3.3 do.
const (
	DefaultFacility = 1
	DefaultSeverity = ring.SevNotice
)

// DefaultSource is the source of entries whose message names no program.
const DefaultSource = "syslog"

var defaultSource = []byte(DefaultSource)

var utf8BOM = []byte("\xef\xbb\xbf")

// Parse turns one datagram into an entry. It never fails: what it cannot
// understand is kept whole as a raw entry (FormatRaw, ring.FlagRaw, source
// "syslog"), and an empty datagram gives a raw entry with an empty message.
//
// The entry's byte slices point into b where possible (always for RFC 3164
// and raw entries), so b must stay unchanged until the entry has been
// copied. Seq and Time are left zero for the caller. now is the time of
// receipt, used to choose the year of an RFC 3164 timestamp; loc is the zone
// of RFC 3164 timestamps, which carry none (nil means time.Local).
//
// Trailing '\n', '\r' and NUL bytes are stripped; everything else,
// including invalid UTF-8, is kept as sent.
func Parse(b []byte, now time.Time, loc *time.Location) (ring.Entry, Format) {
	b = trimTrailing(b)
	e := ring.Entry{Source: defaultSource, Facility: DefaultFacility, Severity: DefaultSeverity}
	pri, n, ok := parsePRI(b)
	if !ok {
		return rawEntry(e, b), FormatRaw
	}
	e.Facility, e.Severity = uint8(pri/8), uint8(pri%8)
	rest := b[n:]
	if len(rest) >= 2 && rest[0] == '1' && rest[1] == ' ' {
		if parse5424(&e, b) {
			return e, Format5424
		}
		// go-syslog's RFC 5424 parser zeroes every field on error: keep
		// the whole datagram rather than guess.
		return rawEntry(e, b), FormatRaw
	}
	parse3164(&e, rest, now, loc)
	return e, Format3164
}

// Reserved reports whether source is a name only root may log under on
// /dev/log: "kmsg" (the kernel's records: the kmsg service resumes after
// the kernel sequence number the last of them carries, so a forged one
// would make it skip records) and "memlogd" (memlogd's own notices, such
// as how many entries were lost).
func Reserved(source []byte) bool {
	return string(source) == "kmsg" || string(source) == "memlogd"
}

// Unclaimed is the entry for datagram b whose parse gave e when the sender
// may not use e's source: the whole datagram kept raw under the default
// source, as Parse keeps what it cannot take, with e's facility and
// severity.
func Unclaimed(b []byte, e ring.Entry) ring.Entry {
	return rawEntry(ring.Entry{Source: defaultSource, Facility: e.Facility, Severity: e.Severity}, trimTrailing(b))
}

func rawEntry(e ring.Entry, b []byte) ring.Entry {
	e.Msg = b
	e.Flags |= ring.FlagRaw
	return e
}

// trimTrailing strips the newline musl appends, the NUL some clients send
// on stream sockets, and CRs.
func trimTrailing(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case '\n', '\r', 0:
			b = b[:len(b)-1]
		default:
			return b
		}
	}
	return b
}

// parsePRI parses "<N>" with N in 0..191 (facility 0..23), 1 to 3 digits
// and no leading zero unless N is 0. It returns the value and the length
// of the PRI part.
func parsePRI(b []byte) (pri, n int, ok bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, 0, false
	}
	i := 1
	for ; i < len(b) && i <= 4 && isDigit(b[i]); i++ {
		pri = pri*10 + int(b[i]-'0')
	}
	digits := i - 1
	if digits == 0 || digits > 3 || i >= len(b) || b[i] != '>' {
		return 0, 0, false
	}
	if digits > 1 && b[1] == '0' {
		return 0, 0, false
	}
	if pri > 191 {
		return 0, 0, false
	}
	return pri, i + 1, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parse3164 fills e from what follows the PRI of a BSD-style message:
//
//	[TIMESTAMP SP] [HOSTNAME SP] [TAG[ "[" PID "]" ] ":" [SP]] MSG
//
// TIMESTAMP is "Mmm dd hh:mm:ss" (dd may be space-padded) or RFC 3339.
// A TAG is recognised only when it is ended by ':' (optionally after a
// bracketed PID) before any space; a HOSTNAME is skipped only after a
// timestamp and only when a TAG follows it, so that a message without a
// tag is kept whole.
func parse3164(e *ring.Entry, rest []byte, now time.Time, loc *time.Location) {
	ts, n, hadTS := parseTimestamp3164(rest, now, loc)
	if hadTS {
		e.OrigTime = ts
		rest = rest[n:]
		if len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
	}
	tag, pid, hasPID, after, ok := parseTag(rest)
	if !ok && hadTS {
		if sp := bytes.IndexByte(rest, ' '); sp > 0 && isHostname(rest[:sp]) {
			if t, p, hp, a, ok2 := parseTag(rest[sp+1:]); ok2 {
				tag, pid, hasPID, after, ok = t, p, hp, a+sp+1, true
			}
		}
	}
	if !ok {
		e.Msg = rest
		return
	}
	if len(tag) > 0 {
		e.Source = tag
	}
	if hasPID {
		e.PID = pid
		e.Flags |= ring.FlagHasPID
	}
	e.Msg = rest[after:]
}

// isHostname accepts the printable ASCII a hostname or IP address is made of.
func isHostname(b []byte) bool {
	for _, c := range b { // ':' is allowed: IPv6 addresses
		if c <= ' ' || c >= 0x7f || c == '[' || c == ']' {
			return false
		}
	}
	return len(b) > 0
}

// parseTag recognises "TAG:" or "TAG[PID]:" at the start of b, followed by
// an optional space; after is the offset of the message. TAG may be empty
// (musl without an ident sends ": msg"), is at most ring.MaxSourceLen bytes
// and holds only printable US-ASCII (33-126), as RFC 5424 requires of an
// APP-NAME: no space, control character or non-ASCII byte, so that a tag
// cannot pass for another program's name.
func parseTag(b []byte) (tag []byte, pid int32, hasPID bool, after int, ok bool) {
	i := 0
	for ; i < len(b); i++ {
		c := b[i]
		if c == ':' || c == '[' {
			break
		}
		if c <= ' ' || c >= 0x7f || i >= ring.MaxSourceLen {
			return nil, 0, false, 0, false
		}
	}
	if i == len(b) {
		return nil, 0, false, 0, false
	}
	tag = b[:i]
	if b[i] == '[' {
		j := bytes.IndexByte(b[i+1:], ']')
		if j < 0 || i+1+j+1 >= len(b) || b[i+1+j+1] != ':' {
			return nil, 0, false, 0, false
		}
		pid, hasPID = parsePID(b[i+1 : i+1+j])
		i = i + 1 + j + 1 // at ':'
	}
	after = i + 1
	if after < len(b) && b[after] == ' ' {
		after++
	}
	return tag, pid, hasPID, after, true
}

// parsePID accepts 1 to 10 decimal digits giving a positive int32.
func parsePID(b []byte) (int32, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if v <= 0 || v > 1<<31-1 {
		return 0, false
	}
	return int32(v), true
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseTimestamp3164 recognises "Mmm dd hh:mm:ss" (the year chosen to put
// it nearest to now, in loc) or an RFC 3339 timestamp ending at a space or
// the end of b. It returns Unix nanoseconds and the length consumed.
func parseTimestamp3164(b []byte, now time.Time, loc *time.Location) (int64, int, bool) {
	if loc == nil {
		loc = time.Local
	}
	if len(b) >= 15 && (len(b) == 15 || b[15] == ' ') && b[3] == ' ' && b[6] == ' ' && b[9] == ':' && b[12] == ':' {
		mon := 0
		for i, m := range months {
			if string(b[:3]) == m {
				mon = i + 1
				break
			}
		}
		day, okd := twoDigits(b[4], b[5], true)
		h, okh := twoDigits(b[7], b[8], false)
		m, okm := twoDigits(b[10], b[11], false)
		s, oks := twoDigits(b[13], b[14], false)
		if mon == 0 || !okd || !okh || !okm || !oks || day < 1 || day > 31 || h > 23 || m > 59 || s > 60 {
			return 0, 0, false
		}
		t, ok := nearestYear(now, time.Month(mon), day, h, m, s, loc)
		if !ok {
			return 0, 0, false
		}
		return t.UnixNano(), 15, true
	}
	if len(b) >= 20 && isDigit(b[0]) && isDigit(b[1]) && isDigit(b[2]) && isDigit(b[3]) && b[4] == '-' {
		end := bytes.IndexByte(b, ' ')
		if end < 0 {
			end = len(b)
		}
		if end > 40 {
			return 0, 0, false
		}
		t, err := time.Parse(time.RFC3339Nano, string(b[:end]))
		if err != nil {
			return 0, 0, false
		}
		return t.UnixNano(), end, true
	}
	return 0, 0, false
}

// twoDigits parses "dd" (or " d" when padded is allowed).
func twoDigits(a, b byte, padded bool) (int, bool) {
	if !isDigit(b) {
		return 0, false
	}
	if a == ' ' && padded {
		return int(b - '0'), true
	}
	if !isDigit(a) {
		return 0, false
	}
	return int(a-'0')*10 + int(b-'0'), true
}

// nearestYear picks, among last year, this year and next year, the date
// nearest to now (a message sent on Dec 31 and received on Jan 1 belongs
// to last year). Dates that do not exist in a year (Feb 29) are skipped.
func nearestYear(now time.Time, mon time.Month, day, h, m, s int, loc *time.Location) (time.Time, bool) {
	// Fast path: this year's date, when it exists and is within half a
	// year of now, is the nearest.
	const halfYear = 182 * 24 * time.Hour
	if t := time.Date(now.In(loc).Year(), mon, day, h, m, s, 0, loc); t.Day() == day {
		if d := t.Sub(now); d > -halfYear && d < halfYear {
			return t, true
		}
	}
	var best time.Time
	var bestD time.Duration
	found := false
	y := now.In(loc).Year()
	for _, yy := range [3]int{y, y - 1, y + 1} {
		t := time.Date(yy, mon, day, h, m, s, 0, loc)
		if t.Month() != mon || t.Day() != day {
			continue
		}
		d := t.Sub(now)
		if d < 0 {
			d = -d
		}
		if !found || d < bestD {
			best, bestD, found = t, d, true
		}
	}
	return best, found
}

// errPanic reports a panic inside go-syslog's parser.
var errPanic = errors.New("syslogd: go-syslog parser panicked")

// parse5424 parses b (the whole datagram, PRI included) with go-syslog's
// RFC 5424 parser. It returns false if that parser fails (it then zeroes
// every field, so the caller keeps the datagram raw).
func parse5424(e *ring.Entry, b []byte) bool {
	p := (&format.RFC5424{}).GetParser(b)
	if err := safeParse(p); err != nil {
		return false
	}
	parts := p.Dump()
	app, _ := parts["app_name"].(string)
	procID, _ := parts["proc_id"].(string)
	sd, _ := parts["structured_data"].(string)
	msg, _ := parts["message"].(string)
	ts, _ := parts["timestamp"].(time.Time)
	if len(msg) > len(b) || string(b[len(b)-len(msg):]) != msg {
		return false // not the suffix of b: the parser misread the header
	}
	msgStart := len(b) - len(msg)
	if app != "-" && !validAppName(app) {
		// RFC 5424 allows 1-48 printable US-ASCII bytes; anything else
		// (go-syslog lets newlines, ESC and non-ASCII through) would
		// become a source name that can pass for another program's.
		return false
	}
	e.Msg = bytes.TrimPrefix(b[msgStart:], utf8BOM)
	if app != "-" {
		e.Source = []byte(app)
	}
	if pid, ok := parsePID([]byte(procID)); ok {
		e.PID = pid
		e.Flags |= ring.FlagHasPID
	}
	if !ts.IsZero() {
		e.OrigTime = ts.UnixNano()
	}
	if sd != "" && sd != "-" {
		if len(sd) <= ring.MaxSDLen {
			e.SD = []byte(sd)
		} else {
			// The ring keeps no SD this long: keep it at the head of
			// the message instead, as sent.
			start := msgStart - 1 - len(sd)
			if len(msg) == 0 {
				start = bytes.LastIndex(b, []byte(sd))
			}
			if start >= 0 && string(b[start:start+len(sd)]) == sd {
				e.Msg = b[start:]
			} else {
				e.Msg = append([]byte(sd+" "), msg...)
			}
		}
	}
	return true
}

// MaxAppName is RFC 5424's limit on APP-NAME.
const MaxAppName = 48

// validAppName reports whether s is an RFC 5424 APP-NAME: 1 to 48 bytes of
// PRINTUSASCII (33-126).
func validAppName(s string) bool {
	if len(s) == 0 || len(s) > MaxAppName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// safeParse runs a go-syslog parser, turning a panic (the 2019 parsers
// index past the end of some short inputs) into an error.
func safeParse(p format.LogParser) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanic, r)
		}
	}()
	return p.Parse()
}
