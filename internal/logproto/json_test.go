package logproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/ring"
)

var stringSeeds = []string{
	"", "plain", `quote " backslash \ slash /`, "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f",
	"\x00\x01\x1f\x7f", "caf\xc3\xa9 \xe2\x82\xac", "bad \xff\xfe utf8 \xc3", "\xe2\x80\xa8 \xe2\x80\xa9",
	"\xed\xa0\x80 surrogate", "\xf4\x90\x80\x80 too big",
}

// legacyEntry is the struct LinuxKit's memlogd encodes.
type legacyEntry struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Msg    string    `json:"msg"`
}

func encodingJSON(t testing.TB, v any) []byte {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func checkString(t *testing.T, s string) {
	got := AppendString(nil, []byte(s))
	want, _ := json.Marshal(s)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendString(%q) = %s, encoding/json: %s", s, got, want)
	}
	_, lossy := appendString(nil, []byte(s))
	if _, wantLossy := appendStringRef(nil, []byte(s)); lossy != wantLossy || lossy == utf8.ValidString(s) {
		t.Fatalf("appendString(%q) lossy %v, the former %v", s, lossy, wantLossy)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range stringSeeds {
		checkString(t, s)
	}
	for c := 0; c < 256; c++ {
		checkString(t, string([]byte{byte(c)}))
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	// Bytes to escape at every place of a word and of a double word.
	for _, c := range []string{"\"", "&", "<", ">", "\\", "\x00", "\x1f", "\x7f", "\xff", "\xc3\xa9", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xed\xa0\x80", "\xef\xbf\xbd", "\xf0\x9f\x98\x80"} {
		for pos := range 17 {
			b := strings.Repeat("0123456789abcdef", 2)
			f.Add(b[:pos] + c + b[pos:])
		}
		// Right after runs of UTF-8 text.
		f.Add("Grüße, 東京 " + c + "é" + c + "x")
	}
	f.Fuzz(func(t *testing.T, s string) { checkString(t, s) })
}

func TestAppendLegacyMatchesLinuxKit(t *testing.T) {
	for _, loc := range []*time.Location{time.UTC, time.FixedZone("X", 5*3600+1800), time.Local} {
		enc := Encoder{Time: TimeFormatter{Loc: loc}}
		for i, s := range stringSeeds {
			for _, ns := range []int64{0, 1, 1763784000123456789, 1763784000100000000, 1763784000000000000} {
				ns += int64(i)
				e := ring.Entry{Time: ns, Source: []byte("src;" + s), Msg: []byte(s)}
				got := enc.AppendLegacy(nil, &e)
				want := encodingJSON(t, legacyEntry{Time: time.Unix(0, ns).In(loc), Source: "src;" + s, Msg: s})
				if !bytes.Equal(got, want) {
					t.Fatalf("legacy %s:\n got %s\nwant %s", loc, got, want)
				}
			}
		}
	}
}

func TestEntryRoundTrip(t *testing.T) {
	var enc Encoder
	e := ring.Entry{Seq: 42, Time: 1763784000123456789, OrigTime: 1763784000000001000, Source: []byte("prog"),
		Msg: []byte("hello \x00 <world>"), SD: []byte(`[kmsg@32473 seq="7"]`), PID: 99, Facility: 3, Severity: 2,
		Flags: ring.FlagHasPID | ring.FlagTruncated | ring.FlagPartial | ring.FlagRaw}
	line := enc.AppendEntry(nil, &e)
	if !json.Valid(line) {
		t.Fatalf("invalid JSON: %s", line)
	}
	r, err := DecodeRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "" || r.Seq != 42 || r.Time.UnixNano() != e.Time || r.TS.UnixNano() != e.OrigTime || r.Source != "prog" ||
		r.Msg != "hello \x00 <world>" || r.SD != string(e.SD) || r.PID != 99 || r.Facility != 3 || r.Severity != 2 ||
		!r.Truncated || !r.Partial || !r.Raw {
		t.Errorf("round trip: %+v", r)
	}
	if !r.OrigTime().Equal(time.Unix(0, e.OrigTime)) {
		t.Errorf("OrigTime %v", r.OrigTime())
	}
	// Without optional fields, none of their keys appear.
	plain := enc.AppendEntry(nil, &ring.Entry{Seq: 1, Time: 1, Source: []byte("s"), Msg: []byte("m"), Severity: 6})
	for _, k := range []string{"pid", "ts", "sd", "truncated", "partial", "raw"} {
		if bytes.Contains(plain, []byte(`"`+k+`"`)) {
			t.Errorf("plain entry has %q: %s", k, plain)
		}
	}
}

func TestControlRecords(t *testing.T) {
	for _, tc := range []struct {
		line []byte
		want Record
	}{
		{AppendHello(nil, Hello{Instance: "abc", Boot: "b", First: 3, Next: 9, Resumed: true, Kmsg: true}),
			Record{Type: TypeHello, Instance: "abc", Boot: "b", First: 3, Next: 9, Resumed: true, Kmsg: true}},
		{AppendGap(nil, 17, 40), Record{Type: TypeGap, Lost: 17, Seq: 40}},
		{AppendEnd(nil, 77), Record{Type: TypeEnd, Seq: 77}},
		{AppendError(nil, ErrRequest, `bad "x"`), Record{Type: TypeError, Error: `bad "x"`}},
	} {
		r, err := DecodeRecord(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		if r != tc.want {
			t.Errorf("%s decoded as %+v", tc.line, r)
		}
	}
}

func BenchmarkAppendLegacy80(b *testing.B) {
	var enc Encoder
	e := ring.Entry{Time: time.Now().UnixNano(), Source: []byte("svc0.out"), Msg: bytes.Repeat([]byte("x"), 80)}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.AppendLegacy(buf[:0], &e)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkEncodingJSON80(b *testing.B) {
	v := legacyEntry{Time: time.Now(), Source: "svc0.out", Msg: string(bytes.Repeat([]byte("x"), 80))}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		enc.Encode(v)
	}
	b.SetBytes(int64(buf.Len()))
}

// legacyRef is the former legacy encoder: its time formatter and string
// encoder.
type legacyRef struct{ time timeFormatterRef }

func (enc *legacyRef) appendLegacy(dst []byte, e *ring.Entry) []byte {
	dst = append(dst, `{"time":`...)
	dst = enc.time.append(dst, e.Time)
	dst = append(dst, `,"source":`...)
	dst, _ = appendStringRef(dst, e.Source)
	dst = append(dst, `,"msg":`...)
	dst, _ = appendStringRef(dst, e.Msg)
	return append(dst, '}', '\n')
}

func benchLegacy(b *testing.B, msg string, former bool) { benchLegacyRuns(b, msg, former, 1, 0) }

// benchLegacyRuns is benchLegacy with sources in runs of run entries, and
// flags on every entry.
func benchLegacyRuns(b *testing.B, msg string, former bool, run int, flags uint8) {
	var enc Encoder
	var ref legacyRef
	var es []ring.Entry
	t0 := time.Now().UnixNano()
	for i := range 1024 {
		// A new time every 8 entries, as memlogd's reads give them.
		es = append(es, ring.Entry{Time: t0 + int64(i/8)*1237, Source: []byte(fmt.Sprintf("svc%d.out", i/run%4)), Msg: []byte(msg), Flags: flags})
	}
	var buf []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if former {
			buf = ref.appendLegacy(buf[:0], &es[i&1023])
		} else {
			buf = enc.AppendLegacy(buf[:0], &es[i&1023])
		}
		i++
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkLegacyEntry: legacy records of entries with an 80-byte message
// of text, against the former encoder (...Former).
func BenchmarkLegacyEntry(b *testing.B)       { benchLegacy(b, benchMsgASCII[:80], false) }
func BenchmarkLegacyEntryFormer(b *testing.B) { benchLegacy(b, benchMsgASCII[:80], true) }

// BenchmarkLegacyEntryPlain: as memlogd's follower encodes the shared
// load generator's lines: marked plain (ring.FlagPlain) and sources in
// runs of 256, against this encoder and the former one given the same
// entries unmarked (...Unmarked, ...Former).
func BenchmarkLegacyEntryPlain(b *testing.B) {
	benchLegacyRuns(b, benchMsgASCII[:80], false, 256, ring.FlagPlain)
}
func BenchmarkLegacyEntryPlainUnmarked(b *testing.B) {
	benchLegacyRuns(b, benchMsgASCII[:80], false, 256, 0)
}
func BenchmarkLegacyEntryPlainFormer(b *testing.B) {
	benchLegacyRuns(b, benchMsgASCII[:80], true, 256, 0)
}

func BenchmarkLegacyEntryUTF8(b *testing.B)       { benchLegacy(b, benchMsgUTF8, false) }
func BenchmarkLegacyEntryUTF8Former(b *testing.B) { benchLegacy(b, benchMsgUTF8, true) }

// FuzzTimeFormatter: the legacy record's time is encoding/json's, also
// with the formatter's caches warm from the time before.
func FuzzTimeFormatter(f *testing.F) {
	f.Add(int64(1763784000123456789), int64(1763784000123456789), 0)
	f.Add(int64(1763784000123456789), int64(1763784000000000001), 3600)
	f.Add(int64(-1), int64(1), -1800)
	f.Fuzz(func(t *testing.T, a, b int64, off int) {
		off = off % 86400 / 60 * 60
		enc := Encoder{Time: TimeFormatter{Loc: time.FixedZone("", off)}}
		for _, ns := range []int64{a, b, a} {
			want, err := time.Unix(0, ns).In(enc.Time.Loc).MarshalJSON()
			if err != nil {
				continue // outside RFC 3339's years
			}
			if got := enc.Time.Append(nil, ns); !bytes.Equal(got, want) {
				t.Fatalf("%d: %s, encoding/json %s", ns, got, want)
			}
		}
	})
}
