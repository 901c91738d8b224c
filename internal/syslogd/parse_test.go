package syslogd

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/ring"
	"gopkg.in/mcuadros/go-syslog.v2/format"
)

// testNow is the receive time of the parse tests.
var testNow = time.Date(2026, 11, 22, 4, 30, 0, 0, time.UTC)

func ts(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}

type parseCase struct {
	name   string
	in     string
	format Format
	source string
	msg    string
	fac    uint8
	sev    uint8
	pid    int32 // 0: no FlagHasPID
	orig   int64
	sd     string
	flags  uint8 // expected flags besides FlagHasPID
}

// parseCases are datagrams in the exact shapes real clients send.
var parseCases = []parseCase{
	// glibc syslog(3): "<%d>%h %e %T %s[%d]: " (LOG_PID), no hostname, no newline.
	{name: "glibc pid", in: "<30>Nov 22 04:00:00 dhcpcd[123]: eth0: carrier acquired",
		format: Format3164, source: "dhcpcd", msg: "eth0: carrier acquired", fac: 3, sev: 6, pid: 123, orig: ts("2026-11-22T04:00:00Z")},
	{name: "glibc padded day", in: "<86>Nov  2 23:59:07 sshd[4711]: Accepted publickey for root from 10.0.0.1 port 50022 ssh2",
		format: Format3164, source: "sshd", msg: "Accepted publickey for root from 10.0.0.1 port 50022 ssh2", fac: 10, sev: 6, pid: 4711, orig: ts("2026-11-02T23:59:07Z")},
	{name: "glibc no pid", in: "<13>Nov 22 04:00:01 cron: (root) CMD (run-parts /etc/periodic/15min)",
		format: Format3164, source: "cron", msg: "(root) CMD (run-parts /etc/periodic/15min)", fac: 1, sev: 5, orig: ts("2026-11-22T04:00:01Z")},
	// musl: "<%d>%s %n%s%s%.0d%s: " with "%b %e %T", always a trailing '\n'.
	{name: "musl pid", in: "<29>Nov 22 04:00:02 containerd[901]: level=info msg=\"starting\"\n",
		format: Format3164, source: "containerd", msg: "level=info msg=\"starting\"", fac: 3, sev: 5, pid: 901, orig: ts("2026-11-22T04:00:02Z")},
	{name: "musl empty ident", in: "<13>Nov 22 04:00:03 : no ident\n",
		format: Format3164, source: DefaultSource, msg: "no ident", fac: 1, sev: 5, orig: ts("2026-11-22T04:00:03Z")},
	{name: "musl padded day pid", in: "<11>Nov  5 00:00:00 rngd[7]: entropy low\n",
		format: Format3164, source: "rngd", msg: "entropy low", fac: 1, sev: 3, pid: 7, orig: ts("2026-11-05T00:00:00Z")},
	// busybox logger calls the libc's syslog(3): "TAG: msg", TAG = user or -t.
	{name: "busybox logger", in: "<13>Nov 22 04:00:04 root: hello from busybox\n",
		format: Format3164, source: "root", msg: "hello from busybox", fac: 1, sev: 5, orig: ts("2026-11-22T04:00:04Z")},
	{name: "busybox logger -t -p", in: "<133>Nov 22 04:00:05 onboot[55]: mounted /var\n",
		format: Format3164, source: "onboot", msg: "mounted /var", fac: 16, sev: 5, pid: 55, orig: ts("2026-11-22T04:00:05Z")},
	// util-linux logger --rfc3164 adds a hostname.
	{name: "with hostname", in: "<13>Nov 22 04:00:06 linuxkit-025000000002 root[88]: with host",
		format: Format3164, source: "root", msg: "with host", fac: 1, sev: 5, pid: 88, orig: ts("2026-11-22T04:00:06Z")},
	{name: "tag with dots and slashes", in: "<15>Nov 22 04:00:07 /usr/sbin/ntpd.bin[3]: step",
		format: Format3164, source: "/usr/sbin/ntpd.bin", msg: "step", fac: 1, sev: 7, pid: 3, orig: ts("2026-11-22T04:00:07Z")},
	{name: "non-numeric pid", in: "<13>Nov 22 04:00:08 prog[abc]: x",
		format: Format3164, source: "prog", msg: "x", fac: 1, sev: 5, orig: ts("2026-11-22T04:00:08Z")},
	{name: "no tag after timestamp", in: "<13>Nov 22 04:00:09 hello world",
		format: Format3164, source: DefaultSource, msg: "hello world", fac: 1, sev: 5, orig: ts("2026-11-22T04:00:09Z")},
	{name: "rfc3339 in 3164", in: "<14>2026-11-22T04:00:10.5+01:00 app[9]: iso",
		format: Format3164, source: "app", msg: "iso", fac: 1, sev: 6, pid: 9, orig: ts("2026-11-22T03:00:10.5Z")},
	{name: "message keeps inner spaces", in: "<13>Nov 22 04:00:11 p:   indented  ",
		format: Format3164, source: "p", msg: "  indented  ", fac: 1, sev: 5, orig: ts("2026-11-22T04:00:11Z")},
	{name: "invalid utf8 kept", in: "<13>Nov 22 04:00:12 p: \xff\xfe\x00bin",
		format: Format3164, source: "p", msg: "\xff\xfe\x00bin", fac: 1, sev: 5, orig: ts("2026-11-22T04:00:12Z")},
	{name: "crlf and nul stripped", in: "<13>Nov 22 04:00:13 p: dos\r\n\x00",
		format: Format3164, source: "p", msg: "dos", fac: 1, sev: 5, orig: ts("2026-11-22T04:00:13Z")},
	// No timestamp at all.
	{name: "pri only message", in: "<13>hello",
		format: Format3164, source: DefaultSource, msg: "hello", fac: 1, sev: 5},
	{name: "pri and tag", in: "<190>prog[12]: no time",
		format: Format3164, source: "prog", msg: "no time", fac: 23, sev: 6, pid: 12},
	{name: "pri only", in: "<0>",
		format: Format3164, source: DefaultSource, msg: "", fac: 0, sev: 0},
	{name: "bad timestamp kept", in: "<13>Feb 30 10:00:00 p: x",
		format: Format3164, source: DefaultSource, msg: "Feb 30 10:00:00 p: x", fac: 1, sev: 5},
	// RFC 5424.
	{name: "5424 with sd", in: `<165>1 2026-11-22T04:00:00.123456Z host app 123 ID47 [exampleSDID@32473 iut="3" eventSource="App"] an event`,
		format: Format5424, source: "app", msg: "an event", fac: 20, sev: 5, pid: 123, orig: ts("2026-11-22T04:00:00.123456Z"),
		sd: `[exampleSDID@32473 iut="3" eventSource="App"]`},
	{name: "5424 no sd", in: "<14>1 2026-11-22T05:00:00+01:00 host app - - - no sd\n",
		format: Format5424, source: "app", msg: "no sd", fac: 1, sev: 6, orig: ts("2026-11-22T04:00:00Z")},
	{name: "5424 bom", in: "<14>1 2026-11-22T04:00:00Z - app 77 - - \xef\xbb\xbfunicode é",
		format: Format5424, source: "app", msg: "unicode é", fac: 1, sev: 6, pid: 77, orig: ts("2026-11-22T04:00:00Z")},
	{name: "5424 all nil", in: "<13>1 - - - - - -",
		format: Format5424, source: DefaultSource, msg: "", fac: 1, sev: 5},
	{name: "5424 two sd", in: `<13>1 - h a - - [a@1 x="1"][b@2 y="2"] m`,
		format: Format5424, source: "a", msg: "m", fac: 1, sev: 5, sd: `[a@1 x="1"][b@2 y="2"]`},
	{name: "5424 broken is raw", in: "<13>1 not a timestamp",
		format: FormatRaw, source: DefaultSource, msg: "<13>1 not a timestamp", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "5424 missing sd is raw", in: "<13>1 - - - - - msg",
		format: FormatRaw, source: DefaultSource, msg: "<13>1 - - - - - msg", fac: 1, sev: 5, flags: ring.FlagRaw},
	// Garbage.
	{name: "no pri", in: "plain text line\n",
		format: FormatRaw, source: DefaultSource, msg: "plain text line", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "pri too big", in: "<192>x",
		format: FormatRaw, source: DefaultSource, msg: "<192>x", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "pri unterminated", in: "<13 x",
		format: FormatRaw, source: DefaultSource, msg: "<13 x", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "pri leading zero", in: "<013>x",
		format: FormatRaw, source: DefaultSource, msg: "<013>x", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "binary", in: "\x00\x01\xff\xfe<\x80>\x00",
		format: FormatRaw, source: DefaultSource, msg: "\x00\x01\xff\xfe<\x80>", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "empty", in: "",
		format: FormatRaw, source: DefaultSource, msg: "", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "only newline", in: "\n",
		format: FormatRaw, source: DefaultSource, msg: "", fac: 1, sev: 5, flags: ring.FlagRaw},
	// Source names are printable US-ASCII; RFC 5424 APP-NAMEs at most 48
	// bytes. Anything else is not taken as a source: the datagram is kept
	// whole (raw for RFC 5424, the message under "syslog" for RFC 3164).
	{name: "5424 app-name with newline is raw", in: "<13>1 - h ss\nhd - - - forged",
		format: FormatRaw, source: DefaultSource, msg: "<13>1 - h ss\nhd - - - forged", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "5424 app-name with ESC is raw", in: "<13>1 - h \x1b[2Jsshd - - - m",
		format: FormatRaw, source: DefaultSource, msg: "<13>1 - h \x1b[2Jsshd - - - m", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "5424 app-name non-ASCII is raw", in: "<13>1 - h \xd1\x95shd - - - m",
		format: FormatRaw, source: DefaultSource, msg: "<13>1 - h \xd1\x95shd - - - m", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "5424 app-name invalid utf8 is raw", in: "<13>1 - h c\xff - - - m",
		format: FormatRaw, source: DefaultSource, msg: "<13>1 - h c\xff - - - m", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "5424 app-name of 48 bytes", in: "<13>1 - h " + strings.Repeat("a", 48) + " - - - m",
		format: Format5424, source: strings.Repeat("a", 48), msg: "m", fac: 1, sev: 5},
	{name: "5424 app-name of 49 bytes is raw", in: "<13>1 - h " + strings.Repeat("a", 49) + " - - - m",
		format: FormatRaw, source: DefaultSource, msg: "<13>1 - h " + strings.Repeat("a", 49) + " - - - m", fac: 1, sev: 5, flags: ring.FlagRaw},
	{name: "3164 non-ASCII tag is text", in: "<13>\xd1\x95shd: m",
		format: Format3164, source: DefaultSource, msg: "\xd1\x95shd: m", fac: 1, sev: 5},
	{name: "3164 C1 tag is text", in: "<13>a\xc2\x9b2J: m",
		format: Format3164, source: DefaultSource, msg: "a\xc2\x9b2J: m", fac: 1, sev: 5},
	{name: "tag too long is text", in: "<13>" + strings.Repeat("t", 300) + ": x",
		format: Format3164, source: DefaultSource, msg: strings.Repeat("t", 300) + ": x", fac: 1, sev: 5},
}

