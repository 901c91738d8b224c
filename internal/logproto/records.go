package logproto

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/lklog/lklog/internal/ring"
)

// Record types of the extended reply. An entry has no "type" key.
const (
	TypeHello = "hello"
	TypeGap   = "gap"
	TypeEnd   = "end"
	TypeError = "error"
)

// Encoder appends reply lines for one reader. It is not safe for
// concurrent use; each reader owns one.
type Encoder struct {
	Time TimeFormatter
	// legacyHead is a legacy record up to its message's opening quote,
	// for the source headSrc and the time headNs: the entries of one read
	// from a stream share their source and their time.
	legacyHead []byte
	headSrc    []byte
	headNs     int64
	// misses counts the entries in a row that legacyHead did not fit.
	// Where sources alternate, keeping the head of each costs more than
	// it saves: only one miss in keepEvery keeps its head.
	misses int
}

const keepEvery = 8

// AppendLegacy appends e as LinuxKit's memlogd writes it:
// {"time":...,"source":...,"msg":...} and a newline, exactly the bytes
// encoding/json's Encoder produces for that struct.
func (enc *Encoder) AppendLegacy(dst []byte, e *ring.Entry) []byte {
	if len(enc.legacyHead) > 0 && e.Time == enc.headNs && bytes.Equal(e.Source, enc.headSrc) {
		enc.misses = 0
		dst = append(dst, enc.legacyHead...)
	} else {
		start := len(dst)
		dst = append(dst, `{"time":`...)
		dst = enc.Time.Append(dst, e.Time)
		dst = append(dst, `,"source":`...)
		dst = AppendString(dst, e.Source)
		dst = append(dst, `,"msg":"`...)
		if enc.misses%keepEvery == 0 {
			enc.legacyHead = append(enc.legacyHead[:0], dst[start:]...)
			enc.headSrc = append(enc.headSrc[:0], e.Source...)
			enc.headNs = e.Time
		}
		enc.misses++
	}
	if e.Flags&ring.FlagPlain != 0 {
		// A plain message is written as it is (see PlainLen).
		dst = append(dst, e.Msg...)
		return append(dst, '"', '}', '\n')
	}
	dst = AppendString(dst[:len(dst)-1], e.Msg)
	return append(dst, '}', '\n')
}

// Keys of the extended entry that carry a field's exact bytes, in
// standard base64, when the field is not valid UTF-8 (its JSON string then
// has U+FFFD in place of the invalid bytes).
const (
	KeySourceB64 = "source_b64"
	KeyMsgB64    = "msg_b64"
	KeySDB64     = "sd_b64"
)

