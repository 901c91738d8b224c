package logproto

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/ring"
)

// sameTime compares times as a reader sees them: instant, printed form
// and zone.
func sameTime(a, b time.Time) bool {
	return a.Equal(b) && a.Format(time.RFC3339Nano) == b.Format(time.RFC3339Nano) &&
		a.Location().String() == b.Location().String()
}

func sameRecord(a, b Record) bool {
	if !sameTime(a.Time, b.Time) || !sameTime(a.TS, b.TS) {
		return false
	}
	a.Time, b.Time, a.TS, b.TS = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

// checkDecode decodes line with the fast path alone and with
// DecodeRecord: where the fast path answers, both agree.
func checkDecode(t *testing.T, line []byte) (fast bool) {
	t.Helper()
	want, werr := DecodeRecord(line)
	var d Decoder
	var b64 [3][]byte
	var r Record
	if d.decodeFast(line, &r, &b64) {
		if werr != nil {
			t.Fatalf("%q: fast path accepted what encoding/json refuses (%v): %+v", line, werr, r)
		}
		if b64[0] != nil {
			r.Source = string(b64[0])
		}
		if b64[1] != nil {
			r.Msg = string(b64[1])
		}
		if b64[2] != nil {
			r.SD = string(b64[2])
		}
		if !sameRecord(r, want) {
			t.Fatalf("%q:\nfast    %+v\ngeneral %+v", line, r, want)
		}
		fast = true
	}
	// The entry path, where it answers, agrees too.
	var re Record
	if new(Decoder).decodeEntry(line, &re) {
		if werr != nil {
			t.Fatalf("%q: entry path accepted what encoding/json refuses (%v): %+v", line, werr, re)
		}
		if !sameRecord(re, want) {
			t.Fatalf("%q:\nentry   %+v\ngeneral %+v", line, re, want)
		}
	}
	// Decode and DecodeView as a whole always agree, also with a
	// decoder that has seen other lines.
	for _, dd := range []*Decoder{&d, sharedDecoder} {
		var r2 Record
		err := dd.Decode(line, &r2)
		if (err == nil) != (werr == nil) || (err == nil && !sameRecord(r2, want)) {
			t.Fatalf("%q: Decode %+v, %v; DecodeRecord %+v, %v", line, r2, err, want, werr)
		}
		view := append([]byte(nil), line...)
		err = dd.DecodeView(view, &r2)
		if (err == nil) != (werr == nil) || (err == nil && !sameRecord(r2, want)) {
			t.Fatalf("%q: DecodeView %+v, %v; DecodeRecord %+v, %v", line, r2, err, want, werr)
		}
	}
	return fast
}

// sharedDecoder is used across checks, so that its caches are exercised.
var sharedDecoder = new(Decoder)

var decodeSeeds = []string{
	`{"seq":1,"time":"2026-11-22T04:56:27.27Z","source":"sshd.out","msg":"x","facility":3,"severity":6}`,
	`{"time":"2026-03-01T10:00:00.123456789Z","source":"onboot.001-x.out","msg":"hello \u003cworld\u003e"}`,
	`{"time":"2026-03-01T10:00:00+01:00","source":"a","msg":"b"}`,
	`{"time":"2026-03-01T10:00:00-07:30","source":"a","msg":"b"}`,
	`{"time":"2026-03-01T10:00:00+00:00","source":"a","msg":"b"}`,
	`{"time":"2026-02-29T10:00:00Z"}`, `{"time":"2024-02-29T10:00:00Z"}`, `{"time":"2026-03-01T24:00:00Z"}`,
	`{"time":"2026-03-01T10:00:00.1234567891Z"}`, `{"time":"2026-03-01T10:00:00,1Z"}`, `{"time":"2026-03-01T1:00:00Z"}`,
	`{"time":"2026-03-01T10:00:00z"}`, `{"time":"2026-03-01T10:00:60Z"}`, `{"time":"0000-01-01T00:00:00Z"}`,
	`{"time":"2026-03-01T10:00:00\u002eZ"}`, `{"time":5}`, `{"time":null}`,
	`{"type":"hello","instance":"3f2a","boot":"b","first":120,"next":5120,"resumed":true,"kmsg":true}`,
	`{"type":"gap","lost":17,"seq":2000}`, `{"type":"end","seq":5120}`, `{"type":"error","error":"bad \"x\"","code":"busy"}`,
	`{"type":"weird"}`, ` { "seq" : 1 , "msg" : "a" } ` + "\n", `{}`, `{`, `}`, ``, `null`, `[]`, `{"seq":1}x`, `{"seq":1,}`,
	`{"SEQ":1}`, `{"Source":"x"}`, `{"ſeq":1}`, `{"seq":1e3}`, `{"seq":1.0}`, `{"seq":-1}`, `{"seq":01}`, `{"seq":18446744073709551615}`,
	`{"seq":18446744073709551616}`, `{"pid":-5}`, `{"pid":-0}`, `{"pid":9223372036854775807}`, `{"pid":9223372036854775808}`,
	`{"seq":null}`, `{"truncated":"true"}`, `{"truncated":truex}`, `{"raw":false}`,
	`{"extra":{"a":[1,2]},"seq":2}`, `{"extra":[],"seq":2}`, `{"extra":"s\u0041","n":-1.5e+3,"b":true,"seq":3}`,
	`{"extra":"\x"}`, `{"extra":01}`, `{"extra":1.}`, `{"extra":-}`,
	`{"msg":"\ud83d\ude00 \ud83d x \ude00 \ud83d\u0041 \u00e9 \/ \b\f\n\r\t"}`, `{"msg":"raw \xff\xfe \xef\xbf\xbd"}`,
	`{"msg":"ctl ` + "\x01" + `"}`, `{"msg":"\u0000"}`, `{"msg":"unterminated}`, `{"msg":"bad \q"}`,
	`{"source":"c\ufffd","source_b64":"Y/8="}`, `{"source_b64":"!!"}`, `{"msg_b64":""}`, `{"msg_b64":null}`, `{"sd_b64":"W3hd"}`,
	`{"source":"a","source":"b"}`, `{"seq":1,"seq":2}`,
	// Near the entry layout: in order, out of order, cut short, doubled.
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a\u0041","source_b64":"Y/8=","msg":"\ufffd","msg_b64":"/w==","facility":1,"severity":2,"pid":-3,"ts":"2026-11-22T04:56:26.5+01:00","sd":"[x]","sd_b64":"W3hd","truncated":true,"partial":true,"raw":true}`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","facility":1,"severity":2,"raw":true,"pid":3}`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","facility":1,"severity":2,"pid":3,"pid":4}`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","severity":2,"facility":1}`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","facility":1,"severity":2,"truncated":false}`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","facility":1,"severity":2} `,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","facility":1,"severity":2}}`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","facility":1,"severity":2`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","facility":1}`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z" ,"source":"a","msg":"m","facility":1,"severity":2}`,
	`{"seq":7,"time":"2026-11-22T04:56:27Z","source":"a","msg":"m","facility":1,"severity":2,"ts":"2026-11-22T04:56:27Z\u0022}`,
	`{"seq":7,"time":"2026-11-22T04:56:27.1234567890Z","source":"a","msg":"m","facility":1,"severity":2}`,
	`{"seq":7,"time":"2026-11-22T04:56:27.Z","source":"a","msg":"m","facility":1,"severity":2}`,
	`{"seq":7,"time":"2026-11-22T04:56:27+01:0","source":"a","msg":"m","facility":1,"severity":2}`,
	`{"seq":7,"time":"2026-11-22T04:56:27+01:00Z","source":"a","msg":"m","facility":1,"severity":2}`,
	`{"seq":7,"time":"2026-11-23T04:56:27-01:00","source":"a","msg":"m","facility":1,"severity":2}`,
	`{"seq":7,"time":"2026-11-23T04:56:27+24:00","source":"a","msg":"m","facility":1,"severity":2}`,
	`{"seq":7,"time":"2026-11-23T04:56:28Z","source":"a","msg":"m","facility":1,"severity":2,"sd_b64":"W3hd"}`,
	`{"seq":7,"time":"2026-11-23T04:56:28Z","source":"a","source_b64":"!","msg":"m","facility":1,"severity":2}`,
	`{"seq":7,"time":"2026-11-23T04:56:28Z","source":"a","source_b64":null,"msg":"m","facility":1,"severity":2}`,
	`{"time":"2026-11-23T04:56:28Z","source":"a","source_b64":"Y/8=","msg":"m"}`,
	`{"time":"2026-11-23T04:56:28Z","source":"a","msg":"m","msg_b64":"Y/8="}`,
	`{"time":"2026-11-23T04:56:28Z","source":"a","msg":"m","facility":1}`,
	`{"time":"2026-11-23T04:56:28Z","source":"a","msg":"m"`,
	`{"seq":1,"time":"2026-11-23T04:56:28Z","source":"` + "\xff" + `","msg":"` + "\xfe" + `","facility":1,"severity":2}`,
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	fast := 0
	for _, s := range decodeSeeds {
		if checkDecode(t, []byte(s)) {
			fast++
		}
	}
	t.Logf("%d of %d seeds on the fast path", fast, len(decodeSeeds))
}

