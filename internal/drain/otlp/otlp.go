// Package otlp is the OTLP/HTTP logs destination: ExportLogsServiceRequest
// in protobuf, encoded by hand (the few messages needed; no generated
// code). One ResourceLogs per source in a batch, with resource attributes
// host.name and service.name (the source); each LogRecord has the
// sender's timestamp (memlogd's receive time when it had none), memlogd's
// receive time as the observed time, the severity as number and text,
// the message as body, and pid, structured data, facility, memlogd's
// sequence number and instance as attributes.
//
// Protobuf string fields must be valid UTF-8 (receivers built on the
// official protobuf libraries refuse the whole request otherwise), so a
// source, host, message or structured data that is not is sent with each
// invalid byte as U+FFFD (as memlogd's JSON has it), and its exact bytes
// follow in base64 in an attribute beside it: lklog.source_b64 and
// lklog.host_b64 on the resource, lklog.msg_b64 and lklog.sd_b64 on the
// log record.
package otlp

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/drain/httpdrain"
)

// Logs is the OTLP/HTTP logs protocol.
type Logs struct {
	Meta httpdrain.Meta
}

// Endpoint implements httpdrain.Protocol.
func (*Logs) Endpoint() string { return "/v1/logs" }

// ContentType implements httpdrain.Protocol.
func (*Logs) ContentType() string { return "application/x-protobuf" }

var severityNames = []string{"EMERG", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG"}

// SeverityNumber maps syslog severities onto OTLP's ranges (FATAL 21-24,
// ERROR 17-20, WARN 13-16, INFO 9-12, DEBUG 5-8).
func SeverityNumber(s int) int {
	switch s {
	case 0:
		return 22 // FATAL2
	case 1:
		return 21 // FATAL
	case 2:
		return 19 // ERROR3
	case 3:
		return 17 // ERROR
	case 4:
		return 13 // WARN
	case 5:
		return 10 // INFO2
	case 6:
		return 9 // INFO
	default:
		return 5 // DEBUG
	}
}

// Wire types.
const (
	varint = 0
	i64    = 1
	lenDel = 2
)

func tag(b []byte, field, wire int) []byte { return binary.AppendUvarint(b, uint64(field<<3|wire)) }

func str(b []byte, field int, s string) []byte {
	if !utf8.ValidString(s) {
		return validStr(b, field, s)
	}
	b = tag(b, field, lenDel)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// validStr appends s as a string field with every byte that is not
// valid UTF-8 made U+FFFD.
func validStr(b []byte, field int, s string) []byte {
	b, at := open(b, field)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return closeMsg(b, at)
}

// kvExact appends the attribute k = v and, when v is not valid UTF-8,
// the attribute b64Key with v's exact bytes in base64.
func kvExact(b []byte, field int, k, b64Key, v string) []byte {
	b = kvString(b, field, k, v)
	return kvB64(b, field, b64Key, v)
}

// kvB64 appends the attribute k with v's bytes in standard base64 when v
// is not valid UTF-8.
func kvB64(b []byte, field int, k, v string) []byte {
	if utf8.ValidString(v) {
		return b
	}
	return kvString(b, field, k, base64.StdEncoding.EncodeToString([]byte(v)))
}

// open starts a length-delimited field whose length is filled in by
// closeMsg; the length is reserved as 5 bytes (a padded varint).
func open(b []byte, field int) ([]byte, int) {
	b = tag(b, field, lenDel)
	return append(b, 0x80, 0x80, 0x80, 0x80, 0), len(b)
}

func closeMsg(b []byte, at int) []byte {
	n := len(b) - at - 5
	for i := range 4 {
		b[at+i] = byte(n>>(7*i)) | 0x80
	}
	b[at+4] = byte(n >> 28)
	return b
}

// kv appends a KeyValue with a string value as field.
func kvString(b []byte, field int, k, v string) []byte {
	b, kvAt := open(b, field)
	b = str(b, 1, k)
	b, valAt := open(b, 2)
	b = str(b, 1, v) // AnyValue.string_value
	b = closeMsg(b, valAt)
	return closeMsg(b, kvAt)
}

func kvInt(b []byte, field int, k string, v int64) []byte {
	b, kvAt := open(b, field)
	b = str(b, 1, k)
	b, valAt := open(b, 2)
	b = tag(b, 3, varint) // AnyValue.int_value
	b = binary.AppendUvarint(b, uint64(v))
	b = closeMsg(b, valAt)
	return closeMsg(b, kvAt)
}

// Encode implements httpdrain.Protocol.
func (p *Logs) Encode(dst []byte, msgs []drain.Message, _ http.Header) []byte {
	order := []string{}
	bySource := map[string][]int{}
	for i := range msgs {
		s := msgs[i].Rec.Source
		if _, ok := bySource[s]; !ok {
			order = append(order, s)
		}
		bySource[s] = append(bySource[s], i)
	}
	for _, src := range order {
		var rlAt, resAt, slAt int
		dst, rlAt = open(dst, 1) // ExportLogsServiceRequest.resource_logs
		dst, resAt = open(dst, 1)
		dst = kvExact(dst, 1, "host.name", "lklog.host_b64", p.Meta.Host)
		dst = kvExact(dst, 1, "service.name", "lklog.source_b64", src)
		if p.Meta.Boot != "" {
			dst = kvString(dst, 1, "host.boot_id", p.Meta.Boot)
		}
		dst = closeMsg(dst, resAt)
		dst, slAt = open(dst, 2) // scope_logs
		var scAt int
		dst, scAt = open(dst, 1)
		dst = str(dst, 1, "lklog-logforward")
		dst = closeMsg(dst, scAt)
		for _, i := range bySource[src] {
			m := &msgs[i]
			r := &m.Rec
			var lrAt int
			dst, lrAt = open(dst, 2) // log_records
			t := r.TS
			if t.IsZero() {
				t = r.Time
			}
			dst = tag(dst, 1, i64)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(t.UnixNano()))
			dst = tag(dst, 11, i64)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Time.UnixNano()))
			dst = tag(dst, 2, varint)
			dst = binary.AppendUvarint(dst, uint64(SeverityNumber(r.Severity)))
			if r.Severity >= 0 && r.Severity < len(severityNames) {
				dst = str(dst, 3, severityNames[r.Severity])
			}
			var bodyAt int
			dst, bodyAt = open(dst, 5)
			dst = str(dst, 1, r.Msg)
			dst = closeMsg(dst, bodyAt)
			dst = kvB64(dst, 6, "lklog.msg_b64", r.Msg)
			if r.PID > 0 {
				dst = kvInt(dst, 6, "process.pid", int64(r.PID))
			}
			if r.SD != "" {
				dst = kvExact(dst, 6, "syslog.structured_data", "lklog.sd_b64", r.SD)
			}
			dst = kvInt(dst, 6, "syslog.facility", int64(r.Facility))
			if r.Seq > 0 {
				dst = kvInt(dst, 6, "lklog.seq", int64(r.Seq))
			}
			if m.Instance != "" {
				dst = kvString(dst, 6, "lklog.instance", m.Instance)
			}
			dst = closeMsg(dst, lrAt)
		}
		dst = closeMsg(dst, slAt)
		dst = closeMsg(dst, rlAt)
	}
	return dst
}

