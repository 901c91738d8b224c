package redis

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/logproto"
)

// A reply parses to what was sent, and anything else is an error, never
// a panic or a huge allocation.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR wrong\r\n", ":42\r\n", "$5\r\nhello\r\n", "$-1\r\n", "*2\r\n:1\r\n$1\r\nx\r\n",
		"*-1\r\n", "$67108864\r\n", "*1000000\r\n", "+no end", "$3\r\nabcd\r\n", "?\r\n", ":x\r\n", "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		rep, err := ReadReply(r)
		if err != nil {
			return
		}
		// What parsed must re-encode to a prefix of the input for
		// the types with one encoding.
		switch rep.Kind {
		case '+', '-':
			if !bytes.HasPrefix(b, []byte(string(rep.Kind)+rep.Str+"\r\n")) {
				t.Fatalf("%q parsed as %+v", b, rep)
			}
		case '$':
			if !rep.Null && !bytes.Contains(b, []byte(rep.Str+"\r\n")) {
				t.Fatalf("%q parsed as %+v", b, rep)
			}
		}
	})
}

func TestReplies(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("*3\r\n:7\r\n$2\r\nab\r\n-ERR x\r\n"))
	rep, err := ReadReply(r)
	if err != nil || len(rep.Elems) != 3 || rep.Elems[0].Int != 7 || rep.Elems[1].Str != "ab" || rep.Elems[2].Kind != '-' {
		t.Fatalf("%+v %v", rep, err)
	}
	for _, bad := range []string{"$3\r\nabcd\r\n", "*1\r\n", "$-2\r\n", ":1x\r\n", "+a\n", "%1\r\n"} {
		if _, err := ReadReply(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got := string(AppendCommand(nil, []byte("GET"), []byte("k"))); got != "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n" {
		t.Fatalf("%q", got)
	}
}

// Both Logtube formats carry the fields Logtube defines; env, project and
// topic keep only [0-9a-zA-Z_-].
func TestEvent(t *testing.T) {
	ts := time.Date(2026, 12, 1, 10, 11, 12, 345678000, time.UTC)
	m := drain.Message{Instance: "abc", Rec: logproto.Record{Seq: 9, Time: ts.Add(time.Second), TS: ts, Source: "sshd.out", Msg: "hi \"x\"", Facility: 4, Severity: 3, PID: 81, SD: `[a@1 b="c"]`}}
	e := Event{Host: "vm1", Env: "prod env", Project: "p/1", Topic: "severity"}
	var c map[string]any
	if err := json.Unmarshal(e.Append(nil, &m), &c); err != nil {
		t.Fatal(err)
	}
	x, _ := c["x"].(map[string]any)
	if c["t"] != float64(ts.UnixMilli()) || c["h"] != "vm1" || c["e"] != "prod_env" || c["p"] != "p_1" || c["o"] != "err" || c["m"] != `hi "x"` ||
		x["source"] != "sshd.out" || x["seq"] != 9.0 || x["instance"] != "abc" || x["pid"] != 81.0 || x["sd"] != `[a@1 b="c"]` {
		t.Fatalf("compact %v", c)
	}
	e.Standard, e.Topic = true, "source"
	var s map[string]any
	if err := json.Unmarshal(e.Append(nil, &m), &s); err != nil {
		t.Fatal(err)
	}
	if s["timestamp"] != "2026-12-01T10:11:12.345Z" || s["hostname"] != "vm1" || s["env"] != "prod_env" || s["project"] != "p_1" || s["topic"] != "sshd_out" ||
		s["message"] != `hi "x"` || s["x_source"] != "sshd.out" || s["x_seq"] != 9.0 {
		t.Fatalf("standard %v", s)
	}
}
