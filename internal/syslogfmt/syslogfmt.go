// Package syslogfmt turns memlogd entries into syslog messages: RFC 5424
// (the default) or RFC 3164 for old receivers, and frames them for stream
// transports (RFC 6587 octet counting or LF).
package syslogfmt

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/logproto"
)

// SDID is the structured-data element logforward adds to every RFC 5424
// message: memlogd's instance and sequence number (a receiver finds
// duplicates by them) and the exact source when APP-NAME had to change.
// 32473 is the enterprise number RFC 5612 reserves for examples, as the
// kmsg service uses it.
const SDID = "lklog@32473"

// Field limits of RFC 5424.
const (
	MaxHostname = 255
	MaxAppName  = 48
	MaxProcID   = 128
	// MaxTag is the longest RFC 3164 TAG.
	MaxTag = 32
)

// Formatter formats entries. The zero value writes RFC 5424 with the nil
// hostname "-".
type Formatter struct {
	// Hostname is the HOSTNAME field (cleaned to what RFC 5424 allows).
	Hostname string
	// RFC3164 selects the old BSD format.
	RFC3164 bool
	// Instance is memlogd's instance id, added with each entry's sequence
	// number in the SDID element.
	Instance string
	// Times, if set, remembers the last timestamp formatted (entries
	// read together share one).
	Times *TimeCache
}

// TimeCache holds the last RFC 5424 timestamp formatted.
type TimeCache struct {
	us  int64
	buf []byte
}

func (c *TimeCache) append(dst []byte, t time.Time) []byte {
	us := t.UnixMicro()
	if c.buf == nil || us != c.us {
		c.buf = t.UTC().AppendFormat(c.buf[:0], "2006-01-02T15:04:05.000000Z")
		c.us = us
	}
	return append(dst, c.buf...)
}

// Message is what a formatter needs of one entry.
type Message struct {
	Seq      uint64
	Time     time.Time // when memlogd received it
	TS       time.Time // the sender's own timestamp, if it had one
	Source   string
	Msg      string
	Facility int
	Severity int
	PID      int
	SD       string // the entry's own RFC 5424 structured data
	// Cut, when positive, is the length the message had before a
	// transport cut it (added to the SDID element as cut="N").
	Cut int
}

// FromRecord converts a decoded memlogd entry.
func FromRecord(r *logproto.Record) Message {
	return Message{Seq: r.Seq, Time: r.Time, TS: r.TS, Source: r.Source, Msg: r.Msg,
		Facility: r.Facility, Severity: r.Severity, PID: r.PID, SD: r.SD}
}

// PRI is facility*8+severity, with out-of-range values clamped (facility
// 0..23, severity 0..7).
func PRI(facility, severity int) int {
	facility = min(max(facility, 0), 23)
	severity = min(max(severity, 0), 7)
	return facility*8 + severity
}

// Append appends m formatted (without framing) to dst.
func (f *Formatter) Append(dst []byte, m *Message) []byte {
	if f.RFC3164 {
		return f.append3164(dst, m)
	}
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(PRI(m.Facility, m.Severity)), 10)
	dst = append(dst, ">1 "...)
	t := m.TS
	if t.IsZero() {
		t = m.Time
	}
	switch {
	case t.IsZero():
		dst = append(dst, '-')
	case f.Times != nil:
		dst = f.Times.append(dst, t)
	default:
		dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	}
	dst = append(dst, ' ')
	dst = appendPrintable(dst, f.Hostname, MaxHostname)
	dst = append(dst, ' ')
	app, exact := AppName(m.Source)
	dst = append(dst, app...)
	dst = append(dst, ' ')
	if m.PID > 0 {
		dst = strconv.AppendInt(dst, int64(m.PID), 10)
	} else {
		dst = append(dst, '-')
	}
	dst = append(dst, " - "...)
	ownSD, forged := checkSD(m.SD)
	ownSD = ownSD && !forged
	if ownSD {
		dst = append(dst, m.SD...)
	}
	dst = append(dst, '[')
	dst = append(dst, SDID...)
	if f.Instance != "" {
		dst = appendParam(dst, "instance", f.Instance)
	}
	if m.Seq > 0 {
		dst = append(dst, ` seq="`...)
		dst = strconv.AppendUint(dst, m.Seq, 10)
		dst = append(dst, '"')
	}
	if !exact {
		dst = appendParam(dst, "source", m.Source)
		dst = appendB64Param(dst, "source_b64", m.Source)
	}
	if !ownSD && m.SD != "" {
		// Not valid structured data (or a copy of our own element):
		// kept as a value rather than lost or passed on to break the
		// receiver's parser.
		dst = appendParam(dst, "sd", m.SD)
		dst = appendB64Param(dst, "sd_b64", m.SD)
	}
	if m.Cut > 0 {
		dst = append(dst, ` cut="`...)
		dst = strconv.AppendInt(dst, int64(m.Cut), 10)
		dst = append(dst, '"')
	}
	dst = append(dst, ']')
	if m.Msg != "" {
		dst = append(dst, ' ')
		dst = append(dst, m.Msg...)
	}
	return dst
}

func (f *Formatter) append3164(dst []byte, m *Message) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(PRI(m.Facility, m.Severity)), 10)
	dst = append(dst, '>')
	t := m.TS
	if t.IsZero() {
		t = m.Time
	}
	if t.IsZero() {
		t = time.Unix(0, 0)
	}
	dst = t.UTC().AppendFormat(dst, time.Stamp)
	dst = append(dst, ' ')
	dst = appendPrintable(dst, f.Hostname, MaxHostname)
	dst = append(dst, ' ')
	dst = append(dst, Tag(m.Source)...)
	if m.PID > 0 {
		dst = append(dst, '[')
		dst = strconv.AppendInt(dst, int64(m.PID), 10)
		dst = append(dst, ']')
	}
	dst = append(dst, ": "...)
	return append(dst, m.Msg...)
}