// Check implements httpdrain.Protocol: a partial_success with rejected
// records rejects that many (the reply does not say which).
func (*Logs) Check(_ int, body []byte, n int) batch.Result {
	rejected, msg, err := PartialSuccess(body)
	if err != nil || rejected <= 0 {
		return batch.Result{}
	}
	return batch.Result{Rejected: int(min(rejected, int64(n))), Reason: fmt.Sprintf("OTLP partial success: %d rejected: %s", rejected, msg)}
}

var errShort = errors.New("otlp: truncated protobuf")

// field reads one field of a protobuf message: its number, wire type, and
// value (varint, or the bytes of a length-delimited field).
func field(b []byte) (num int, wire int, v uint64, data []byte, rest []byte, err error) {
	t, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, 0, nil, nil, errShort
	}
	b = b[n:]
	num, wire = int(t>>3), int(t&7)
	switch wire {
	case varint:
		v, n = binary.Uvarint(b)
		if n <= 0 {
			return 0, 0, 0, nil, nil, errShort
		}
		return num, wire, v, nil, b[n:], nil
	case i64:
		if len(b) < 8 {
			return 0, 0, 0, nil, nil, errShort
		}
		return num, wire, binary.LittleEndian.Uint64(b), nil, b[8:], nil
	case 5:
		if len(b) < 4 {
			return 0, 0, 0, nil, nil, errShort
		}
		return num, wire, uint64(binary.LittleEndian.Uint32(b)), nil, b[4:], nil
	case lenDel:
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return 0, 0, 0, nil, nil, errShort
		}
		return num, wire, 0, b[n : n+int(l)], b[n+int(l):], nil
	}
	return 0, 0, 0, nil, nil, fmt.Errorf("otlp: wire type %d", wire)
}

// PartialSuccess reads ExportLogsServiceResponse.partial_success.
func PartialSuccess(b []byte) (rejected int64, msg string, err error) {
	for len(b) > 0 {
		num, wire, _, data, rest, err := field(b)
		if err != nil {
			return 0, "", err
		}
		b = rest
		if num != 1 || wire != lenDel {
			continue
		}
		for len(data) > 0 {
			num, wire, v, d, rest, err := field(data)
			if err != nil {
				return 0, "", err
			}
			data = rest
			switch {
			case num == 1 && wire == varint:
				rejected = int64(v)
			case num == 2 && wire == lenDel:
				msg = string(d)
			}
		}
	}
	return rejected, msg, nil
}
