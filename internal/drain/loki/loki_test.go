package loki

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/logproto"
)

// Interleaved sources become one stream per label set, each stream's
// values in the batch's order, timestamps in nanoseconds as strings.
func TestStreams(t *testing.T) {
	t0 := time.Unix(1700000000, 5)
	var msgs []drain.Message
	for i, src := range []string{"a", "b", "a", "b", "a"} {
		msgs = append(msgs, drain.Message{Rec: logproto.Record{Time: t0.Add(time.Duration(i)), Source: src, Msg: src + string(rune('0'+i)), Severity: 6}})
	}
	msgs[4].Rec.Severity = 3
	p := &Push{Labels: []string{"host", "source", "severity"}, Meta: httpdrain.Meta{Host: "vm1"}}
	var body struct {
		Streams []struct {
			Stream map[string]string `json:"stream"`
			Values [][2]string       `json:"values"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(p.Encode(nil, msgs, nil), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Streams) != 3 {
		t.Fatalf("%d streams: %+v", len(body.Streams), body)
	}
	a := body.Streams[0]
	if a.Stream["host"] != "vm1" || a.Stream["source"] != "a" || a.Stream["severity"] != "info" || len(a.Values) != 2 ||
		a.Values[0] != [2]string{"1700000000000000005", "a0"} || a.Values[1][1] != "a2" {
		t.Fatalf("stream a: %+v", a)
	}
	if e := body.Streams[2]; e.Stream["severity"] != "err" || e.Values[0][1] != "a4" {
		t.Fatalf("stream a/err: %+v", e)
	}
	if CheckLabels([]string{"host", "pid"}) == nil || CheckLabels(nil) == nil {
		t.Fatal("CheckLabels")
	}
}
