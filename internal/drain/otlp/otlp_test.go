package otlp

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/logproto"
)

// walk collects the fields of a message by number (length-delimited
// values as bytes, others as numbers).
func walk(t *testing.T, b []byte) map[int][]any {
	t.Helper()
	out := map[int][]any{}
	for len(b) > 0 {
		num, wire, v, d, rest, err := field(b)
		if err != nil {
			t.Fatal(err)
		}
		if wire == lenDel {
			out[num] = append(out[num], d)
		} else {
			out[num] = append(out[num], v)
		}
		b = rest
	}
	return out
}

func kvs(t *testing.T, list []any) map[string]any {
	m := map[string]any{}
	for _, e := range list {
		kv := walk(t, e.([]byte))
		val := walk(t, kv[2][0].([]byte))
		if s, ok := val[1]; ok {
			m[string(kv[1][0].([]byte))] = string(s[0].([]byte))
		} else {
			m[string(kv[1][0].([]byte))] = int64(val[3][0].(uint64))
		}
	}
	return m
}

// The encoding walks back to the documented fields: one ResourceLogs per
// source, timestamps, severity, body and attributes.
func TestEncode(t *testing.T) {
	ts := time.Date(2026, 12, 1, 10, 0, 0, 123, time.UTC)
	msgs := []drain.Message{
		{Instance: "i1", Rec: logproto.Record{Seq: 5, Time: ts.Add(time.Second), TS: ts, Source: "ntpd", Msg: "hello", Severity: 4, Facility: 3, PID: 81, SD: `[a@1 b="c"]`}},
		{Instance: "i1", Rec: logproto.Record{Seq: 6, Time: ts, Source: "sshd.out", Msg: "x", Severity: 6, Facility: 3}},
		{Instance: "i1", Rec: logproto.Record{Seq: 7, Time: ts, Source: "ntpd", Msg: "again", Severity: 3}},
	}
	p := &Logs{Meta: httpdrain.Meta{Host: "vm1"}}
	req := walk(t, p.Encode(nil, msgs, nil))
	if len(req[1]) != 2 {
		t.Fatalf("%d resource_logs", len(req[1]))
	}
	rl := walk(t, req[1][0].([]byte))
	res := kvs(t, walk(t, rl[1][0].([]byte))[1])
	if res["host.name"] != "vm1" || res["service.name"] != "ntpd" {
		t.Fatalf("resource %v", res)
	}
	sl := walk(t, rl[2][0].([]byte))
	if len(sl[2]) != 2 {
		t.Fatalf("%d records for ntpd", len(sl[2]))
	}
	lr := walk(t, sl[2][0].([]byte))
	body := walk(t, lr[5][0].([]byte))
	attrs := kvs(t, lr[6])
	if lr[1][0].(uint64) != uint64(ts.UnixNano()) || lr[11][0].(uint64) != uint64(ts.Add(time.Second).UnixNano()) || lr[2][0].(uint64) != 13 ||
		string(lr[3][0].([]byte)) != "WARNING" || string(body[1][0].([]byte)) != "hello" ||
		attrs["process.pid"] != int64(81) || attrs["syslog.structured_data"] != `[a@1 b="c"]` || attrs["lklog.seq"] != int64(5) || attrs["lklog.instance"] != "i1" {
		t.Fatalf("record %v attrs %v", lr, attrs)
	}
}

func FuzzPartialSuccess(f *testing.F) {
	ok := []byte{0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, 'x'}
	f.Add(ok)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff})
	f.Add(binary.AppendUvarint([]byte{0x0a}, 1<<40))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, msg, err := PartialSuccess(b)
		if err == nil && len(msg) > len(b) {
			t.Fatalf("%d %q from %d bytes", r, msg, len(b))
		}
	})
}

func TestPartialSuccess(t *testing.T) {
	r, msg, err := PartialSuccess([]byte{0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, 'x'})
	if r != 3 || msg != "x" || err != nil {
		t.Fatal(r, msg, err)
	}
	if res := (&Logs{}).Check(200, []byte{0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, 'x'}, 10); res.Rejected != 3 {
		t.Fatalf("%+v", res)
	}
}