func checkEntry(t *testing.T, c parseCase, e ring.Entry, f Format) {
	t.Helper()
	if f != c.format {
		t.Errorf("format = %v, want %v", f, c.format)
	}
	if string(e.Source) != c.source {
		t.Errorf("source = %q, want %q", e.Source, c.source)
	}
	if string(e.Msg) != c.msg {
		t.Errorf("msg = %q, want %q", e.Msg, c.msg)
	}
	if e.Facility != c.fac || e.Severity != c.sev {
		t.Errorf("facility.severity = %d.%d, want %d.%d", e.Facility, e.Severity, c.fac, c.sev)
	}
	if hp := e.Flags&ring.FlagHasPID != 0; hp != (c.pid != 0) || e.PID != c.pid {
		t.Errorf("pid = %d (flag %v), want %d", e.PID, hp, c.pid)
	}
	if e.OrigTime != c.orig {
		t.Errorf("orig time = %v, want %v", time.Unix(0, e.OrigTime).UTC(), time.Unix(0, c.orig).UTC())
	}
	if string(e.SD) != c.sd || (c.sd == "" && e.SD != nil) {
		t.Errorf("sd = %q, want %q", e.SD, c.sd)
	}
	if got := e.Flags &^ ring.FlagHasPID; got != c.flags {
		t.Errorf("flags = %#x, want %#x", got, c.flags)
	}
}

