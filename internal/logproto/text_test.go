package logproto

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendEscaped(t *testing.T) {
	for _, c := range []struct{ in, msg, source string }{
		{"plain text", "plain text", "plain text"},
		{"a;b", "a;b", `a\;b`},
		{`back\slash`, `back\\slash`, `back\\slash`},
		{"nl\ntab\tcr\r", `nl\ntab\tcr\r`, `nl\ntab\tcr\r`},
		{"\x00\x1b[31m\x7f", `\x00\x1b[31m\x7f`, `\x00\x1b[31m\x7f`},
		{"caf\xc3\xa9 \xe2\x82\xac \xef\xbf\xbd", "caf\xc3\xa9 \xe2\x82\xac \xef\xbf\xbd", "caf\xc3\xa9 \xe2\x82\xac \xef\xbf\xbd"},
		{"bad \xff\xfe \xc3", `bad \xff\xfe \xc3`, `bad \xff\xfe \xc3`},
		{"c1 \xc2\x9b2J", `c1 \xc2\x9b2J`, `c1 \xc2\x9b2J`},
		{"rlo \xe2\x80\xae ls \xe2\x80\xa8", `rlo \xe2\x80\xae ls \xe2\x80\xa8`, `rlo \xe2\x80\xae ls \xe2\x80\xa8`},
	} {
		if got := string(AppendEscaped(nil, c.in, false)); got != c.msg {
			t.Errorf("message %q: got %q, want %q", c.in, got, c.msg)
		}
		if got := string(AppendEscapedBytes(nil, []byte(c.in), true)); got != c.source {
			t.Errorf("source %q: got %q, want %q", c.in, got, c.source)
		}
	}
}

// TestForgedLine: the line a local user could send to /dev/log to make
// logread print a second, forged line prints as one line.
func TestForgedLine(t *testing.T) {
	var f TextFormatter
	ts := time.Date(2026, 12, 1, 20, 59, 0, 0, time.UTC)
	msg := "ok\n2026-12-01T21:00:00.000000000Z;sshd;Accepted password for root from 10.0.0.1"
	got := string(f.Append(nil, ts, "sshd", msg))
	want := `2026-12-01T20:59:00Z;sshd;ok\n2026-12-01T21:00:00.000000000Z;sshd;Accepted password for root from 10.0.0.1` + "\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if strings.Count(got, "\n") != 1 {
		t.Errorf("%q is more than one line", got)
	}
	// A source holding ';' and a newline cannot fake the field layout.
	got = string(f.Append(nil, ts, "x;y\nz", "m"))
	if want := `2026-12-01T20:59:00Z;x\;y\nz;m` + "\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendText(t *testing.T) {
	ts := time.Date(2026, 11, 22, 4, 5, 6, 789000000, time.UTC)
	got := string(AppendText(nil, ts, []byte("a;b;"), []byte("msg; with ;\x1b")))
	if want := "2026-11-22T04:05:06.789Z;a\\;b\\;;msg; with ;\\x1b\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// checkEscaped checks what escaped text may hold, and that it unescapes
// to the original.
func checkEscaped(t *testing.T, in []byte, source bool) {
	out := AppendEscapedBytes(nil, in, source)
	if !utf8.Valid(out) {
		t.Fatalf("escaped %q is not valid UTF-8: %q", in, out)
	}
	for _, r := range string(out) {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && hostileRune(r)) {
			t.Fatalf("escaped %q holds %U: %q", in, r, out)
		}
	}
	if source {
		// Every ';' is escaped: after removing escape pairs none is left.
		for i := 0; i < len(out); i++ {
			if out[i] == '\\' {
				i++
				continue
			}
			if out[i] == ';' {
				t.Fatalf("escaped source %q holds a bare ';': %q", in, out)
			}
		}
	}
	if ref := appendEscapedRef(nil, string(in), source); !bytes.Equal(out, ref) {
		t.Fatalf("escaped %q as %q, the former escaping %q", in, out, ref)
	}
	back, err := Unescape(nil, out)
	if err != nil || !bytes.Equal(back, in) {
		t.Fatalf("Unescape(%q) = %q, %v; want %q", out, back, err, in)
	}
	if s := string(AppendEscaped(nil, string(in), source)); s != string(out) {
		t.Fatalf("string and []byte escaping differ: %q vs %q", s, out)
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Add([]byte("a;b\\;\xc2\x9b\xe2\x80\xae"), true)
	// Bytes to escape at every place of a word and of a double word.
	for _, c := range []string{"\x7f", "\x00", "\x1f", ";", "\\", "\xff", "\xc2\x9b", "\xe2\x80\xa8", "\xc3\xa9"} {
		for pos := range 17 {
			b := []byte(strings.Repeat("0123456789abcdef", 2))
			b = append(b[:pos], append([]byte(c), b[pos:]...)...)
			f.Add(b, false)
			f.Add(b, true)
		}
		// Right after runs of UTF-8 text.
		f.Add([]byte("Grüße, 東京 "+c+"é"+c+"x"), false)
		f.Add([]byte("Grüße;東京 "+c+"é"+c+"x"), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, source bool) {
		checkEscaped(t, in, source)
	})
}

// FuzzUnescape: Unescape never panics, and what it accepts escapes back to
// a text that unescapes to the same bytes.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{"", `a\\b`, `\x`, `\x4`, `\xzz`, `\q`, `\`, `\;\n\t\r\x1B`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := Unescape(nil, in)
		if err != nil {
			return
		}
		checkEscaped(t, b, true)
	})
}