// TestDecodeFastPath: everything memlogd writes takes the fast path.
func TestDecodeFastPath(t *testing.T) {
	var lines [][]byte
	for _, loc := range []*time.Location{time.UTC, time.Local, time.FixedZone("", 3600)} {
		enc := Encoder{Time: TimeFormatter{Loc: loc}}
		for i, s := range stringSeeds {
			e := entryFor(uint64(i+1), 1763784000123456789+int64(i), []byte("src"+s), []byte(s), []byte(s), int64(i)*1000, uint8(i))
			lines = append(lines, enc.AppendEntry(nil, &e), enc.AppendLegacy(nil, &e))
		}
	}
	lines = append(lines, AppendHello(nil, Hello{Instance: "i", Boot: "b", First: 1, Next: 2, Resumed: true, Kmsg: true}),
		AppendGap(nil, 3, 4), AppendEnd(nil, 5), AppendError(nil, ErrRequest, "no \x01 way"))
	var d Decoder
	for _, l := range lines {
		if !checkDecode(t, l) {
			t.Errorf("%q took the general decoder", l)
		}
		var r Record
		if err := d.Decode(l, &r); err != nil {
			t.Fatal(err)
		}
	}
	if fast, slow := d.Counts(); slow != 0 || fast != uint64(len(lines)) {
		t.Errorf("counts: %d fast, %d slow", fast, slow)
	}
	// Entries, extended and legacy, take the entry path; the hello, gap,
	// end and error records the general one.
	if want := uint64(len(lines) - 4); d.entry != want {
		t.Errorf("%d records on the entry path, want %d", d.entry, want)
	}
}