// AppName maps a source to an RFC 5424 APP-NAME (1..48 of the bytes
// 33..126; others become '_') and reports whether it is the source
// unchanged.
func AppName(source string) (string, bool) {
	if source == "" {
		return "-", false
	}
	if len(source) <= MaxAppName && source != "-" {
		ok := true
		for i := 0; i < len(source); i++ {
			if source[i] < 33 || source[i] > 126 {
				ok = false
				break
			}
		}
		if ok {
			return source, true
		}
	}
	b := make([]byte, 0, min(len(source), MaxAppName))
	for i := 0; i < len(source) && len(b) < MaxAppName; i++ {
		c := source[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
	}
	if string(b) == "-" {
		b[0] = '_'
	}
	return string(b), false
}

// Tag maps a source to an RFC 3164 TAG: letters, digits and ._- kept,
// anything else '_', at most MaxTag bytes.
func Tag(source string) string {
	if source == "" {
		return "-"
	}
	b := make([]byte, 0, min(len(source), MaxTag))
	for i := 0; i < len(source) && len(b) < MaxTag; i++ {
		c := source[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			c = '_'
		}
		b = append(b, c)
	}
	return string(b)
}

// appendPrintable appends s with every byte outside 33..126 replaced by
// '_', cut to max bytes, or "-" when s is empty.
func appendPrintable(dst []byte, s string, maxLen int) []byte {
	if s == "" {
		return append(dst, '-')
	}
	for i := 0; i < len(s) && i < maxLen; i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendParam appends ` name="value"` with value escaped as RFC 5424
// requires (\ " ] get a backslash) and made valid UTF-8.
func appendParam(dst []byte, name, value string) []byte {
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '"')
	for i := 0; i < len(value); {
		c := value[i]
		if c < utf8.RuneSelf {
			if c == '"' || c == '\\' || c == ']' {
				dst = append(dst, '\\')
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(value[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, value[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

// appendB64Param appends ` name="<value in base64>"` when value is not
// valid UTF-8 (a PARAM-VALUE must be: appendParam writes U+FFFD for its
// invalid bytes), so the exact bytes reach the receiver.
func appendB64Param(dst []byte, name, value string) []byte {
	if utf8.ValidString(value) {
		return dst
	}
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '"')
	dst = base64.StdEncoding.AppendEncode(dst, []byte(value))
	return append(dst, '"')
}

// ValidSD reports whether sd is one or more well-formed RFC 5424
// structured-data elements (names of 1..32 printable ASCII bytes other
// than = space ] ", values UTF-8 with \ " ] escaped, no SD-ID twice).
func ValidSD(sd string) bool {
	ok, _ := checkSD(sd)
	return ok
}

// checkSD is ValidSD, and reports whether sd has an element SDID (which
// only logforward may write: a sender's copy would forge the instance
// and sequence number receivers find duplicates by).
func checkSD(sd string) (valid, hasOurs bool) {
	if sd == "" {
		return false, false
	}
	var ids [8]string
	nids := 0
	var more []string
	i := 0
	for i < len(sd) {
		if sd[i] != '[' {
			return false, false
		}
		i++
		n := sdName(sd[i:])
		if n == 0 {
			return false, false
		}
		id := sd[i : i+n]
		for _, seen := range ids[:nids] {
			if seen == id {
				return false, false
			}
		}
		for _, seen := range more {
			if seen == id {
				return false, false
			}
		}
		if nids < len(ids) {
			ids[nids] = id
			nids++
		} else {
			more = append(more, id)
		}
		hasOurs = hasOurs || id == SDID
		i += n
		for i < len(sd) && sd[i] == ' ' {
			i++
			n := sdName(sd[i:])
			if n == 0 || i+n >= len(sd) || sd[i+n] != '=' {
				return false, false
			}
			i += n + 1
			if i >= len(sd) || sd[i] != '"' {
				return false, false
			}
			i++
			start := i
			for {
				if i >= len(sd) {
					return false, false
				}
				c := sd[i]
				if c == '\\' && i+1 < len(sd) {
					i += 2
					continue
				}
				if c == '"' {
					break
				}
				if c == ']' {
					return false, false
				}
				i++
			}
			if !utf8.ValidString(sd[start:i]) {
				return false, false
			}
			i++
		}
		if i >= len(sd) || sd[i] != ']' {
			return false, false
		}
		i++
	}
	return true, hasOurs
}

func sdName(s string) int {
	n := 0
	for n < len(s) && n < 33 {
		c := s[n]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' || c == ' ' {
			break
		}
		n++
	}
	if n > 32 {
		return 0
	}
	return n
}

// Framing of messages on a stream transport.
const (
	// OctetCounting is RFC 6587's "MSG-LEN SP MSG" (RFC 5425 uses it too).
	OctetCounting = "octet"
	// LF ends each message with a newline; newlines inside a message
	// become spaces (the framing cannot carry them).
	LF = "lf"
)

// AppendFrame appends msg framed for a stream transport.
func AppendFrame(dst []byte, framing string, msg []byte) []byte {
	if framing == LF {
		for _, c := range msg {
			if c == '\n' {
				c = ' '
			}
			dst = append(dst, c)
		}
		return append(dst, '\n')
	}
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, ' ')
	return append(dst, msg...)
}
