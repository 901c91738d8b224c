package ingest

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

type recorder struct {
	mu      sync.Mutex
	entries []ring.Entry
}

func (r *recorder) Append(es ...ring.Entry) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range es {
		e.Msg = append([]byte(nil), e.Msg...)
		e.Source = append([]byte(nil), e.Source...)
		r.entries = append(r.entries, e)
	}
	return uint64(len(r.entries))
}

// chunks is a reader that returns its chunks one per Read.
type chunks struct{ parts []string }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	if c.parts[0] == "" {
		c.parts = c.parts[1:]
	}
	return n, nil
}

type line struct {
	msg   string
	flags uint8
}

func run(t *testing.T, max int, parts ...string) []line {
	t.Helper()
	var rec recorder
	var n int64
	_, err := Read(context.Background(), &chunks{parts: parts}, []byte("src"), &rec, Config{
		MaxLineLen: max, Facility: 3, Severity: 6, Now: func() int64 { n++; return n },
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []line
	for _, e := range rec.entries {
		if string(e.Source) != "src" || e.Facility != 3 || e.Severity != 6 || e.Time == 0 {
			t.Errorf("entry metadata %+v", e)
		}
		checkPlainFlag(t, e)
		out = append(out, line{string(e.Msg), e.Flags &^ ring.FlagPlain})
	}
	return out
}

// checkPlainFlag: an entry is marked plain only if its message is, and a
// whole line (neither cut nor partial) that is plain is marked.
func checkPlainFlag(t *testing.T, e ring.Entry) {
	t.Helper()
	plain := logproto.PlainLen(e.Msg) == len(e.Msg)
	marked := e.Flags&ring.FlagPlain != 0
	if marked && !plain {
		t.Errorf("message %q marked plain", e.Msg)
	}
	if !marked && plain && e.Flags&(ring.FlagTruncated|ring.FlagPartial) == 0 {
		t.Errorf("plain line %q not marked plain", e.Msg)
	}
}

// TestPlainLines: which lines are marked plain, including a "\r\n" end
// (dropped) and lines cut at the maximum length.
func TestPlainLines(t *testing.T) {
	var rec recorder
	in := "plain line\nwith\ttab\ncrlf\r\nlone\rcr\n<b>\n\nplain but long\nx\xff\npartial"
	_, err := Read(context.Background(), &chunks{parts: []string{in}}, []byte("src"), &rec, Config{
		MaxLineLen: 12, Now: func() int64 { return 1 },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		msg   string
		plain bool
	}{{"plain line", true}, {"with\ttab", false}, {"crlf", true}, {"lone\rcr", false}, {"<b>", false}, {"", true},
		{"plain but lo", true}, {"x\xff", false}, {"partial", false}}
	if len(rec.entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(rec.entries), len(want))
	}
	for i, e := range rec.entries {
		if string(e.Msg) != want[i].msg || (e.Flags&ring.FlagPlain != 0) != want[i].plain {
			t.Errorf("entry %d: %q flags %#x, want %q plain %v", i, e.Msg, e.Flags, want[i].msg, want[i].plain)
		}
	}
}

func TestLines(t *testing.T) {
	T, P := ring.FlagTruncated, ring.FlagPartial
	for _, tc := range []struct {
		name  string
		max   int
		parts []string
		want  []line
	}{
		{"simple", 100, []string{"a\nb\n"}, []line{{"a", 0}, {"b", 0}}},
		{"split across reads", 100, []string{"he", "llo\nwo", "rld\n"}, []line{{"hello", 0}, {"world", 0}}},
		{"crlf", 100, []string{"a\r\nb\r", "\n"}, []line{{"a", 0}, {"b", 0}}},
		{"lone cr kept inside", 100, []string{"a\rb\n"}, []line{{"a\rb", 0}}},
		{"empty lines", 100, []string{"\n\nx\n"}, []line{{"", 0}, {"", 0}, {"x", 0}}},
		{"partial at EOF", 100, []string{"a\nrest"}, []line{{"a", 0}, {"rest", P}}},
		{"nul and bad utf8", 100, []string{"a\x00b\xff\n"}, []line{{"a\x00b\xff", 0}}},
		{"cut in one read", 5, []string{"0123456789\nnext\n"}, []line{{"01234", T}, {"next", 0}}},
		{"cut across reads", 5, []string{"0123", "456", "789", "\nnext\n"}, []line{{"01234", T}, {"next", 0}}},
		{"exactly max", 5, []string{"01234\n"}, []line{{"01234", 0}}},
		{"exactly max with crlf split", 5, []string{"01234\r", "\n"}, []line{{"01234", 0}}},
		{"long partial at EOF", 5, []string{"0123456789"}, []line{{"01234", T}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := run(t, tc.max, tc.parts...)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("line %d: got %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// reference splits input the slow, obvious way.
func reference(in string, max int) []line {
	var out []line
	parts := strings.Split(in, "\n")
	for i, p := range parts {
		last := i == len(parts)-1
		if last && p == "" {
			break
		}
		var f uint8
		if last {
			f |= ring.FlagPartial
		}
		p = strings.TrimSuffix(p, "\r")
		if len(p) > max {
			p = p[:max]
			f = ring.FlagTruncated // a cut line is never reported partial
		}
		out = append(out, line{p, f})
	}
	return out
}

func FuzzSplit(f *testing.F) {
	f.Add("a\nb\r\nccc", uint8(3), uint8(2))
	f.Add("\n\n\r\r\n0123456789abc", uint8(1), uint8(4))
	f.Fuzz(func(t *testing.T, in string, max, chunk uint8) {
		m := int(max%40) + 1
		c := int(chunk%17) + 1
		var parts []string
		for s := in; len(s) > 0; {
			k := min(c, len(s))
			parts = append(parts, s[:k])
			s = s[k:]
		}
		got := run(t, m, parts...)
		want := reference(in, m)
		if len(got) != len(want) {
			t.Fatalf("max %d chunk %d: got %q, want %q", m, c, got, want)
		}
		for i := range got {
			if got[i].msg != want[i].msg || got[i].flags&ring.FlagTruncated != want[i].flags&ring.FlagTruncated {
				t.Fatalf("max %d chunk %d line %d: got %q, want %q", m, c, i, got[i], want[i])
			}
		}
	})
}

func TestReadStopsOnCancel(t *testing.T) {
	a, b, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var rec recorder
	go func() {
		_, err := Read(ctx, a, []byte("p"), &rec, Config{MaxLineLen: 10, Now: func() int64 { return 1 }})
		done <- err
	}()
	b.Write([]byte("one\n"))
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("no error after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not stop on cancel")
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	reg, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	dg, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dg)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	for _, tc := range []struct {
		name string
		fd   int
		ok   bool
		msg  string
	}{
		{"regular file", int(reg.Fd()), false, "regular file"},
		{"directory", int(d.Fd()), false, "directory"},
		{"pipe write end", int(pw.Fd()), false, "write-only"},
		{"datagram socket", dg, false, "not a stream socket"},
		{"pipe read end", int(pr.Fd()), true, ""},
		{"socketpair end", sp[0], true, ""},
		{"closed fd", 1 << 20, false, "fstat"},
	} {
		err := Check(tc.fd)
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestOpenReadsThroughPoller: an fd from Open is read by Read until the
// writer closes, as memlogd reads a socketpair end init passed it.
func TestOpenReadsThroughPoller(t *testing.T) {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(sp[0], "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := os.NewFile(uintptr(sp[1]), "w")
	var want bytes.Buffer
	go func() {
		for i := 0; i < 10000; i++ {
			w.Write([]byte("line of text\n"))
		}
		w.Close()
	}()
	for i := 0; i < 10000; i++ {
		want.WriteString("line of text\n")
	}
	var rec recorder
	st, err := Read(context.Background(), f, []byte("x"), &rec, Config{MaxLineLen: 100, Now: func() int64 { return 1 }})
	if err != nil || st.Lines != 10000 || len(rec.entries) != 10000 {
		t.Fatalf("stats %+v, %d entries, %v", st, len(rec.entries), err)
	}
}

func BenchmarkSplit80(b *testing.B) {
	data := bytes.Repeat(append(bytes.Repeat([]byte("x"), 80), '\n'), 800)
	s := splitter{name: []byte("svc0.out"), c: Config{MaxLineLen: 1024, Now: func() int64 { return 1 }}}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s.split(data, 1)
		s.entries = s.entries[:0]
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*800), "ns/line")
}