func entryFor(seq uint64, tm int64, src, msg, sd []byte, orig int64, flags uint8) ring.Entry {
	return ring.Entry{Seq: seq, Time: tm, OrigTime: orig, Source: src, Msg: msg, SD: sd, PID: int32(seq),
		Facility: flags % 24, Severity: flags % 8, Flags: flags & (ring.FlagHasPID | ring.FlagTruncated | ring.FlagPartial | ring.FlagRaw)}
}

// TestExactBytes: sources, messages and SD that are not valid UTF-8 arrive
// exactly, and sources that JSON alone would merge stay apart.
func TestExactBytes(t *testing.T) {
	var enc Encoder
	var d Decoder
	seen := map[string]bool{}
	for _, src := range []string{"c\xff", "c\xfe", "c\xef\xbf\xbd", "c\xed\xa0\x80"} {
		e := entryFor(1, 1, []byte(src), []byte("m\xff\x00"), []byte("[x@1 a=\"\xfe\"]"), 0, 0)
		line := enc.AppendEntry(nil, &e)
		var r Record
		if err := d.Decode(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Source != src || r.Msg != "m\xff\x00" || r.SD != string(e.SD) {
			t.Errorf("%s: decoded source %q msg %q sd %q", line, r.Source, r.Msg, r.SD)
		}
		if g, err := DecodeRecord(line); err != nil || !sameRecord(g, r) {
			t.Errorf("%s: DecodeRecord %+v, %v", line, g, err)
		}
		seen[r.Source] = true
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct sources, want 4", len(seen))
	}
	// Valid UTF-8 carries no extra key; the legacy form never does.
	e := entryFor(1, 1, []byte("caf\xc3\xa9"), []byte("\xef\xbf\xbd"), nil, 0, 0)
	if l := enc.AppendEntry(nil, &e); bytes.Contains(l, []byte("_b64")) {
		t.Errorf("valid UTF-8 got a _b64 key: %s", l)
	}
	e.Source = []byte("c\xff")
	if l := enc.AppendLegacy(nil, &e); bytes.Contains(l, []byte("_b64")) {
		t.Errorf("legacy record got a _b64 key: %s", l)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkDecode(t, line) })
}

