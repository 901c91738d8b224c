// Package kmsg reads the kernel's log from /dev/kmsg and turns its records
// into memlogd entries or RFC 5424 syslog datagrams.
//
// Each read() of /dev/kmsg returns one record (kernel
// Documentation/ABI/testing/dev-kmsg):
//
//	<prio>,<seq>,<usec>,<flags>[,<more>...];<text>\n
//	 KEY=value\n          (zero or more dictionary lines)
//
// A Reader reads records one by one from a Device, dates them with the
// boot time taken from CLOCK_REALTIME - CLOCK_BOOTTIME at nanosecond
// resolution, continues after a given sequence number, and turns every
// loss (records overwritten before they were read, or already gone from
// the kernel's ring when reading started) into one Loss that says exactly
// how many records were lost. Run feeds a memlogd ring directly; Main is
// the kmsg service that feeds memlogd over /dev/log.
package kmsg

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Record is one parsed /dev/kmsg record. Its byte slices point into the
// buffer it was parsed from.
type Record struct {
	// Raw is the record exactly as read, trailing newline included.
	Raw []byte
	// Prio is facility*8 + level as the kernel wrote it. The kernel
	// keeps facilities up to 255 (a process writing "<2043>x" to
	// /dev/kmsg gets prio 2043), so this may exceed syslog's 191.
	Prio uint32
	// Seq is the kernel's sequence number of the record.
	Seq uint64
	// Usec is the time of the record in microseconds since boot.
	Usec uint64
	// Flags is the flags field: "-" for a complete record, "c" for a
	// continuation fragment (older kernels), possibly more letters.
	Flags []byte
	// Extra holds header fields after the flags (e.g. "caller=T123" on
	// kernels with CONFIG_PRINTK_CALLER), without the leading comma.
	Extra []byte
	// Text is the message with the kernel's \xNN escapes kept.
	Text []byte
	// Dict holds the continuation lines (" KEY=value"), each without its
	// leading space and trailing newline, escapes kept.
	Dict [][]byte
	// Tail is whatever follows the dictionary lines (normally empty: a
	// record ends with a newline). Kept so that no byte is dropped.
	Tail []byte
	// Unterminated is set when no newline ended the text (a truncated
	// read); Dict and Tail are then empty.
	Unterminated bool
}

// Facility returns the syslog facility (prio / 8).
func (r *Record) Facility() uint32 { return r.Prio >> 3 }

// Level returns the syslog severity (prio % 8).
func (r *Record) Level() uint8 { return uint8(r.Prio & 7) }

// ErrMalformed wraps every reason Parse rejects a record.
var ErrMalformed = errors.New("malformed /dev/kmsg record")

// maxDigits bounds the numeric header fields: 20 decimal digits hold any
// uint64.
const maxDigits = 20

// Parse parses one record as returned by a read() of /dev/kmsg. It never
// panics. On error the returned Record still has Raw (the whole input)
// and Text set to b without its trailing newline, so a caller can keep
// the record as text; every other field is zero.
func Parse(b []byte) (Record, error) {
	r := Record{Raw: b}
	fail := func(format string, a ...any) (Record, error) {
		return Record{Raw: b, Text: bytes.TrimSuffix(b, []byte{'\n'})},
			fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
	}
	semi := bytes.IndexByte(b, ';')
	if semi < 0 {
		return fail("no ';' ends the header")
	}
	header := b[:semi]
	if bytes.IndexByte(header, '\n') >= 0 {
		return fail("newline inside the header")
	}
	fields := bytes.SplitN(header, []byte{','}, 5)
	if len(fields) < 4 {
		return fail("header %.40q has %d fields, want at least 4", header, len(fields))
	}
	prio, err := parseUint(fields[0])
	if err != nil || prio > 1<<32-1 {
		return fail("prio %.24q: not a 32-bit decimal number", fields[0])
	}
	if r.Seq, err = parseUint(fields[1]); err != nil {
		return fail("sequence number %.24q: %v", fields[1], err)
	}
	if r.Usec, err = parseUint(fields[2]); err != nil {
		return fail("timestamp %.24q: %v", fields[2], err)
	}
	r.Prio = uint32(prio)
	r.Flags = fields[3]
	if len(fields) == 5 {
		r.Extra = fields[4]
	}
	rest := b[semi+1:]
	nl := bytes.IndexByte(rest, '\n')
	if nl < 0 {
		// No newline at all: a truncated read. Keep the text as is.
		r.Text = rest
		r.Unterminated = true
		return r, nil
	}
	r.Text = rest[:nl]
	rest = rest[nl+1:]
	for len(rest) > 0 && rest[0] == ' ' {
		nl = bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break
		}
		r.Dict = append(r.Dict, rest[1:nl])
		rest = rest[nl+1:]
	}
	r.Tail = rest
	return r, nil
}

// parseUint parses 1 to 20 decimal digits into a uint64, without a
// leading zero (the kernel writes none), so that the number gives back the
// bytes it came from.
func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty")
	}
	if len(b) > 1 && b[0] == '0' {
		return 0, errors.New("leading zero")
	}
	if len(b) > maxDigits {
		return 0, errors.New("too many digits")
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return v, nil
}

// AppendRaw appends the record rebuilt from its parsed fields. For a
// record Parse accepted, this gives back Raw byte for byte.
func (r *Record) AppendRaw(dst []byte) []byte {
	dst = strconv.AppendUint(dst, uint64(r.Prio), 10)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, ',')
	dst = strconv.AppendUint(dst, r.Usec, 10)
	dst = append(dst, ',')
	dst = append(dst, r.Flags...)
	if r.Extra != nil {
		dst = append(dst, ',')
		dst = append(dst, r.Extra...)
	}
	dst = append(dst, ';')
	dst = append(dst, r.Text...)
	if r.Unterminated {
		return dst
	}
	dst = append(dst, '\n')
	for _, d := range r.Dict {
		dst = append(dst, ' ')
		dst = append(dst, d...)
		dst = append(dst, '\n')
	}
	return append(dst, r.Tail...)
}

// Dictionary returns the continuation lines as key/value pairs (escapes
// decoded with Unescape). A line without '=' gives a key with an empty
// value.
func (r *Record) Dictionary() [][2][]byte {
	out := make([][2][]byte, 0, len(r.Dict))
	for _, d := range r.Dict {
		k, v, _ := bytes.Cut(d, []byte{'='})
		out = append(out, [2][]byte{k, Unescape(nil, v)})
	}
	return out
}

// Unescape appends s with the kernel's \xNN escapes decoded, for display.
// Escapes that stand for a control character other than tab (a newline
// inside a message, for instance) are kept as written, so that one record
// stays one line in line-oriented output; so are malformed escapes.
func Unescape(dst, s []byte) []byte {
	for {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		s = s[i:]
		if len(s) >= 4 && s[1] == 'x' {
			hi, ok1 := unhex(s[2])
			lo, ok2 := unhex(s[3])
			if c := hi<<4 | lo; ok1 && ok2 && (c >= 0x20 && c != 0x7f || c == '\t') {
				dst = append(dst, c)
				s = s[4:]
				continue
			}
		}
		dst = append(dst, '\\')
		s = s[1:]
	}
}

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
