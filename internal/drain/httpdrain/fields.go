package httpdrain

import (
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/jsonw"
)

// Meta is what every entry of a drain shares.
type Meta struct {
	Host string // the machine's name
	Boot string // its boot id
}

// appendB64 appends the key k with s's bytes in base64 when s is not
// valid UTF-8 (lossy: its JSON string has U+FFFD in their place).
func appendB64(b []byte, k, s string, lossy bool) []byte {
	if !lossy {
		return b
	}
	return jsonw.Base64(b, k, s)
}

// Fields appends entries' fields to open JSON objects: timeKey
// (memlogd's receive time), msgKey, then source, severity, facility, pid,
// ts (the sender's timestamp), sd, truncated, partial, raw, seq, instance,
// boot and host, each only when it has a value. JSON strings cannot carry
// bytes that are not valid UTF-8 (they become U+FFFD): a message, source,
// sd or host holding some is followed at the end by msgKey+"_b64",
// "source_b64", "sd_b64" or "host_b64", its exact bytes in standard
// base64, as memlogd's extended records do. One Fields serves the entries
// of a batch: what they share (boot and host, the memlogd instance of the
// entry before) is quoted once rather than per entry. The zero value is
// not usable: see NewFields.
type Fields struct {
	timeKey, msgKey []byte // `"key":`, the first without a comma
	meta            []byte // `,"boot":...,"host":...` as far as set
	inst            string // the instance quoted in instQ
	instQ           []byte // inst as a JSON string
	haveInst        bool
	msgB64Key       string // msgKey+"_b64"
	hostB64         []byte // the host's exact bytes, when it needs them
}

// NewFields returns a Fields for meta and the two first keys (in one
// allocation, and one for the instance).
func NewFields(meta *Meta, timeKey, msgKey string) Fields {
	b := make([]byte, 0, 2*(len(timeKey)+len(msgKey)+len(meta.Boot)+len(meta.Host))+48)
	b = jsonw.String(b, timeKey)
	b = append(b, ':')
	k := len(b)
	b = append(b, ',')
	b = jsonw.String(b, msgKey)
	b = append(b, ':')
	m := len(b)
	if meta.Boot != "" {
		b = append(b, `,"boot":`...)
		b = jsonw.String(b, meta.Boot)
	}
	if meta.Host != "" {
		b = append(b, `,"host":`...)
		b = jsonw.String(b, meta.Host)
	}
	var hostB64 []byte
	if h := appendB64(nil, "host_b64", meta.Host, !utf8.ValidString(meta.Host)); len(h) > 0 {
		hostB64 = append([]byte{','}, h...)
	}
	return Fields{timeKey: b[:k:k], msgKey: b[k:m:m], meta: b[m:], instQ: make([]byte, 0, 64),
		msgB64Key: msgKey + "_b64", hostB64: hostB64}
}

// Instance returns m's instance as a JSON string (kept until an entry
// of another instance).
func (f *Fields) Instance(instance string) []byte {
	if !f.haveInst || instance != f.inst {
		f.inst, f.instQ, f.haveInst = instance, jsonw.String(f.instQ[:0], instance), true
	}
	return f.instQ
}

// Append appends m's fields to an open JSON object.
func (f *Fields) Append(b []byte, m *drain.Message) []byte {
	r := &m.Rec
	if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
		b = append(b, ',')
	}
	b = append(b, f.timeKey...)
	b = jsonw.Time(b, r.Time)
	b = append(b, f.msgKey...)
	b, msgLossy := jsonw.StringLossy(b, r.Msg)
	b = append(b, `,"source":`...)
	b, srcLossy := jsonw.StringLossy(b, r.Source)
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
	sdLossy := false
	if r.SD != "" {
		b = append(b, `,"sd":`...)
		b, sdLossy = jsonw.StringLossy(b, r.SD)
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
		b = append(b, f.Instance(m.Instance)...)
	}
	b = append(b, f.meta...)
	b = appendB64(b, f.msgB64Key, r.Msg, msgLossy)
	b = appendB64(b, "source_b64", r.Source, srcLossy)
	b = appendB64(b, "sd_b64", r.SD, sdLossy)
	return append(b, f.hostB64...)
}