// FuzzDecodeEntry: every entry memlogd can emit decodes on the fast path
// to exactly its fields.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(uint64(1), int64(1763784000123456789), []byte("src"), []byte("msg"), []byte(""), int64(0), uint8(0), 0)
	f.Add(uint64(1<<63), int64(-1), []byte("c\xff;"), []byte("\x00\u2028\"\\<>&\xed\xa0\x80"), []byte("[a@1 b=\"\xff\"]"), int64(5), uint8(255), 3600)
	f.Fuzz(func(t *testing.T, seq uint64, tm int64, src, msg, sd []byte, orig int64, flags uint8, off int) {
		off = off % 86400 / 60 * 60 // RFC 3339 offsets are whole minutes
		enc := Encoder{Time: TimeFormatter{Loc: time.FixedZone("", off)}}
		tm %= 1 << 62
		orig %= 1 << 62
		e := entryFor(seq, tm, src, msg, sd, orig, flags)
		for _, line := range [][]byte{enc.AppendEntry(nil, &e), enc.AppendLegacy(nil, &e)} {
			y := time.Unix(0, tm).Year()
			if y < 0 || y > 9999 {
				return // outside RFC 3339: not something memlogd meets
			}
			if !checkDecode(t, line) {
				t.Fatalf("%q took the general decoder", line)
			}
		}
		var d Decoder
		var r Record
		if err := d.Decode(enc.AppendEntry(nil, &e), &r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != seq || r.Time.UnixNano() != tm || r.Source != string(src) || r.Msg != string(msg) || r.SD != string(sd) {
			t.Fatalf("entry %+v decoded as %+v", e, r)
		}
	})
}

func TestDecodeAllocs(t *testing.T) {
	var enc Encoder
	var lines [][]byte
	for i := range 64 {
		e := entryFor(uint64(i), time.Now().UnixNano()+int64(i)*1e6, []byte(fmt.Sprintf("src%d", i%4)), bytes.Repeat([]byte("m"), 100), nil, 0, 0)
		lines = append(lines, enc.AppendEntry(nil, &e))
	}
	var d Decoder
	var r Record
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		d.Decode(lines[i%len(lines)], &r)
		i++
	})
	if allocs > 0.05 {
		t.Errorf("%.2f allocations per record, want none in the steady state", allocs)
	}
}

func benchLines(n int) [][]byte {
	var enc Encoder
	var lines [][]byte
	msg := []byte(strings.Repeat("lorem ipsum ", 8))
	t0 := time.Now().UnixNano()
	for i := range n {
		e := entryFor(uint64(i+1), t0+int64(i/8)*1000, []byte(fmt.Sprintf("svc%d.out", i%4)), msg, nil, 0, 0)
		lines = append(lines, enc.AppendEntry(nil, &e))
	}
	return lines
}

// BenchmarkDecoder: the hand-written decoder on memlogd's entries.
func BenchmarkDecoder(b *testing.B) {
	lines := benchLines(1024)
	var d Decoder
	var r Record
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := d.Decode(lines[i&1023], &r); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.SetBytes(int64(len(lines[0])))
}

// BenchmarkDecoderView: DecodeView, strings pointing into the line.
func BenchmarkDecoderView(b *testing.B) {
	lines := benchLines(1024)
	var d Decoder
	var r Record
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := d.DecodeView(lines[i&1023], &r); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.SetBytes(int64(len(lines[0])))
}

