package kmsg

import (
	"strconv"

	"github.com/lklog/lklog/internal/ring"
)

// Source is the source name of kernel log entries (so that logwrite
// writes them to /var/log/kmsg.log, as LinuxKit's does).
const Source = "kmsg"

// SDID is the RFC 5424 structured-data ID of the kernel's fields. 32473
// is the private enterprise number RFC 5424 reserves for examples and
// documentation; no number is registered for lklog.
const SDID = "kmsg@32473"

// Facilities used for entries that are not kernel records.
const (
	facilityKern   = 0
	facilityUser   = 1
	facilitySyslog = 5
)

// Entry field decisions, shared by memlogd's -kmsg mode (Converter.Entry)
// and the kmsg service's datagrams (AppendDatagram):
//
//   - Source "kmsg"; Facility and Severity from the record's prio. A
//     facility above 23 (possible only for records written to /dev/kmsg
//     by a process) is given as user (1), and the original prio kept in
//     the structured data as prio="N".
//   - OrigTime: the record's wall-clock time (boot time + its usec).
//   - Msg: the text with \xNN escapes decoded (see Unescape).
//   - SD: one element [kmsg@32473 seq="N" ...] with the kernel sequence
//     number, then caller="..." when the kernel adds a caller field, then
//     one parameter per dictionary line (KEY="value", names cut to 32
//     bytes with characters RFC 5424 forbids in names replaced by '_'),
//     as many as fit in ring.MaxSDLen.
//   - A loss is one entry at severity warning, facility syslog (5):
//     "kmsg: N kernel log records lost (seq A-B): <reason>" with
//     SD [kmsg@32473 lost="N" first="A" last="B"].
//   - A record that could not be parsed is kept whole as its message,
//     facility kern, severity notice, flagged ring.FlagRaw, with no SD.

// Converter turns events into ring entries. The entries' slices point
// into the Converter's buffer until Reset; it is not safe for concurrent
// use.
type Converter struct {
	buf []byte
}

// source copies the source name into the buffer.
func (c *Converter) source() []byte {
	return c.take(func(b []byte) []byte { return append(b, Source...) })
}

// Reset lets the Converter reuse its buffer: entries made before are no
// longer valid.
func (c *Converter) Reset() { c.buf = c.buf[:0] }

// Entry converts one event; recv is the time of receipt (ring.Entry.Time).
func (c *Converter) Entry(ev *Event, recv int64) ring.Entry {
	e := ring.Entry{Time: recv, OrigTime: ev.Time, Source: c.source()}
	switch {
	case ev.Loss != nil:
		e.Facility, e.Severity = facilitySyslog, ring.SevWarning
		e.Msg = c.take(func(b []byte) []byte { return AppendLossText(b, ev.Loss) })
		e.SD = c.take(func(b []byte) []byte { return AppendLossSD(b, ev.Loss) })
	case ev.Malformed != nil:
		e.Facility, e.Severity = facilityKern, ring.SevNotice
		e.Flags |= ring.FlagRaw
		e.Msg = c.take(func(b []byte) []byte { return append(b, ev.Record.Text...) })
	default:
		fac, sev, _ := SyslogPriority(ev.Record.Prio)
		e.Facility, e.Severity = uint8(fac), sev
		e.Msg = c.take(func(b []byte) []byte { return Unescape(b, ev.Record.Text) })
		e.SD = c.take(func(b []byte) []byte { return AppendSD(b, &ev.Record) })
	}
	return e
}

// take appends with f and returns what it appended.
func (c *Converter) take(f func([]byte) []byte) []byte {
	start := len(c.buf)
	c.buf = f(c.buf)
	return c.buf[start:len(c.buf):len(c.buf)]
}

// SyslogPriority splits a kernel prio into a syslog facility (0..23) and
// severity; clamped is true when the facility was above 23 and was
// replaced by user (1).
func SyslogPriority(prio uint32) (facility uint32, severity uint8, clamped bool) {
	facility, severity = prio>>3, uint8(prio&7)
	if facility > 23 {
		return facilityUser, severity, true
	}
	return facility, severity, false
}

