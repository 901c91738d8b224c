package logproto

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/ring"
)

// plainLenRef is PlainLen one byte at a time: the definition.
func plainLenRef(b []byte) int {
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return i
		}
	}
	return len(b)
}

// checkBlocks, where there is assembly, checks each of its
// implementations on b.
var checkBlocks func(t *testing.T, b []byte)

// checkPlain compares PlainLen, and its word-at-a-time part alone, with
// the definition on b, and checks what plain means: a plain b is written
// as it is as a JSON string and as text.
func checkPlain(t *testing.T, b []byte) {
	t.Helper()
	want := plainLenRef(b)
	if got := PlainLen(b); got != want {
		t.Fatalf("PlainLen(%q) = %d, want %d", b, got, want)
	}
	if got := plainLenWords(b); got != want {
		t.Fatalf("plainLenWords(%q) = %d, want %d", b, got, want)
	}
	// What other processors than amd64 run, checked on all.
	if got := plainLen(b, plainBlocksGo); got != want {
		t.Fatalf("PlainLen(%q) in Go alone = %d, want %d", b, got, want)
	}
	if got, want := plainBlocksGo(b), min(want, len(b)&^15); got != want {
		t.Fatalf("plainBlocksGo(%q) = %d, want %d", b, got, want)
	}
	if checkBlocks != nil {
		checkBlocks(t, b)
	}
	p := b[:want]
	if got := AppendString(nil, p); string(got) != `"`+string(p)+`"` {
		t.Fatalf("plain %q as JSON: %q", p, got)
	}
	if got := AppendEscapedBytes(nil, p, false); !bytes.Equal(got, p) {
		t.Fatalf("plain %q as text: %q", p, got)
	}
}

// TestPlainLen: every byte value at every position of inputs of 0 to 72
// bytes (blocks of 32 and 16, words and tails), among plain bytes.
func TestPlainLen(t *testing.T) {
	for n := 0; n <= 72; n++ {
		b := bytes.Repeat([]byte("a"), n)
		checkPlain(t, b)
		for i := 0; i < n; i++ {
			for c := 0; c < 256; c++ {
				b[i] = byte(c)
				checkPlain(t, b)
			}
			b[i] = 'a'
		}
	}
	// A byte that is not plain after one that is 0x80 or more, or DEL:
	// nothing carries into the byte before.
	checkPlain(t, []byte("0123456789abcd\x7f\x00ef0123456789"))
	checkPlain(t, []byte("0123456789abcd\xff\x00ef0123456789"))
}

func FuzzPlainLen(f *testing.F) {
	f.Add([]byte("L0001:0000000001:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nnext"))
	f.Add([]byte("0123456789abcdef<0123456789abcdef"))
	f.Add([]byte("\x7f\xff\"&<>\\ ~"))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkPlain(t, b)
		for i := 1; i < len(b) && i < 40; i++ {
			checkPlain(t, b[i:])
		}
	})
}

// BenchmarkPlainLen: finding the end of an 80-byte plain line among
// others (as ingest does) with PlainLen, with its Go words alone, and
// with bytes.IndexByte, which ingest used before.
func BenchmarkPlainLen(b *testing.B) {
	// The next lines follow, as in a read.
	line := bytes.Repeat(append(bytes.Repeat([]byte("x"), 80), '\n'), 4)
	for _, f := range []struct {
		name string
		fn   func([]byte) int
	}{
		{"PlainLen", PlainLen},
		{"words", plainLenWords},
		{"IndexByte", func(b []byte) int { return bytes.IndexByte(b, '\n') }},
	} {
		b.Run(fmt.Sprintf("%s/80", f.name), func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if f.fn(line) != 80 {
					b.Fatal("wrong end")
				}
			}
		})
	}
}

// checkEncoderPlain encodes entries with the given sources and message
// through one Encoder, legacy and extended, each with the message marked
// plain if it is (as ingest marks it), and compares every record with
// what a fresh Encoder writes for the entry unmarked, and the legacy one
// with encoding/json: the kept head and the copied message change no
// byte. Entry i has time times[i%len(times)].
func checkEncoderPlain(t *testing.T, msg []byte, times []int64, sources ...[]byte) {
	t.Helper()
	var legacy, ext Encoder
	for i, src := range sources {
		e := ring.Entry{Seq: uint64(i + 1), Time: times[i%len(times)], Source: src, Msg: msg, Facility: 3, Severity: 6}
		var ref Encoder
		wantLegacy, wantEntry := ref.AppendLegacy(nil, &e), ref.AppendEntry(nil, &e)
		if PlainLen(msg) == len(msg) {
			e.Flags |= ring.FlagPlain
		}
		if got := legacy.AppendLegacy(nil, &e); !bytes.Equal(got, wantLegacy) {
			t.Fatalf("legacy record %d: %s, want %s", i, got, wantLegacy)
		}
		if got := ext.AppendEntry(nil, &e); !bytes.Equal(got, wantEntry) {
			t.Fatalf("extended record %d: %s, want %s", i, got, wantEntry)
		}
		want := encodingJSON(t, legacyEntry{Time: time.Unix(0, e.Time), Source: string(src), Msg: string(msg)})
		if !bytes.Equal(wantLegacy, want) {
			t.Fatalf("legacy record %d: %s, encoding/json %s", i, wantLegacy, want)
		}
	}
}

func TestEncoderPlain(t *testing.T) {
	a, b := []byte("svc0.out"), []byte("svc1.out")
	// Four times against three sources: each source with each time.
	times := []int64{1763784000123456789, 1763784000123456789, 1763784000123456790, 1763784000123456790}
	var alternating [][]byte
	for i := range 40 {
		alternating = append(alternating, [][]byte{a, b, []byte("svc2.out")}[i%3])
	}
	for _, msg := range []string{"", "L0001:0000000001:xxxxxxxxxxxxxxxxxxxxxxxxxx", "a<b", "tab\there", "\xff", "é"} {
		checkEncoderPlain(t, []byte(msg), times, a, a, b, a, []byte("svc0.ou"), []byte("svc0.out\xff"), []byte("svc0.out\xfe"), nil, []byte{}, a)
		// Many misses in a row: only some heads are kept.
		checkEncoderPlain(t, []byte(msg), times, alternating...)
		checkEncoderPlain(t, []byte(msg), times[:1], alternating...)
		// The same source at a new time.
		checkEncoderPlain(t, []byte(msg), times[1:3], a, a, a)
	}
}

// FuzzEncoderPlain: entries with a message and, chosen by pattern,
// one of three sources and one of three times.
func FuzzEncoderPlain(f *testing.F) {
	f.Add([]byte("plain text, 0-9 ;:=()[]{}"), []byte("a"), []byte("b"), []byte{0, 0, 1, 0, 2, 2, 4, 5, 0, 0})
	f.Add([]byte("x<y"), []byte("a\xff"), []byte("a\xfe"), []byte{0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1})
	f.Fuzz(func(t *testing.T, msg, s1, s2, pattern []byte) {
		sources := [][]byte{s1, s2, nil}
		var es [][]byte
		times := []int64{}
		for i, p := range pattern {
			if i == 200 {
				break
			}
			es = append(es, sources[p%3])
			times = append(times, 1763784000123456789+int64(p/3%3))
		}
		if len(es) > 0 {
			checkEncoderPlain(t, msg, times, es...)
		}
	})
}
