package otlp

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/logproto"
)

// The string fields of the OTLP logs messages this package writes, by
// message: field number -> the message type of a sub-message, or "string".
var schema = map[string]map[int]string{
	"request":      {1: "resourceLogs"},
	"resourceLogs": {1: "resource", 2: "scopeLogs", 3: "string"},
	"resource":     {1: "keyValue"},
	"scopeLogs":    {1: "scope", 2: "logRecord", 3: "string"},
	"scope":        {1: "string", 2: "string", 3: "keyValue"},
	"logRecord":    {3: "string", 5: "anyValue", 6: "keyValue"},
	"keyValue":     {1: "string", 2: "anyValue"},
	"anyValue":     {1: "string"},
}

// checkUTF8 walks msg as the message type typ and fails on a string field
// that is not valid UTF-8, as receivers built on the official protobuf
// libraries do (they refuse the whole request).
func checkUTF8(t *testing.T, typ string, msg []byte, path string) {
	t.Helper()
	for len(msg) > 0 {
		num, wire, _, data, rest, err := field(msg)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		msg = rest
		sub, ok := schema[typ][num]
		if !ok || wire != lenDel {
			continue
		}
		if sub == "string" {
			if !utf8.Valid(data) {
				t.Errorf("%s.%d: string field is not valid UTF-8: %q", path, num, data)
			}
			continue
		}
		checkUTF8(t, sub, data, path+"."+sub)
	}
}

// exact returns attribute k of attrs, or its _b64 companion decoded when
// there is one.
func exact(t *testing.T, attrs map[string]any, k, b64Key string) string {
	t.Helper()
	if v, ok := attrs[b64Key]; ok {
		b, err := base64.StdEncoding.DecodeString(v.(string))
		if err != nil {
			t.Fatalf("%s: %v", b64Key, err)
		}
		if want := strings.ToValidUTF8(string(b), "\uFFFD"); attrs[k] != want && utf8.ValidString(string(b)) {
			t.Fatalf("%s %q beside %s %q", k, attrs[k], b64Key, b)
		}
		return string(b)
	}
	s, _ := attrs[k].(string)
	return s
}

type decoded struct {
	host, source, msg, sd string
}

// decodeAll walks a request back to each record's host, source, message
// and structured data, exact bytes restored from the _b64 attributes.
func decodeAll(t *testing.T, body []byte) []decoded {
	t.Helper()
	checkUTF8(t, "request", body, "request")
	var out []decoded
	for _, rlb := range walk(t, body)[1] {
		rl := walk(t, rlb.([]byte))
		res := kvs(t, walk(t, rl[1][0].([]byte))[1])
		host := exact(t, res, "host.name", "lklog.host_b64")
		src := exact(t, res, "service.name", "lklog.source_b64")
		for _, slb := range rl[2] {
			sl := walk(t, slb.([]byte))
			for _, lrb := range sl[2] {
				lr := walk(t, lrb.([]byte))
				attrs := kvs(t, lr[6])
				attrs["body"] = string(walk(t, lr[5][0].([]byte))[1][0].([]byte))
				out = append(out, decoded{host: host, source: src,
					msg: exact(t, attrs, "body", "lklog.msg_b64"),
					sd:  exact(t, attrs, "syslog.structured_data", "lklog.sd_b64")})
			}
		}
	}
	return out
}

// Sources, messages, structured data and a host name that are not valid
// UTF-8 make a request whose every string is valid UTF-8, with the exact
// bytes beside them in base64: c\xff and c\xfe stay two services, and
// the good entries of the batch are untouched.
func TestInvalidUTF8(t *testing.T) {
	ts := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	in := []logproto.Record{
		{Seq: 1, Time: ts, Source: "good", Msg: "first good line"},
		{Seq: 2, Time: ts, Source: "c\xff", Msg: "bad \xfe\x00 msg", SD: "[a@1 b=\"\xc3\"]"},
		{Seq: 3, Time: ts, Source: "c\xfe", Msg: "é ok \xed\xa0\x80 surrogate"},
		{Seq: 4, Time: ts, Source: "c\uFFFD", Msg: "\uFFFD"},
		{Seq: 5, Time: ts, Source: "good", Msg: "second good line"},
	}
	msgs := make([]drain.Message, len(in))
	for i := range in {
		msgs[i] = drain.Message{Instance: "i1", Rec: in[i]}
	}
	host := "vm\x80"
	got := decodeAll(t, (&Logs{Meta: httpdrain.Meta{Host: host}}).Encode(nil, msgs, nil))
	if len(got) != len(in) {
		t.Fatalf("%d records, want %d", len(got), len(in))
	}
	seen := map[string]bool{}
	for _, g := range got {
		if g.host != host {
			t.Errorf("host %q", g.host)
		}
		seen[g.source+"|"+g.msg+"|"+g.sd] = true
	}
	for _, r := range in {
		if !seen[r.Source+"|"+r.Msg+"|"+r.SD] {
			t.Errorf("entry %q %q %q did not come back exactly: %q", r.Source, r.Msg, r.SD, got)
		}
	}
}

func FuzzInvalidUTF8(f *testing.F) {
	f.Add("c\xff", "m\xfe", "[a@1 b=\"\xc3\"]", "h")
	f.Add("", "", "", "")
	f.Add("ok", "é€😀", "", "vm1")
	f.Fuzz(func(t *testing.T, src, msg, sd, host string) {
		m := []drain.Message{{Instance: "i", Rec: logproto.Record{Seq: 1, Time: time.Unix(1, 0), Source: src, Msg: msg, SD: sd}}}
		got := decodeAll(t, (&Logs{Meta: httpdrain.Meta{Host: host}}).Encode(nil, m, nil))
		if len(got) != 1 || got[0] != (decoded{host: host, source: src, msg: msg, sd: sd}) {
			t.Fatalf("%q -> %q", decoded{host, src, msg, sd}, got)
		}
	})
}