func TestParse(t *testing.T) {
	for _, c := range parseCases {
		t.Run(c.name, func(t *testing.T) {
			e, f := Parse([]byte(c.in), testNow, time.UTC)
			checkEntry(t, c, e, f)
		})
	}
}

func TestParseYearNearestNow(t *testing.T) {
	cases := []struct {
		now  string
		in   string
		want string
	}{
		{"2027-01-01T00:00:10Z", "<13>Dec 31 23:59:59 p: x", "2026-12-31T23:59:59Z"},
		{"2026-12-31T23:59:59Z", "<13>Jan  1 00:00:01 p: x", "2027-01-01T00:00:01Z"}, // sender clock ahead
		{"2026-06-15T12:00:00Z", "<13>Jun 15 11:00:00 p: x", "2026-06-15T11:00:00Z"},
		{"2028-03-01T00:00:00Z", "<13>Feb 29 23:00:00 p: x", "2028-02-29T23:00:00Z"}, // leap year
	}
	for _, c := range cases {
		now, _ := time.Parse(time.RFC3339, c.now)
		e, _ := Parse([]byte(c.in), now, time.UTC)
		if got := time.Unix(0, e.OrigTime).UTC().Format(time.RFC3339); got != c.want {
			t.Errorf("now %s, %q: orig time %s, want %s", c.now, c.in, got, c.want)
		}
	}
}