// AppendSD appends the structured data of a record (see the decisions
// above), bounded by ring.MaxSDLen.
func AppendSD(dst []byte, r *Record) []byte {
	start := len(dst)
	dst = append(dst, '[')
	dst = append(dst, SDID...)
	dst = append(dst, ` seq="`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, '"')
	if _, _, clamped := SyslogPriority(r.Prio); clamped {
		dst = append(dst, ` prio="`...)
		dst = strconv.AppendUint(dst, uint64(r.Prio), 10)
		dst = append(dst, '"')
	}
	if len(r.Extra) > 0 {
		dst = appendParam(dst, []byte("caller"), r.Extra, start)
	}
	for _, kv := range r.Dictionary() {
		dst = appendParam(dst, kv[0], kv[1], start)
	}
	return append(dst, ']')
}

// appendParam appends ` name="value"` unless the element starting at
// start would then exceed ring.MaxSDLen (one byte kept for ']').
func appendParam(dst, name, value []byte, start int) []byte {
	mark := len(dst)
	dst = append(dst, ' ')
	if len(name) == 0 {
		name = []byte("_")
	}
	if len(name) > 32 {
		name = name[:32]
	}
	for _, ch := range name {
		if ch <= ' ' || ch >= 0x7f || ch == '=' || ch == ']' || ch == '"' {
			ch = '_'
		}
		dst = append(dst, ch)
	}
	dst = append(dst, '=', '"')
	for _, ch := range value {
		if ch == '"' || ch == '\\' || ch == ']' {
			dst = append(dst, '\\')
		}
		dst = append(dst, ch)
	}
	dst = append(dst, '"')
	if len(dst)-start+1 > ring.MaxSDLen {
		return dst[:mark]
	}
	return dst
}

// AppendLossText appends the message of a loss entry.
func AppendLossText(dst []byte, l *Loss) []byte {
	dst = append(dst, "kmsg: "...)
	if !l.Known {
		dst = append(dst, "an unknown number of kernel log records lost before the first one read: "...)
		return append(dst, l.Reason.String()...)
	}
	dst = strconv.AppendUint(dst, l.Count, 10)
	if l.Count == 1 {
		dst = append(dst, " kernel log record lost (seq "...)
		dst = strconv.AppendUint(dst, l.First, 10)
	} else {
		dst = append(dst, " kernel log records lost (seq "...)
		dst = strconv.AppendUint(dst, l.First, 10)
		dst = append(dst, '-')
		dst = strconv.AppendUint(dst, l.Last, 10)
	}
	dst = append(dst, "): "...)
	return append(dst, l.Reason.String()...)
}

// AppendLossSD appends the structured data of a loss entry.
func AppendLossSD(dst []byte, l *Loss) []byte {
	dst = append(dst, '[')
	dst = append(dst, SDID...)
	if !l.Known {
		return append(dst, ` lost="unknown"]`...)
	}
	dst = append(dst, ` lost="`...)
	dst = strconv.AppendUint(dst, l.Count, 10)
	dst = append(dst, `" first="`...)
	dst = strconv.AppendUint(dst, l.First, 10)
	dst = append(dst, `" last="`...)
	dst = strconv.AppendUint(dst, l.Last, 10)
	return append(dst, `"]`...)
}

// SeqFromSD returns the kernel sequence number in structured data written
// by AppendSD (seq="N" in the kmsg@32473 element).
func SeqFromSD(sd []byte) (uint64, bool) {
	prefix := "[" + SDID + ` seq="`
	if len(sd) < len(prefix) || string(sd[:len(prefix)]) != prefix {
		return 0, false
	}
	rest := sd[len(prefix):]
	i := 0
	for i < len(rest) && rest[i] != '"' {
		i++
	}
	if i == len(rest) {
		return 0, false
	}
	v, err := parseUint(rest[:i])
	return v, err == nil
}
