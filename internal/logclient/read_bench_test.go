package logclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

const benchDumpLines = 4096

// dumpServer serves every connection a complete extended dump of
// benchDumpLines entries of about 100 bytes from 4 sources, written in
// 64 KiB writes as memlogd does.
func dumpServer(b *testing.B) string {
	path := filepath.Join(b.TempDir(), "q.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	reply := logproto.AppendHello(nil, logproto.Hello{Instance: "i", Boot: "b", First: 1, Next: benchDumpLines + 1})
	var enc logproto.Encoder
	t0 := time.Now().UnixNano()
	msg := []byte(strings.Repeat("lorem ipsum ", 8))
	for i := range benchDumpLines {
		e := ring.Entry{Seq: uint64(i + 1), Time: t0 + int64(i/8)*1237, Source: []byte(fmt.Sprintf("svc%d.out", i%4)), Msg: msg, Severity: 6}
		reply = enc.AppendEntry(reply, &e)
	}
	reply = logproto.AppendEnd(reply, benchDumpLines+1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 4096))
				for r := reply; len(r) > 0; {
					n := min(len(r), 64<<10)
					if _, err := c.Write(r[:n]); err != nil {
						return
					}
					r = r[n:]
				}
			}()
		}
	}()
	return path
}

// benchRead reads whole dumps with next and reports the time per line.
func benchRead(b *testing.B, next func(*Stream, *logproto.Record) error) {
	path := dumpServer(b)
	var r logproto.Record
	b.ReportAllocs()
	lines := 0
	for b.Loop() {
		s, err := Open(context.Background(), path, logproto.Request{Mode: logproto.ModeDump})
		if err != nil {
			b.Fatal(err)
		}
		for {
			err := next(s, &r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			lines++
		}
		s.Close()
	}
	if lines != b.N*benchDumpLines {
		b.Fatalf("%d lines, want %d", lines, b.N*benchDumpLines)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
}

// BenchmarkReadRaw: lines only (split, no decoding).
func BenchmarkReadRaw(b *testing.B) {
	benchRead(b, func(s *Stream, _ *logproto.Record) error { _, err := s.NextRaw(); return err })
}

// BenchmarkReadInto: records whose strings stay valid (NextInto).
func BenchmarkReadInto(b *testing.B) {
	benchRead(b, (*Stream).NextInto)
}

// BenchmarkReadView: records viewing the stream's buffer (NextView).
func BenchmarkReadView(b *testing.B) {
	benchRead(b, (*Stream).NextView)
}
