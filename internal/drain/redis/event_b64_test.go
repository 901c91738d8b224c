package redis

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/logproto"
)

// eventExact decodes one event and returns its message, source and sd,
// the exact bytes taken from the _b64 fields where they are present.
func eventExact(t *testing.T, e *Event, r logproto.Record) (msg, src, sd, topic string) {
	t.Helper()
	b := e.Append(nil, &drain.Message{Instance: "i", Rec: r})
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%q: not JSON: %v", b, err)
	}
	x, prefix, msgKey, topicKey := ev, "x_", "message", "topic"
	if !e.Standard {
		x, prefix, msgKey, topicKey = ev["x"].(map[string]any), "", "m", "o"
	}
	get := func(obj map[string]any, k string) string {
		if v, ok := obj[k+"_b64"]; ok {
			b, err := base64.StdEncoding.DecodeString(v.(string))
			if err != nil {
				t.Fatalf("%s_b64 %q: %v", k, v, err)
			}
			return string(b)
		}
		s, _ := obj[k].(string)
		return s
	}
	msg, _ = ev[msgKey].(string)
	if v, ok := x[prefix+"message_b64"]; ok {
		b, _ := base64.StdEncoding.DecodeString(v.(string))
		msg = string(b)
	}
	topic, _ = ev[topicKey].(string)
	return msg, get(x, prefix+"source"), get(x, prefix+"sd"), topic
}

// A source, message or structured data that is not valid UTF-8 comes
// back exactly from the _b64 fields, in both formats; an empty source
// makes the topic "_", never an empty one.
func TestEventExactBytes(t *testing.T) {
	for _, std := range []bool{false, true} {
		e := &Event{Standard: std, Host: "h", Env: "e", Project: "p", Topic: "source"}
		r := logproto.Record{Seq: 1, Time: time.Unix(1, 0), Source: "c\xff", Msg: "bad \xfe", SD: "[a@1 b=\"\xc3\"]"}
		msg, src, sd, topic := eventExact(t, e, r)
		if msg != r.Msg || src != r.Source || sd != r.SD || topic != "c_" {
			t.Errorf("standard=%v: %q %q %q topic %q", std, msg, src, sd, topic)
		}
		if _, _, _, topic := eventExact(t, e, logproto.Record{Seq: 2, Source: "", Msg: "x"}); topic != "_" {
			t.Errorf("standard=%v: empty source: topic %q", std, topic)
		}
	}
}

func FuzzEventExactBytes(f *testing.F) {
	f.Add("c\xff", "m\xfe", "", false)
	f.Add("", "é", "[a@1 b=\"\xc3\"]", true)
	f.Fuzz(func(t *testing.T, src, msg, sd string, std bool) {
		e := &Event{Standard: std, Host: "h", Env: "e", Project: "p", Topic: "source"}
		gm, gs, gsd, topic := eventExact(t, e, logproto.Record{Seq: 1, Time: time.Unix(1, 0), Source: src, Msg: msg, SD: sd})
		if gm != msg || gs != src || gsd != sd || topic == "" {
			t.Fatalf("%q %q %q came back as %q %q %q (topic %q)", src, msg, sd, gs, gm, gsd, topic)
		}
		for i := 0; i < len(topic); i++ {
			if c := topic[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
				t.Fatalf("topic %q", topic)
			}
		}
	})
}
