package jsonlines

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/logproto"
)

// Every field memlogd has is in the object, absent ones left out.
func TestJSONFields(t *testing.T) {
	ts := time.Date(2026, 12, 1, 1, 2, 3, 4, time.UTC)
	msgs := []drain.Message{
		{Instance: "i1", Rec: logproto.Record{Seq: 7, Time: ts, TS: ts.Add(-time.Second), Source: "ntpd", Msg: "m\x01\"", Facility: 3, Severity: 4, PID: 81, SD: `[a@1 b="c"]`, Truncated: true}},
		{Instance: "i1", Rec: logproto.Record{Seq: 8, Time: ts, Source: "x", Msg: "plain", Severity: 6}},
	}
	p := &JSON{Meta: httpdrain.Meta{Host: "vm1", Boot: "b1"}}
	lines := strings.Split(strings.TrimSuffix(string(p.Encode(nil, msgs, http.Header{})), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%q", lines)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"time": "2026-12-01T01:02:03.000000004Z", "msg": "m\x01\"", "source": "ntpd", "severity": 4.0, "facility": 3.0, "pid": 81.0,
		"ts": "2026-12-01T01:02:02.000000004Z", "sd": `[a@1 b="c"]`, "truncated": true, "seq": 7.0, "instance": "i1", "boot": "b1", "host": "vm1"}
	if len(m) != len(want) {
		t.Fatalf("%v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("%s = %v, want %v", k, m[k], v)
		}
	}
	json.Unmarshal([]byte(lines[1]), &m)
	if strings.Contains(lines[1], `"pid"`) || strings.Contains(lines[1], `"ts"`) || strings.Contains(lines[1], `"sd"`) {
		t.Fatalf("absent fields written: %s", lines[1])
	}
}