func TestParseLocalZone(t *testing.T) {
	loc := time.FixedZone("X", 2*3600)
	e, _ := Parse([]byte("<13>Nov 22 06:00:00 p: x"), testNow, loc)
	if want := ts("2026-11-22T04:00:00Z"); e.OrigTime != want {
		t.Errorf("orig time %v, want %v", time.Unix(0, e.OrigTime).UTC(), time.Unix(0, want).UTC())
	}
}

func TestParseLongSDKeptInMessage(t *testing.T) {
	sd := `[big@1 v="` + strings.Repeat("x", ring.MaxSDLen) + `"]`
	in := "<13>1 - h app - - " + sd + " the message"
	e, f := Parse([]byte(in), testNow, time.UTC)
	if f != Format5424 || e.SD != nil || string(e.Msg) != sd+" the message" {
		t.Fatalf("format %v, sd %d bytes, msg %.40q...: want SD moved into the message", f, len(e.SD), e.Msg)
	}
	e, _ = Parse([]byte("<13>1 - h app - - "+sd), testNow, time.UTC)
	if e.SD != nil || string(e.Msg) != sd {
		t.Fatalf("no message: sd %d bytes, msg %d bytes, want msg = sd", len(e.SD), len(e.Msg))
	}
}

// TestParseAgreesWithGoSyslog checks the RFC 3164 samples against
// go-syslog's own RFC 3164 parser where that parser is right: same tag and
// content for messages with a timestamp and a TAG: prefix. (It is not used
// for parsing because it panics on "<13>", reads the hostname file for
// every message, drops PIDs, trims the content and always picks this year.)
func TestParseAgreesWithGoSyslog(t *testing.T) {
	n := 0
	for _, c := range parseCases {
		if c.format != Format3164 || c.orig == 0 || c.source == DefaultSource || strings.Contains(c.name, "hostname") ||
			strings.Contains(c.name, "rfc3339") || strings.TrimSpace(c.msg) != c.msg || strings.IndexByte(c.msg, 0) >= 0 || strings.IndexByte(c.msg, 0xff) >= 0 {
			continue
		}
		p := (&format.RFC3164{}).GetParser(trimTrailing([]byte(c.in)))
		if err := safeParse(p); err != nil {
			t.Errorf("%s: go-syslog: %v", c.name, err)
			continue
		}
		parts := p.Dump()
		if parts["tag"] != c.source || parts["content"] != c.msg || parts["severity"] != int(c.sev) || parts["facility"] != int(c.fac) {
			t.Errorf("%s: go-syslog says tag %q content %q %v.%v; we say %q %q %d.%d", c.name,
				parts["tag"], parts["content"], parts["facility"], parts["severity"], c.source, c.msg, c.fac, c.sev)
		}
		n++
	}
	if n < 8 {
		t.Fatalf("only %d samples compared", n)
	}
	if err := safeParse((&format.RFC3164{}).GetParser([]byte("<13>"))); !errors.Is(err, errPanic) {
		t.Logf("go-syslog no longer panics on a bare PRI: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range parseCases {
		f.Add([]byte(c.in))
	}
	f.Add([]byte("<13>1 2026-11-22T04:00:00Z"))
	f.Add([]byte("<13>1 2026-11-22T04:00:00+01"))
	f.Add([]byte("<13>1 2026-11-22T04:00:00.Z h a p m [x"))
	f.Add([]byte("<13>Nov 22 04:00:00 a[1"))
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		e, f := Parse(in, testNow, time.UTC)
		if !bytes.Equal(in, orig) {
			t.Fatal("Parse modified its input")
		}
		if len(e.Source) == 0 || len(e.Source) > ring.MaxSourceLen {
			t.Fatalf("source %q: must be 1..%d bytes", e.Source, ring.MaxSourceLen)
		}
		if e.Facility > 23 || e.Severity > 7 {
			t.Fatalf("facility.severity %d.%d out of range", e.Facility, e.Severity)
		}
		if len(e.SD) > ring.MaxSDLen {
			t.Fatalf("SD of %d bytes: the ring would drop it", len(e.SD))
		}
		trimmed := trimTrailing(in)
		switch f {
		case FormatRaw:
			if e.Flags&ring.FlagRaw == 0 || !bytes.Equal(e.Msg, trimmed) {
				t.Fatalf("raw entry: flags %#x msg %q, want FlagRaw and %q", e.Flags, e.Msg, trimmed)
			}
		case Format3164:
			if e.Flags&ring.FlagRaw != 0 || !bytes.HasSuffix(trimmed, e.Msg) {
				t.Fatalf("3164 entry: flags %#x, msg %q not a suffix of %q", e.Flags, e.Msg, trimmed)
			}
		case Format5424:
			if e.Flags&ring.FlagRaw != 0 || !bytes.Contains(trimmed, e.Msg) {
				t.Fatalf("5424 entry: flags %#x, msg %q not in %q", e.Flags, e.Msg, trimmed)
			}
		default:
			t.Fatalf("format %v", f)
		}
		if e.Flags&ring.FlagHasPID != 0 && e.PID <= 0 {
			t.Fatalf("FlagHasPID with pid %d", e.PID)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, in string }{
		{"glibc", "<30>Nov 22 04:00:00 dhcpcd[123]: eth0: carrier acquired, link is up and running fine"},
		{"rfc5424", `<165>1 2026-11-22T04:00:00.123456Z host app 123 ID47 [ex@32473 iut="3"] an event of eighty bytes or so`},
		{"raw", "no header at all, just a line of text of some eighty bytes or so......"},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := []byte(c.in)
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				Parse(in, testNow, time.UTC)
			}
		})
	}
}
