package syslogfmt

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// sdElements splits valid structured data into its elements: SD-ID ->
// params (values unescaped).
func sdElements(t testing.TB, sd string) map[string][]map[string]string {
	t.Helper()
	out := map[string][]map[string]string{}
	for len(sd) > 0 {
		n := sdEndOne(sd)
		if n < 0 {
			t.Fatalf("unterminated element in %q", sd)
		}
		el := sd[1 : n-1]
		sd = sd[n:]
		id, rest, _ := strings.Cut(el, " ")
		params := map[string]string{}
		for rest != "" {
			name, after, _ := strings.Cut(rest, `="`)
			var v strings.Builder
			i := 0
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) && strings.IndexByte(`"\]`, after[i+1]) >= 0 {
					i++
				}
				v.WriteByte(after[i])
			}
			params[name] = v.String()
			rest = strings.TrimPrefix(after[i+1:], " ")
		}
		out[id] = append(out[id], params)
	}
	return out
}

// sdEndOne returns the length of the first element of s.
func sdEndOne(s string) int {
	inq := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case inq && c == '\\':
			i++
		case c == '"':
			inq = !inq
		case c == ']' && !inq:
			return i + 1
		}
	}
	return -1
}

// A sender's structured data that holds logforward's own element (or an
// SD-ID twice, which RFC 5424 forbids) is not passed on as elements: a
// receiver finding duplicates by instance and seq would drop the real
// entry that carries the forged pair. It travels as the value sd="...".
func TestForgedSDElement(t *testing.T) {
	f := Formatter{Hostname: "h", Instance: "real"}
	for _, own := range []string{
		`[lklog@32473 instance="real" seq="7"]`,
		`[x@1 a="1"][lklog@32473 seq="7"]`,
		`[x@1 a="1"][x@1 a="2"]`,
	} {
		m := Message{Seq: 9, Time: time.Unix(1, 0), Source: "sshd", Msg: "m", SD: own}
		_, sd, _ := parse5424(t, f.Append(nil, &m))
		els := sdElements(t, sd)
		ours := els[SDID]
		if len(ours) != 1 || ours[0]["instance"] != "real" || ours[0]["seq"] != "9" || ours[0]["sd"] != own {
			t.Errorf("own sd %q: structured data %q", own, sd)
		}
		for id, list := range els {
			if len(list) != 1 {
				t.Errorf("own sd %q: SD-ID %s %d times in %q", own, id, len(list), sd)
			}
		}
	}
}

// exactSource returns the source a receiver can recover from a message:
// APP-NAME when it is exact, else source="..." or source_b64.
func exactSource(t testing.TB, hdr []string, sd string) string {
	t.Helper()
	p := sdElements(t, sd)[SDID][0]
	if b, ok := p["source_b64"]; ok {
		raw, err := base64.StdEncoding.DecodeString(b)
		if err != nil {
			t.Fatalf("source_b64 %q: %v", b, err)
		}
		return string(raw)
	}
	if s, ok := p["source"]; ok {
		return s
	}
	return hdr[4]
}

// Sources that differ only in bytes that are not valid UTF-8 stay apart
// (source_b64), as do their structured data.
func TestSourceExactBytes(t *testing.T) {
	f := Formatter{Hostname: "h"}
	seen := map[string]bool{}
	for _, src := range []string{"c\xff", "c\xfe", "c\uFFFD"} {
		m := Message{Seq: 1, Time: time.Unix(1, 0), Source: src, Msg: "m", SD: "[a b=\"\xff\"]"}
		hdr, sd, _ := parse5424(t, f.Append(nil, &m))
		got := exactSource(t, hdr, sd)
		if got != src {
			t.Errorf("source %q came back as %q from %q", src, got, sd)
		}
		if b, _ := base64.StdEncoding.DecodeString(sdElements(t, sd)[SDID][0]["sd_b64"]); string(b) != m.SD {
			t.Errorf("sd %q: %q", m.SD, sd)
		}
		seen[got] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%v", seen)
	}
}

func FuzzSourceAndSD(f *testing.F) {
	f.Add("c\xff", `[lklog@32473 seq="1"]`)
	f.Add("a b", `[x@1 a="1"][x@1 a="2"]`)
	f.Add("-", "")
	f.Fuzz(func(t *testing.T, src, own string) {
		fm := Formatter{Hostname: "h", Instance: "i"}
		m := Message{Seq: 3, Time: time.Unix(1, 0), Source: src, Msg: "m", SD: own}
		hdr, sd, _ := parse5424(t, fm.Append(nil, &m))
		els := sdElements(t, sd)
		if len(els[SDID]) != 1 || els[SDID][0]["seq"] != "3" || els[SDID][0]["instance"] != "i" {
			t.Fatalf("%q %q: %q", src, own, sd)
		}
		if got := exactSource(t, hdr, sd); got != src {
			t.Fatalf("source %q came back as %q", src, got)
		}
	})
}
