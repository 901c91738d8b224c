package syslogfmt

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parse5424 splits an RFC 5424 message into its header fields, SD and
// MSG, checking the rules RFC 5424 sets for each.
func parse5424(t testing.TB, b []byte) (hdr []string, sd, msg string) {
	t.Helper()
	s := string(b)
	if !strings.HasPrefix(s, "<") {
		t.Fatalf("no PRI: %q", s)
	}
	end := strings.IndexByte(s, '>')
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri < 0 || pri > 191 {
		t.Fatalf("bad PRI in %q", s)
	}
	rest := s[end+1:]
	parts := strings.SplitN(rest, " ", 7)
	if len(parts) != 7 {
		t.Fatalf("too few fields: %q", s)
	}
	limits := []int{1, 32, 255, 48, 128, 32}
	for i, p := range parts[:6] {
		if p == "" || len(p) > limits[i] && i != 1 {
			t.Fatalf("field %d %q bad in %q", i, p, s)
		}
		for _, c := range []byte(p) {
			if c < 33 || c > 126 {
				t.Fatalf("field %d %q has byte %d", i, p, c)
			}
		}
	}
	if parts[0] != "1" {
		t.Fatalf("version %q", parts[0])
	}
	if parts[1] != "-" {
		if _, err := time.Parse(time.RFC3339Nano, parts[1]); err != nil {
			t.Fatalf("timestamp %q: %v", parts[1], err)
		}
		if dot := strings.IndexByte(parts[1], '.'); dot >= 0 && len(parts[1])-dot-2 > 6 {
			t.Fatalf("more than 6 fraction digits: %q", parts[1])
		}
	}
	// SD runs to the first "] " or "]" at the end after the last
	// element; find it by scanning elements.
	r := parts[6]
	i := sdEnd(r)
	if i < 0 || !ValidSD(r[:i]) {
		t.Fatalf("bad structured data in %q", r)
	}
	sd = r[:i]
	if i < len(r) {
		if r[i] != ' ' {
			t.Fatalf("no space before MSG in %q", r)
		}
		msg = r[i+1:]
	}
	return append([]string{strconv.Itoa(pri)}, parts[:6]...), sd, msg
}

// sdEnd returns the length of the SD elements that start s.
func sdEnd(s string) int {
	i := 0
	for i < len(s) && s[i] == '[' {
		inq := false
		for {
			i++
			if i >= len(s) {
				return -1
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
	return i
}

func TestAppend5424(t *testing.T) {
	ts := time.Date(2026, 12, 1, 10, 11, 12, 123456789, time.UTC)
	f := Formatter{Hostname: "vm 1", Instance: "abc"}
	m := Message{Seq: 42, Time: ts.Add(time.Second), TS: ts, Source: "sshd", Msg: "hello\nworld", Facility: 4, Severity: 3, PID: 81, SD: `[x@32473 a="1\]"]`}
	got := string(f.Append(nil, &m))
	want := `<35>1 2026-12-01T10:11:12.123456Z vm_1 sshd 81 - [x@32473 a="1\]"][lklog@32473 instance="abc" seq="42"] hello` + "\nworld"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	parse5424(t, []byte(got))

	// No sender timestamp: memlogd's; source changed: exact source kept.
	m = Message{Seq: 1, Time: ts, Source: "a b\x01" + strings.Repeat("x", 60), Msg: "", Facility: 99, Severity: -1, SD: `not sd`}
	got = string(f.Append(nil, &m))
	hdr, sd, msg := parse5424(t, []byte(got))
	if hdr[0] != "184" || hdr[2] != "2026-12-01T10:11:12.123456Z" || hdr[4] != "a_b_"+strings.Repeat("x", 44) || hdr[5] != "-" || msg != "" {
		t.Fatalf("fields %q in %q", hdr, got)
	}
	if !strings.Contains(sd, `source="a b`+"\x01"+strings.Repeat("x", 60)+`"`) || !strings.Contains(sd, `sd="not sd"`) {
		t.Fatalf("sd %q", sd)
	}
}

func TestAppend3164(t *testing.T) {
	f := Formatter{Hostname: "h", RFC3164: true}
	m := Message{Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), Source: "onboot.001-x y", Msg: "m", Facility: 3, Severity: 6, PID: 7}
	if got, want := string(f.Append(nil, &m)), "<30>Mar  4 05:06:07 h onboot.001-x_y[7]: m"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestFrame(t *testing.T) {
	if got := string(AppendFrame(nil, OctetCounting, []byte("a\nb"))); got != "3 a\nb" {
		t.Fatal(got)
	}
	if got := string(AppendFrame(nil, LF, []byte("a\nb"))); got != "a b\n" {
		t.Fatal(got)
	}
}

func TestValidSD(t *testing.T) {
	for sd, ok := range map[string]bool{
		`[a]`: true, `[a b="c"][d@1 e="\"\]\\"]`: true, `[a b="c]"]`: false, `[a b=c]`: false,
		`[]`: false, `[a`: false, `x`: false, `[a b="` + "\xff" + `"]`: false,
		`[` + strings.Repeat("a", 33) + `]`: false, `[a b="c"] `: false,
	} {
		if ValidSD(sd) != ok {
			t.Errorf("ValidSD(%q) = %v", sd, !ok)
		}
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("src", "msg\n\x00\xff", `[a b="c"]`, "host", 3, 6, 12, uint64(9))
	f.Add("", "", "[", "", -5, 99, -1, uint64(0))
	f.Fuzz(func(t *testing.T, src, msg, sd, host string, fac, sev, pid int, seq uint64) {
		fm := Formatter{Hostname: host, Instance: "i\"d]"}
		m := Message{Seq: seq, Time: time.Unix(1700000000, 5), Source: src, Msg: msg, SD: sd, Facility: fac, Severity: sev, PID: pid}
		out := fm.Append(nil, &m)
		// With a time cache (warm, then another time) the bytes are the same.
		tc := &TimeCache{}
		fc := fm
		fc.Times = tc
		m2 := m
		m2.Time = m.Time.Add(time.Duration(pid) * time.Microsecond)
		cold := fc.Append(nil, &m)
		warm := fc.Append(nil, &m)
		if !bytes.Equal(cold, out) || !bytes.Equal(warm, out) || !bytes.Equal(fc.Append(nil, &m2), fm.Append(nil, &m2)) {
			t.Fatalf("time cache changed the output of %+v", m)
		}
		_, gotSD, gotMsg := parse5424(t, out)
		if gotMsg != msg {
			t.Fatalf("msg changed: %q -> %q", msg, gotMsg)
		}
		if ok, forged := checkSD(sd); ok && !forged && !strings.HasPrefix(gotSD, sd) {
			t.Fatalf("own sd lost: %q -> %q", sd, gotSD)
		}
		fr := AppendFrame(nil, OctetCounting, out)
		sp := bytes.IndexByte(fr, ' ')
		if n, err := strconv.Atoi(string(fr[:sp])); err != nil || n != len(out) || !bytes.Equal(fr[sp+1:], out) {
			t.Fatalf("bad frame %q", fr)
		}
	})
}

func FuzzValidSD(f *testing.F) {
	f.Add(`[a b="c"]`)
	f.Add(`[a b="\`)
	f.Fuzz(func(t *testing.T, sd string) {
		if ValidSD(sd) && (sdEnd(sd) != len(sd)) {
			t.Fatalf("valid but elements end at %d of %d: %q", sdEnd(sd), len(sd), sd)
		}
	})
}