func TestTextFormatterTime(t *testing.T) {
	east := time.FixedZone("", 5*3600+30*60)
	west := time.FixedZone("X", -7*3600)
	var f TextFormatter
	base := time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC)
	for i, d := range []time.Duration{0, 1, 10, 100, 999999999, time.Second, time.Second + 500*time.Millisecond, time.Hour, 24 * 365 * time.Hour, -time.Nanosecond} {
		for _, loc := range []*time.Location{time.UTC, time.Local, east, west} {
			ts := base.Add(d * time.Duration(i+1)).In(loc)
			if got, want := string(f.AppendTime(nil, ts)), ts.Format(time.RFC3339Nano); got != want {
				t.Errorf("AppendTime(%v) = %q, want %q", ts, got, want)
			}
			if got, want := string(f.AppendSeconds(nil, ts)), ts.Format(time.RFC3339); got != want {
				t.Errorf("AppendSeconds(%v) = %q, want %q", ts, got, want)
			}
		}
	}
}

func FuzzTextFormatterTime(f *testing.F) {
	f.Add(int64(0), int64(0), 0)
	f.Add(int64(1764622800), int64(123456789), 3600)
	f.Fuzz(func(t *testing.T, sec, nsec int64, off int) {
		sec %= 1 << 40
		off %= 24 * 3600
		ts := time.Unix(sec, nsec).In(time.FixedZone("", off))
		var f TextFormatter
		for range 2 {
			if got, want := string(f.AppendTime(nil, ts)), ts.Format(time.RFC3339Nano); got != want {
				t.Fatalf("AppendTime(%v) = %q, want %q", ts, got, want)
			}
		}
	})
}

func BenchmarkTextFormatter(b *testing.B) {
	var f TextFormatter
	ts := time.Now().UTC()
	msg := strings.Repeat("lorem ipsum ", 8)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = f.Append(buf[:0], ts, "onboot.001-app.out", msg)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkTextFormatBaseline is the former formatting: time.Format per
// line and only ';' in the source escaped.
func BenchmarkTextFormatBaseline(b *testing.B) {
	ts := time.Now().UTC()
	msg := strings.Repeat("lorem ipsum ", 8)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = ts.AppendFormat(buf[:0], time.RFC3339Nano)
		buf = append(buf, ';')
		buf = append(buf, strings.ReplaceAll("onboot.001-app.out", ";", `\;`)...)
		buf = append(buf, ';')
		buf = append(buf, msg...)
		buf = append(buf, '\n')
	}
	b.SetBytes(int64(len(buf)))
}

// TestTextFormatterCache: the kept time is used only for the same
// second, zone and nanoseconds.
func TestTextFormatterCache(t *testing.T) {
	east := time.FixedZone("", 5*3600+30*60)
	t0 := time.Date(2026, 12, 1, 20, 59, 59, 120000000, time.UTC)
	var f TextFormatter
	for _, ts := range []time.Time{t0, t0, t0.Add(1), t0, t0.Add(time.Second), t0.Add(time.Second), t0.In(east),
		t0.Add(-t0.Sub(t0.Truncate(time.Second))), t0.Add(time.Second).Truncate(time.Second), t0.Add(-time.Second), t0} {
		if got, want := string(f.AppendTime(nil, ts)), ts.Format(time.RFC3339Nano); got != want {
			t.Errorf("AppendTime(%v) = %q, want %q", ts, got, want)
		}
	}
}

// textEntries are lines as memlogd's console sees them: 4 sources, a new
// time every 8 entries.
type textEntry struct {
	t           time.Time
	source, msg []byte
}

func textEntries(msg string) []textEntry {
	var es []textEntry
	t0 := time.Now().UnixNano()
	for i := range 1024 {
		es = append(es, textEntry{time.Unix(0, t0+int64(i/8)*1237), []byte(fmt.Sprintf("onboot.00%d-app.out", i%4)), []byte(msg)})
	}
	return es
}

func benchText(b *testing.B, msg string, appendBytes func(dst []byte, t time.Time, source, msg []byte) []byte) {
	es := textEntries(msg)
	var buf []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := &es[i&1023]
		buf = appendBytes(buf[:0], e.t, e.source, e.msg)
		i++
	}
	b.SetBytes(int64(len(buf)))
}

var (
	benchMsgASCII = strings.Repeat("lorem ipsum ", 8)
	benchMsgUTF8  = strings.Repeat("Grüße, 東京 ", 6)
)

// BenchmarkTextEntries: memlogd's console and logread's text, against the
// former formatter in BenchmarkTextEntriesFormer.
func BenchmarkTextEntries(b *testing.B) {
	var f TextFormatter
	benchText(b, benchMsgASCII, f.AppendBytes)
}

func BenchmarkTextEntriesFormer(b *testing.B) {
	var f textFormatterRef
	benchText(b, benchMsgASCII, f.appendBytes)
}

func BenchmarkTextEntriesUTF8(b *testing.B) {
	var f TextFormatter
	benchText(b, benchMsgUTF8, f.AppendBytes)
}

func BenchmarkTextEntriesUTF8Former(b *testing.B) {
	var f textFormatterRef
	benchText(b, benchMsgUTF8, f.appendBytes)
}
