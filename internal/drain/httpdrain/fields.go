package httpdrain

import (
	"encoding/base64"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/jsonw"
)

// Meta is what every entry of a drain shares.
type Meta struct {
	Host string // the machine's name
	Boot string // its boot id
}

// AppendFields appends an entry's fields to an open JSON object: timeKey
// (memlogd's receive time), msgKey, then source, severity, facility, pid,
// ts (the sender's timestamp), sd, truncated, partial, raw, seq, instance,
// boot and host, each only when it has a value. The keys after the
// first two are written as constants. JSON strings cannot carry bytes
// that are not valid UTF-8 (they become U+FFFD): a message, source, sd or
// host holding some is followed at the end by msgKey+"_b64",
// "source_b64", "sd_b64" or "host_b64", its exact bytes in standard
// base64, as memlogd's extended records do.
func AppendFields(b []byte, m *drain.Message, meta *Meta, timeKey, msgKey string) []byte {
	r := &m.Rec
	b = jsonw.Key(b, timeKey)
	b = jsonw.Time(b, r.Time)
	b = jsonw.Key(b, msgKey)
	b = jsonw.String(b, r.Msg)
	b = append(b, `,"source":`...)
	b = jsonw.String(b, r.Source)
	b = append(b, `,"severity":`...)
	b = jsonw.Int(b, int64(r.Severity))
	b = append(b, `,"facility":`...)
	b = jsonw.Int(b, int64(r.Facility))
	if r.PID > 0 {
		b = append(b, `,"pid":`...)
		b = jsonw.Int(b, int64(r.PID))
	}
	if !r.TS.IsZero() {
		b = append(b, `,"ts":`...)
		b = jsonw.Time(b, r.TS)
	}
	if r.SD != "" {
		b = append(b, `,"sd":`...)
		b = jsonw.String(b, r.SD)
	}
	if r.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	if r.Partial {
		b = append(b, `,"partial":true`...)
	}
	if r.Raw {
		b = append(b, `,"raw":true`...)
	}
	if r.Seq > 0 {
		b = append(b, `,"seq":`...)
		b = jsonw.Uint(b, r.Seq)
	}
	if m.Instance != "" {
		b = append(b, `,"instance":`...)
		b = jsonw.String(b, m.Instance)
	}
	if meta.Boot != "" {
		b = append(b, `,"boot":`...)
		b = jsonw.String(b, meta.Boot)
	}
	if meta.Host != "" {
		b = append(b, `,"host":`...)
		b = jsonw.String(b, meta.Host)
	}
	b = appendB64(b, msgKey+"_b64", r.Msg)
	b = appendB64(b, "source_b64", r.Source)
	b = appendB64(b, "sd_b64", r.SD)
	return appendB64(b, "host_b64", meta.Host)
}

// appendB64 appends the key k with s's bytes in base64 when s is not
// valid UTF-8.
func appendB64(b []byte, k, s string) []byte {
	if utf8.ValidString(s) {
		return b
	}
	b = jsonw.Key(b, k)
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, []byte(s))
	return append(b, '"')
}