// AppendEntry appends e as an extended record: the three legacy keys
// plus seq, facility and severity, and the optional keys that apply.
// A source, msg or sd that is not valid UTF-8 is followed by its
// source_b64, msg_b64 or sd_b64 key holding the exact bytes.
func (enc *Encoder) AppendEntry(dst []byte, e *ring.Entry) []byte {
	var lossy bool
	dst = append(dst, `{"seq":`...)
	dst = appendUint(dst, e.Seq)
	dst = append(dst, `,"time":`...)
	dst = enc.Time.Append(dst, e.Time)
	dst = append(dst, `,"source":`...)
	if dst, lossy = appendString(dst, e.Source); lossy {
		dst = appendB64(dst, KeySourceB64, e.Source)
	}
	dst = append(dst, `,"msg":`...)
	if e.Flags&ring.FlagPlain != 0 {
		// A plain message is written as it is (see PlainLen).
		dst = append(dst, '"')
		dst = append(dst, e.Msg...)
		dst = append(dst, '"')
	} else if dst, lossy = appendString(dst, e.Msg); lossy {
		dst = appendB64(dst, KeyMsgB64, e.Msg)
	}
	dst = append(dst, `,"facility":`...)
	dst = appendUint(dst, uint64(e.Facility))
	dst = append(dst, `,"severity":`...)
	dst = appendUint(dst, uint64(e.Severity))
	if e.Flags&ring.FlagHasPID != 0 {
		dst = append(dst, `,"pid":`...)
		dst = strconv.AppendInt(dst, int64(e.PID), 10)
	}
	if e.OrigTime != 0 {
		dst = append(dst, `,"ts":"`...)
		dst = time.Unix(0, e.OrigTime).UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if len(e.SD) > 0 {
		dst = append(dst, `,"sd":`...)
		if dst, lossy = appendString(dst, e.SD); lossy {
			dst = appendB64(dst, KeySDB64, e.SD)
		}
	}
	if e.Flags&ring.FlagTruncated != 0 {
		dst = append(dst, `,"truncated":true`...)
	}
	if e.Flags&ring.FlagPartial != 0 {
		dst = append(dst, `,"partial":true`...)
	}
	if e.Flags&ring.FlagRaw != 0 {
		dst = append(dst, `,"raw":true`...)
	}
	return append(dst, '}', '\n')
}

func appendB64(dst []byte, key string, b []byte) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':', '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// Hello is the first record of every extended reply.
type Hello struct {
	Instance string // this memlogd's identity, new at each start
	Boot     string // the kernel's boot id
	First    uint64 // oldest sequence number held
	Next     uint64 // sequence number the next entry will get
	// Resumed is true when the request's cursor belonged to this
	// instance, so the reply continues exactly after it.
	Resumed bool
	// Kmsg is true when memlogd reads /dev/kmsg itself (-kmsg), so a
	// kmsg service must not deliver kernel messages too.
	Kmsg bool
}

// AppendHello appends the hello record.
func AppendHello(dst []byte, h Hello) []byte {
	dst = append(dst, `{"type":"hello","instance":`...)
	dst = AppendString(dst, []byte(h.Instance))
	dst = append(dst, `,"boot":`...)
	dst = AppendString(dst, []byte(h.Boot))
	dst = append(dst, `,"first":`...)
	dst = appendUint(dst, h.First)
	dst = append(dst, `,"next":`...)
	dst = appendUint(dst, h.Next)
	dst = append(dst, `,"resumed":`...)
	dst = strconv.AppendBool(dst, h.Resumed)
	if h.Kmsg {
		dst = append(dst, `,"kmsg":true`...)
	}
	return append(dst, '}', '\n')
}

// AppendGap appends a gap record: lost entries were evicted before this
// reader got them, the last of them just before sequence number next.
func AppendGap(dst []byte, lost, next uint64) []byte {
	dst = append(dst, `{"type":"gap","lost":`...)
	dst = appendUint(dst, lost)
	dst = append(dst, `,"seq":`...)
	dst = appendUint(dst, next)
	return append(dst, '}', '\n')
}

// AppendEnd appends the record that closes a complete dump: next is the
// cursor a later request continues from.
func AppendEnd(dst []byte, next uint64) []byte {
	dst = append(dst, `{"type":"end","seq":`...)
	dst = appendUint(dst, next)
	return append(dst, '}', '\n')
}

// Codes of error records: what a client should do about the refusal.
const (
	// ErrBusy: memlogd cannot serve the request now (too many readers);
	// the same request may succeed later.
	ErrBusy = "busy"
	// ErrCursor: the request's cursor is refused (it names a sequence
	// number this instance never gave); retrying it cannot help.
	ErrCursor = "cursor"
	// ErrRequest: the request is malformed or invalid.
	ErrRequest = "request"
)

// AppendError appends an error record with a code (ErrBusy, ErrCursor or
// ErrRequest) and a message for people.
func AppendError(dst []byte, code, msg string) []byte {
	dst = append(dst, `{"type":"error","code":`...)
	dst = AppendString(dst, []byte(code))
	dst = append(dst, `,"error":`...)
	dst = AppendString(dst, []byte(msg))
	return append(dst, '}', '\n')
}

// GapMessage is the text of the entry a legacy reader gets in place of
// lost entries.
func GapMessage(lost uint64) string {
	return "memlogd: " + strconv.FormatUint(lost, 10) +
		" entries lost here: this reader fell behind further than the ring holds"
}

// AppendText appends an entry as LinuxKit's logread prints it, with the
// text escaping of AppendEscaped: <RFC3339Nano time>;<source>;<msg> and a
// newline. A caller that formats many lines keeps a TextFormatter.
func AppendText(dst []byte, t time.Time, source, msg []byte) []byte {
	var f TextFormatter
	return f.AppendBytes(dst, t, source, msg)
}

// EntrySeq reads the sequence number an extended entry line starts with
// (`{"seq":N`), without decoding the rest; ok is false for any other line.
func EntrySeq(line []byte) (seq uint64, ok bool) {
	const prefix = `{"seq":`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return 0, false
	}
	n := 0
	for _, c := range line[len(prefix):] {
		if c < '0' || c > '9' || n == 20 {
			break
		}
		seq = seq*10 + uint64(c-'0')
		n++
	}
	return seq, n > 0
}
