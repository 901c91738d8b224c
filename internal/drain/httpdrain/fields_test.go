package httpdrain

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/jsonw"
	"github.com/lklog/lklog/internal/logproto"
)

// Fields writes, entry after entry, exactly what appendFieldsRef writes for
// each, whatever the fields hold and however the instance changes
// between entries.
func FuzzFields(f *testing.F) {
	f.Add("vm1", "boot", "@timestamp", "message", "line", "src", "[a b=\"c\"]", "inst", "other", uint64(7), 42, int64(1764633600), int64(5), true)
	f.Add("", "", "time", "msg", "", "", "", "", "", uint64(0), 0, int64(-1), int64(0), false)
	f.Add("h\"<", "b\x00", "t\u2028", "m\xff", "é\n\t", "s\\", "", "i\"", "i\"", uint64(1<<63), -1, int64(253402300800), int64(999999999), true)
	f.Add("vm\xff", "b", "time", "msg", "m\xfe", "c\xff", "[a@1 b=\"\xc0\"]", "i", "j", uint64(3), 9, int64(1), int64(2), false)
	f.Fuzz(func(t *testing.T, host, boot, timeKey, msgKey, msg, source, sd, inst1, inst2 string, seq uint64, pid int, sec, nsec int64, flags bool) {
		meta := &Meta{Host: host, Boot: boot}
		var msgs []drain.Message
		for i, inst := range []string{inst1, inst1, inst2, "", inst1, inst2, inst2} {
			m := drain.Message{Instance: inst, Rec: logproto.Record{Seq: seq + uint64(i), Time: time.Unix(sec+int64(i), nsec), Source: source, Msg: msg, SD: sd, PID: pid, Severity: i, Facility: i * 3}}
			if flags {
				m.Rec.TS = time.Unix(sec-int64(i), nsec/2)
				m.Rec.Truncated, m.Rec.Partial, m.Rec.Raw = i%2 == 0, i%3 == 0, i%4 == 0
			}
			msgs = append(msgs, m)
		}
		fs := NewFields(meta, timeKey, msgKey)
		var got, want []byte
		for i := range msgs {
			got = append(got, '{')
			got = fs.Append(got, &msgs[i])
			got = append(got, '}', '\n')
			want = append(want, '{')
			want = appendFieldsRef(want, &msgs[i], meta, timeKey, msgKey)
			want = append(want, '}', '\n')
		}
		if string(got) != string(want) {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	})
}

// roundTrip encodes one entry as a JSON lines object and decodes it with
// logproto's strict decoder (encoding/json and the _b64 keys), as a
// reader of memlogd's own records would.
func roundTrip(t *testing.T, r logproto.Record, host string) (logproto.Record, map[string]any) {
	t.Helper()
	m := drain.Message{Instance: "i1", Rec: r}
	f := NewFields(&Meta{Host: host}, "time", "msg")
	b := append(f.Append([]byte{'{'}, &m), '}')
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatalf("%q: not JSON: %v", b, err)
	}
	got, err := logproto.DecodeRecord(b)
	if err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return got, obj
}

// Bytes that are not valid UTF-8 in a source, message, structured data or
// host come back exactly: sources c\xff, c\xfe and c\uFFFD stay apart.
func TestFieldsExactBytes(t *testing.T) {
	sources := map[string]bool{}
	for _, src := range []string{"c\xff", "c\xfe", "c\uFFFD"} {
		in := logproto.Record{Seq: 1, Time: time.Unix(1, 0), Source: src, Msg: "m \xe2\x82 cut", SD: "[a@1 b=\"\xc0\"]"}
		got, obj := roundTrip(t, in, "vm\xff")
		if got.Source != in.Source || got.Msg != in.Msg || got.SD != in.SD {
			t.Errorf("%q %q %q came back as %q %q %q", in.Source, in.Msg, in.SD, got.Source, got.Msg, got.SD)
		}
		sources[got.Source] = true
		if h, _ := base64.StdEncoding.DecodeString(obj["host_b64"].(string)); string(h) != "vm\xff" {
			t.Errorf("host_b64 %q", obj["host_b64"])
		}
	}
	if len(sources) != 3 {
		t.Fatalf("sources %v", sources)
	}
	// Valid text has no _b64 keys.
	if _, obj := roundTrip(t, logproto.Record{Seq: 2, Source: "ok", Msg: "é€😀"}, "vm1"); len(obj) != 8 {
		t.Fatalf("%v", obj)
	}
}

func FuzzFieldsExactBytes(f *testing.F) {
	f.Add("c\xff", "m\xfe", "[a@1 b=\"\xc3\"]")
	f.Add("", "", "")
	f.Add("ok", "é€😀\u2028", "\x00")
	f.Fuzz(func(t *testing.T, src, msg, sd string) {
		in := logproto.Record{Seq: 1, Time: time.Unix(1, 0), Source: src, Msg: msg, SD: sd}
		got, _ := roundTrip(t, in, "h")
		if got.Source != src || got.Msg != msg || got.SD != sd {
			t.Fatalf("%q %q %q came back as %q %q %q", src, msg, sd, got.Source, got.Msg, got.SD)
		}
	})
}

// appendFieldsRef is the plain encoding Fields must match byte for byte:
// it appends an entry's fields to an open JSON object: timeKey
// (memlogd's receive time), msgKey, then source, severity, facility, pid,
// ts (the sender's timestamp), sd, truncated, partial, raw, seq, instance,
// boot and host, each only when it has a value. The keys after the
// first two are written as constants. JSON strings cannot carry bytes
// that are not valid UTF-8 (they become U+FFFD): a message, source, sd or
// host holding some is followed at the end by msgKey+"_b64",
// "source_b64", "sd_b64" or "host_b64", its exact bytes in standard
// base64, as memlogd's extended records do.
func appendFieldsRef(b []byte, m *drain.Message, meta *Meta, timeKey, msgKey string) []byte {
	r := &m.Rec
	b = jsonw.Key(b, timeKey)
	b = jsonw.Time(b, r.Time)
	b = jsonw.Key(b, msgKey)
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
	b = appendB64(b, msgKey+"_b64", r.Msg, msgLossy)
	b = appendB64(b, "source_b64", r.Source, srcLossy)
	b = appendB64(b, "sd_b64", r.SD, sdLossy)
	return appendB64(b, "host_b64", meta.Host, !utf8.ValidString(meta.Host))
}
