package loki

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/logproto"
)

// Sources that differ only in bytes that are not valid UTF-8 (which JSON
// makes U+FFFD) stay separate streams, the exact bytes in source_b64.
func TestInvalidUTF8Labels(t *testing.T) {
	var msgs []drain.Message
	sources := []string{"c\xff", "c\xfe", "c\uFFFD", "c\xff"}
	for i, src := range sources {
		msgs = append(msgs, drain.Message{Rec: logproto.Record{Time: time.Unix(1, int64(i)), Source: src, Msg: "m", Severity: 6}})
	}
	p := &Push{Labels: []string{"host", "source"}, Meta: httpdrain.Meta{Host: "vm\x80"}}
	var body struct {
		Streams []struct {
			Stream map[string]string `json:"stream"`
			Values [][2]string       `json:"values"`
		} `json:"streams"`
	}
	b := p.Encode(nil, msgs, nil)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	exact := func(labels map[string]string, k string) string {
		if v, ok := labels[k+"_b64"]; ok {
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			return string(raw)
		}
		return labels[k]
	}
	got := map[string]int{}
	for _, s := range body.Streams {
		got[exact(s.Stream, "source")] += len(s.Values)
		if h := exact(s.Stream, "host"); h != "vm\x80" {
			t.Errorf("host %q", h)
		}
	}
	if len(body.Streams) != 3 || got["c\xff"] != 2 || got["c\xfe"] != 1 || got["c\uFFFD"] != 1 {
		t.Fatalf("streams %v from %s", got, b)
	}
}
