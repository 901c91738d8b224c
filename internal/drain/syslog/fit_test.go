package syslog

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/syslogfmt"
)

// sdOf returns the structured data of an RFC 5424 message (after the six
// header fields), or "" and false when it does not end where it should.
func sdOf(b []byte) (string, bool) {
	s := string(b)
	for range 6 {
		sp := strings.IndexByte(s, ' ')
		if sp < 0 {
			return "", false
		}
		s = s[sp+1:]
	}
	i := 0
	for i < len(s) && s[i] == '[' {
		inq := false
		for {
			i++
			if i >= len(s) {
				return "", false
			}
			c := s[i]
			if inq && c == '\\' {
				i++
				continue
			}
			if c == '"' {
				inq = !inq
			}
			if c == ']' && !inq {
				i++
				break
			}
		}
	}
	if i < len(s) && s[i] != ' ' {
		return "", false
	}
	return s[:i], syslogfmt.ValidSD(s[:i])
}

// fit formats m for a datagram of at most limit bytes as udpConn does.
func fit(m syslogfmt.Message, host string, limit int) []byte {
	f := syslogfmt.Formatter{Hostname: host, Instance: "inst"}
	out := f.Append(nil, &m)
	if len(out) > limit {
		m.Cut = len(out)
		out = Fit(nil, &f, &m, limit)
	}
	return out
}

// A datagram over the limit keeps its header and structured data whole
// (the lklog@32473 element with instance, seq and cut): a sender's large
// structured data or a long hostile source no longer cut through it.
func TestFitKeepsStructuredData(t *testing.T) {
	bigSD := `[big@1 v="` + strings.Repeat("x", 3000) + `"]`
	for _, m := range []syslogfmt.Message{
		{Source: "app", Msg: strings.Repeat("m", 5000), SD: `[a@1 b="c"]`},
		{Source: "app", Msg: "short", SD: bigSD},
		{Source: strings.Repeat("\xff", 255), Msg: strings.Repeat("m", 100), SD: "[bad sd \xff" + strings.Repeat("y", 3000)},
	} {
		m.Seq, m.Time = 42, time.Unix(1, 0)
		for _, limit := range []int{480, 1024, 2048} {
			out := fit(m, "vm1", limit)
			sd, ok := sdOf(out)
			if len(out) > limit || !ok || !strings.Contains(sd, `[lklog@32473 instance="inst" seq="42"`) || !strings.Contains(sd, ` cut="`) {
				t.Errorf("limit %d, sd %d bytes: %d bytes, structured data %q (valid %v)", limit, len(m.SD), len(out), trunc(sd), ok)
			}
		}
	}
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func FuzzFit(f *testing.F) {
	f.Add("app", "msg", `[a@1 b="c"]`, "vm1", 480)
	f.Add(strings.Repeat("\xfe", 200), strings.Repeat("m", 3000), `[big@1 v="`+strings.Repeat("x", 3000)+`"]`, "h", 600)
	f.Fuzz(func(t *testing.T, src, msg, sd, host string, limit int) {
		limit = 480 + (limit%4096+4096)%4096
		if len(host) > 64 {
			host = host[:64]
		}
		m := syslogfmt.Message{Seq: 7, Time: time.Unix(1, 0), Source: src, Msg: msg, SD: sd}
		out := fit(m, host, limit)
		got, ok := sdOf(out)
		if len(out) > limit || !ok || !strings.Contains(got, `[lklog@32473 instance="inst" seq="7"`) {
			t.Fatalf("limit %d: %d bytes, sd %q valid %v", limit, len(out), trunc(got), ok)
		}
		full := syslogfmt.Formatter{Hostname: host, Instance: "inst"}
		if n := len(full.Append(nil, &m)); n > limit && !strings.Contains(got, ` cut="`+strconv.Itoa(n)+`"`) {
			t.Fatalf("cut from %d not marked: %q", n, trunc(got))
		}
	})
}
