package logforward

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/forward"
	"github.com/lklog/lklog/internal/forward/config"
	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/testutil"
)

// Benchmarks of logforward's core and destinations in this process (so
// that -cpuprofile and -memprofile see them): memlogd (the real binary)
// holds BENCH_LINES lines (default 200000) from 4 writers, L=80, written
// before the timer starts; the forwarder ships them to a counting sink
// on loopback. ns/line is per line; ns/op, B/op and allocs/op are per
// run of all the lines, the sinks' own allocations included.
//
//	go test -run XXX -bench InProcess -cpuprofile cpu.out ./internal/logforward/
func BenchmarkInProcess(b *testing.B) {
	total := 200000
	if v, err := strconv.Atoi(os.Getenv("BENCH_LINES")); err == nil && v > 0 {
		total = v
	}
	for _, name := range []string{"tcp", "loki", "lokigzip", "bulk", "jsonlines"} {
		b.Run(name, func(b *testing.B) {
			var counted atomic.Uint64
			var url string
			switch name {
			case "tcp":
				url = "syslog+tcp://" + countingTCPSink(b, &counted)
			default:
				addr := countingHTTPSink(b, &counted)
				url = map[string]string{
					"loki":      "loki+http://" + addr + "/?gzip=false",
					"lokigzip":  "loki+http://" + addr + "/",
					"bulk":      "elasticsearch+http://" + addr + "/",
					"jsonlines": "http://" + addr + "/",
				}[name]
			}
			d := testutil.Start(b, "-max-lines", strconv.Itoa(total+1000), "-max-bytes", strconv.Itoa(100*total+1<<20), "-console=false")
			for w := range 4 {
				f := d.Socketpair(fmt.Sprintf("w%d", w))
				var sb strings.Builder
				for i := range total / 4 {
					sb.WriteString(benchLine(w, i))
				}
				if _, err := f.WriteString(sb.String()); err != nil {
					b.Fatal(err)
				}
			}
			// Wait until memlogd has them all.
			if !testutil.Eventually(20*time.Second, func() bool { return countEntries(d.Query) >= total }) {
				b.Fatalf("memlogd did not take %d lines: has %d; %s", total, countEntries(d.Query), d.Stderr)
			}
			b.ResetTimer()
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				counted.Store(0)
				ctx, cancel := context.WithCancel(context.Background())
				fw := forward.New(ctx, forward.Options{Socket: d.Query, StateDir: b.TempDir(), SpoolBytes: 4 << 30,
					New: func(p config.Parsed) (drain.Destination, error) { return newDest(p, "vm1", b.Logf) }})
				b.StartTimer()
				if _, err := fw.Add(config.Drain{URL: url + map[bool]string{true: "&", false: "?"}[strings.Contains(url, "?")] + "sources=w*"}); err != nil {
					b.Fatal(err)
				}
				if !testutil.Eventually(5*time.Minute, func() bool {
					st := fw.List()
					return len(st) == 1 && st[0].Acked >= uint64(total)
				}) {
					b.Fatalf("not all acknowledged: %+v", fw.List())
				}
				b.StopTimer()
				if c := counted.Load(); c < uint64(total) {
					b.Fatalf("sink counted %d lines of %d", c, total)
				}
				cancel()
				fw.Wait()
				b.StartTimer()
			}
			// Per line.
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/line")
		})
	}
}

// countEntries asks memlogd for a dump and counts its entries.
func countEntries(query string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := logclient.Open(ctx, query, logproto.Request{Mode: logproto.ModeDump, Sources: []string{"w*"}})
	if err != nil {
		return 0
	}
	defer s.Close()
	n := 0
	for {
		if _, err := s.NextRaw(); err != nil {
			return n
		}
		n++
	}
}

// countingTCPSink counts octet-counted frames.
func countingTCPSink(t testing.TB, n *atomic.Uint64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 256<<10)
				for {
					l, err := br.ReadSlice(' ')
					if err != nil {
						return
					}
					k, err := strconv.Atoi(string(l[:len(l)-1]))
					if err != nil {
						return
					}
					if _, err := br.Discard(k); err != nil {
						return
					}
					n.Add(1)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// countingHTTPSink answers every request 200 (or _bulk's answer) and
// counts the lines of the bodies that carry entries.
func countingHTTPSink(t testing.TB, n *atomic.Uint64) string {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rd = zr
		}
		body, _ := io.ReadAll(rd)
		switch {
		case strings.HasSuffix(r.URL.Path, "/_bulk"):
			items := bytes.Count(body, []byte("\n")) / 2
			n.Add(uint64(items))
			var sb strings.Builder
			sb.WriteString(`{"errors":false,"items":[`)
			for i := range items {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(`{"create":{"status":201}}`)
			}
			sb.WriteString("]}")
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, sb.String())
			return
		case strings.HasSuffix(r.URL.Path, "/loki/api/v1/push"):
			n.Add(uint64(bytes.Count(body, []byte(`"],["`)) + bytes.Count(body, []byte(`"values":[[`))))
			w.WriteHeader(http.StatusNoContent)
		default:
			n.Add(uint64(bytes.Count(body, []byte("\n"))))
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
