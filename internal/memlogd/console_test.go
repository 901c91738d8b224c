package memlogd

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logproto"
)

// checkConsoleLines formats the entries (ns, source, msg) in order with
// one consoleFormat and compares every line with what
// logproto.TextFormatter makes of it alone. A message made of plain bytes
// is formatted as plain (ring.FlagPlain), as ingest marks it, and also not.
func checkConsoleLines(t *testing.T, es []consoleCase) {
	t.Helper()
	var f consoleFormat
	var got []byte
	for i, e := range es {
		plain := logproto.PlainLen(e.msg) == len(e.msg) && i%2 == 0
		got = f.append(got[:0], e.ns, e.source, e.msg, plain)
		var text logproto.TextFormatter
		want := text.AppendBytes(nil, time.Unix(0, e.ns), e.source, e.msg)
		if !bytes.Equal(got, want) {
			t.Fatalf("entry %+v: console line %q, want %q", e, got, want)
		}
	}
}

type consoleCase struct {
	ns          int64
	source, msg []byte
}

// TestConsoleLineAsText: the console's lines, which reuse the formatted
// time and source of the entry before, are exactly logread's text lines,
// whether times and sources repeat, change within a second or across
// one, or differ only after their escaping.
func TestConsoleLineAsText(t *testing.T) {
	base := time.Date(2026, 12, 2, 1, 2, 3, 0, time.Local).UnixNano()
	src, msg := []byte("app.out"), []byte("hello")
	checkConsoleLines(t, []consoleCase{
		{base, src, msg},
		{base, src, msg},
		{base + 1, []byte("a;b"), []byte("line\nforged;x\x1b[2J")},
		{base + 1, src, []byte("\xff\xfe bytes")},
		{base + 120_000_000, src, msg},
		{base + 1_000_000_000, src, msg},
		{base + 1_000_000_000, nil, nil},
		{base - 86400_000_000_001, src, msg},
		{0, src, msg},
		{base, src, msg},
		{base, []byte("app.ou"), msg},
		{base, []byte("app.out\xff"), msg},
		{base, []byte("app.out\xfe"), msg},
		{base, []byte("app.out\n"), msg},
		{base, []byte("app.out;"), msg},
		{base, []byte{}, msg},
		{base, src, msg},
	})
}

func FuzzConsoleLine(f *testing.F) {
	f.Add(int64(1764637323000000000), int64(1764637323000000000), []byte("app"), []byte("msg"))
	f.Add(int64(1764637323123456789), int64(1764637324000000000), []byte("a;b\\"), []byte("\x00\n\t\u2028\x9b"))
	f.Add(int64(0), int64(-1), []byte{}, []byte{0xff})
	f.Fuzz(func(t *testing.T, ns1, ns2 int64, source, msg []byte) {
		checkConsoleLines(t, []consoleCase{{ns1, source, msg}, {ns2, msg, source}, {ns1, source, source}})
	})
}

// BenchmarkConsoleLine: the console's formatting of lines of 80 bytes
// from 4 sources, 800 lines per read (a 64 KiB read) sharing a time,
// against logproto.TextFormatter.AppendBytes line by line; plain=true
// with the message marked plain (ring.FlagPlain), as ingest marks it.
func BenchmarkConsoleLine(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 80)
	srcs := [][]byte{[]byte("load0.out"), []byte("load1.out"), []byte("load2.out"), []byte("load3.out")}
	ns := time.Date(2026, 12, 2, 1, 2, 3, 123456789, time.UTC).UnixNano()
	line := func(i int) (int64, []byte) { return ns + int64(i/800), srcs[i/800%4] }
	for _, plain := range []bool{false, true} {
		b.Run(fmt.Sprintf("console/plain=%v", plain), func(b *testing.B) {
			var f consoleFormat
			var out []byte
			i := 0
			for b.Loop() {
				t, src := line(i)
				out = f.append(out[:0], t, src, msg, plain)
				i++
			}
		})
	}
	b.Run("TextFormatter", func(b *testing.B) {
		var f logproto.TextFormatter
		var out []byte
		i := 0
		for b.Loop() {
			t, src := line(i)
			out = f.AppendBytes(out[:0], time.Unix(0, t), src, msg)
			i++
		}
	})
}