// BenchmarkDecoderGeneral is the baseline of the entry path: the general
// hand-written path (any key order), which was the whole Decoder before.
func BenchmarkDecoderGeneral(b *testing.B) {
	lines := benchLines(1024)
	var d Decoder
	var r Record
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var b64 [3][]byte
		r = Record{}
		if !d.decodeFast(lines[i&1023], &r, &b64) {
			b.Fatal("general path refused an entry")
		}
		i++
	}
	b.SetBytes(int64(len(lines[0])))
}

// BenchmarkDecodeEncodingJSON is the baseline: encoding/json, as the
// decoder was before.
func BenchmarkDecodeEncodingJSON(b *testing.B) {
	lines := benchLines(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var r Record
		if err := json.Unmarshal(lines[i&1023], &r); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.SetBytes(int64(len(lines[0])))
}

// TestDecodeTimeCache: one decoder, times that move by a nanosecond, a
// second, across midnight, a day at the same time of day, a month, a leap
// day and a year, in several zones: every one decodes as encoding/json
// decodes it, whatever the decoder's cached second, date and zone.
func TestDecodeTimeCache(t *testing.T) {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", 5*3600+1800), time.FixedZone("X", -7*3600)}
	steps := []time.Duration{0, 1, time.Second, 999999999, 24 * time.Hour, 31 * 24 * time.Hour, 365 * 24 * time.Hour, time.Hour, -time.Second}
	var d Decoder
	tm := time.Date(2024, 2, 28, 23, 59, 58, 0, time.UTC)
	n := 0
	for range 4 {
		for _, step := range steps {
			tm = tm.Add(step)
			for _, loc := range zones {
				ts := tm.In(loc).Format(time.RFC3339Nano)
				line := []byte(`{"seq":1,"time":"` + ts + `","source":"s","msg":"m","facility":1,"severity":2,"ts":"` + ts + `"}`)
				want, err := DecodeRecord(line)
				if err != nil {
					t.Fatal(err)
				}
				var r Record
				if err := d.Decode(line, &r); err != nil || !sameRecord(r, want) {
					t.Fatalf("%s: Decode %+v, %v; want %+v", line, r, err, want)
				}
				n++
			}
		}
	}
	if d.entry != uint64(n) {
		t.Errorf("%d of %d on the entry path", d.entry, n)
	}
}

// digitsRef is digits8 a byte at a time.
func digitsRef(b []byte) (int64, int) {
	var v int64
	n := 0
	for n < 8 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}

func checkDigits8(t *testing.T, b []byte) {
	v, n := digits8(binary.LittleEndian.Uint64(b))
	if wv, wn := digitsRef(b); v != wv || n != wn {
		t.Fatalf("digits8(%q) = %d, %d; want %d, %d", b, v, n, wv, wn)
	}
}

func TestDigits8(t *testing.T) {
	// Every byte value at every place of an otherwise all-digit word.
	for pos := range 8 {
		for c := range 256 {
			b := []byte("73921845")
			b[pos] = byte(c)
			checkDigits8(t, b)
		}
	}
}

func FuzzDigits8(f *testing.F) {
	for _, s := range []string{"00000000", "99999999", "12345678", "1234567Z", "1Z000000", "Z1234567", "0000000/", "9999999:", "\xff2345678"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 8 {
			checkDigits8(t, b[:8])
		}
	})
}

// TestDecodeSources: many sources in turn, among them ones the source
// cache's hash cannot tell apart (same length, first and last eight
// bytes), each decode to their own bytes.
func TestDecodeSources(t *testing.T) {
	var enc Encoder
	var srcs []string
	for i := range 40 {
		srcs = append(srcs, fmt.Sprintf("svc%d.out", i), fmt.Sprintf("prefix01%cmiddle%csuffix01", 'a'+i%26, 'A'+i/26), string(rune('a'+i%26)))
	}
	srcs = append(srcs, "", "c\xff", "c\xfe")
	var d Decoder
	for pass := range 3 {
		for i, src := range srcs {
			e := entryFor(uint64(i+1), int64(pass), []byte(src), []byte("m"), nil, 0, 0)
			var r Record
			if err := d.Decode(enc.AppendEntry(nil, &e), &r); err != nil {
				t.Fatal(err)
			}
			if r.Source != src {
				t.Fatalf("pass %d: source %q decoded as %q", pass, src, r.Source)
			}
		}
	}
}
