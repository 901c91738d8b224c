package logforward

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/elastic"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/drain/loki"
	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/testutil"
)

// cpuSeconds is the user+system CPU time process pid has used.
func cpuSeconds(t testing.TB, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ
}

// benchLine is line i of writer w, L=80 bytes with the newline.
func benchLine(w, i int) string {
	s := fmt.Sprintf("w%d line %07d ", w, i)
	return s + strings.Repeat("x", 79-len(s)) + "\n"
}

// Benchmarks of logforward into VictoriaLogs, N=4 writers, L=80,
// BENCH_LINES lines (default 10^6): end-to-end lines/s and logforward's
// CPU seconds per 10^6 lines, against the ceiling: VictoriaLogs taking
// the same bodies posted directly (same batch size, same parallelism) in
// the same run. Run: go test -run XXX -bench VictoriaLogs -benchtime 1x
// ./internal/logforward/
func BenchmarkVictoriaLogs(b *testing.B) {
	total := 1000000
	if v, err := strconv.Atoi(os.Getenv("BENCH_LINES")); err == nil && v > 0 {
		total = v
	}
	const writers = 4
	v := startVictoriaLogs(b)
	protos := map[string]struct {
		url   string
		proto httpdrain.Protocol
		path  string
		ctype string
		gzip  bool
	}{
		"bulk": {"elasticsearch+http://" + v.Addr + "/insert/elasticsearch?arg._msg_field=message&arg._time_field=@timestamp&arg._stream_fields=host,source",
			&elastic.Bulk{Index: "lklog", Meta: httpdrain.Meta{Host: "vm1"}}, "/insert/elasticsearch/_bulk?_msg_field=message&_time_field=@timestamp&_stream_fields=host,source", "application/x-ndjson", false},
		"loki": {"loki+http://" + v.Addr + "/insert?gzip=false", &loki.Push{Labels: []string{"host", "source", "severity"}, Meta: httpdrain.Meta{Host: "vm1"}},
			"/insert/loki/api/v1/push", "application/json", false},
	}
	for _, name := range []string{"bulk", "loki"} {
		p := protos[name]
		b.Run(name+"/direct", func(b *testing.B) {
			// The ceiling: batches of 1000 encoded beforehand, posted
			// by 2 clients at once.
			var bodies [][]byte
			now := time.Now()
			for w := range writers {
				for i := 0; i < total/writers; i += 1000 {
					msgs := make([]drain.Message, 0, 1000)
					for k := i; k < min(i+1000, total/writers); k++ {
						msgs = append(msgs, drain.Message{Instance: "bench", Rec: logproto.Record{Seq: uint64(w*total + k + 1), Time: now, Source: fmt.Sprintf("w%d-%s", w, name), Msg: strings.TrimSuffix(benchLine(w, k), "\n"), Facility: 3, Severity: 6}})
					}
					bodies = append(bodies, p.proto.Encode(nil, msgs, http.Header{}))
				}
			}
			b.ResetTimer()
			vcpu0, self0 := cpuSeconds(b, v.p.Cmd.Process.Pid), cpuSeconds(b, os.Getpid())
			start := time.Now()
			var wg sync.WaitGroup
			next := make(chan []byte)
			for range 2 {
				wg.Go(func() {
					for body := range next {
						resp, err := http.Post("http://"+v.Addr+p.path, p.ctype, bytes.NewReader(body))
						if err != nil || resp.StatusCode/100 != 2 {
							b.Errorf("direct post: %v %v", err, resp)
							return
						}
						resp.Body.Close()
					}
				})
			}
			for _, body := range bodies {
				next <- body
			}
			close(next)
			wg.Wait()
			el := time.Since(start)
			per := func(cpu float64) float64 { return cpu * 1e6 / float64(total) }
			vcpu, self := per(cpuSeconds(b, v.p.Cmd.Process.Pid)-vcpu0), per(cpuSeconds(b, os.Getpid())-self0)
			b.ReportMetric(float64(total)/el.Seconds(), "lines/s")
			b.ReportMetric(vcpu, "vl-cpu-s/1e6lines")
			b.Logf("%s direct: %d lines in %v: %.0f lines/s; CPU s per 10^6 lines: VictoriaLogs %.2f, the posting client %.2f; %.2f cores busy",
				name, total, el.Round(time.Millisecond), float64(total)/el.Seconds(), vcpu, self, (vcpu+self)*float64(total)/1e6/el.Seconds())
		})
		b.Run(name+"/logforward", func(b *testing.B) {
			d := testutil.Start(b, "-max-lines", "100000", "-console=false")
			control := b.TempDir() + "/ctl.sock"
			f := &fwd{Proc: testutil.StartProc(b, testutil.Bin(b, "logforward"), "-socket", d.Query, "-state-dir", b.TempDir(), "-control", control,
				"-hostname", "vm1", "-report-interval", "0", "-spool-bytes", "4G", "-drain", p.url+"&sources=w*&exclude=*-direct"), control: control}
			var ws []*os.File
			for w := range writers {
				ws = append(ws, d.Socketpair(fmt.Sprintf("w%d", w)))
			}
			b.ResetTimer()
			pids := []int{f.Cmd.Process.Pid, d.PID(), v.p.Cmd.Process.Pid, os.Getpid()}
			cpu0 := make([]float64, len(pids))
			for i, pid := range pids {
				cpu0[i] = cpuSeconds(b, pid)
			}
			start := time.Now()
			var wg sync.WaitGroup
			for w, file := range ws {
				wg.Go(func() {
					var sb strings.Builder
					for i := range total / writers {
						sb.WriteString(benchLine(w, i))
						if sb.Len() > 64<<10 {
							file.WriteString(sb.String())
							sb.Reset()
						}
					}
					file.WriteString(sb.String())
				})
			}
			wg.Wait()
			written := time.Since(start)
			// Asked every 20 ms: a status request costs logforward
			// CPU too, which a tighter poll would add to its figure.
			deadline := time.Now().Add(10 * time.Minute)
			for {
				st, err := statusErr(f)
				if err == nil && len(st.Drains) == 1 && st.Drains[0].Acked >= uint64(total) {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("not all acknowledged: %+v %v", st, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			el := time.Since(start)
			cpu := make([]float64, len(pids))
			for i, pid := range pids {
				cpu[i] = (cpuSeconds(b, pid) - cpu0[i]) * 1e6 / float64(total)
			}
			st, err := statusErr(f)
			if err != nil || st.Drains[0].Dropped != 0 {
				b.Fatalf("entries dropped: %+v %v", st, err)
			}
			var batches uint64
			if dl := st.Drains[0].Delivery; dl != nil {
				batches = dl.Batches
			}
			b.ReportMetric(float64(total)/el.Seconds(), "lines/s")
			b.ReportMetric(cpu[0], "cpu-s/1e6lines")
			b.ReportMetric(cpu[1], "memlogd-cpu-s/1e6lines")
			b.ReportMetric(cpu[2], "vl-cpu-s/1e6lines")
			b.ReportMetric(cpu[3], "writers-cpu-s/1e6lines")
			b.Logf("%s logforward: %d lines in %v (written in %v, %d batches): %.0f lines/s; CPU s per 10^6 lines: logforward %.2f, memlogd %.2f, VictoriaLogs %.2f, writers (this process) %.2f; %.2f cores busy",
				name, total, el.Round(time.Millisecond), written.Round(time.Millisecond), batches, float64(total)/el.Seconds(), cpu[0], cpu[1], cpu[2], cpu[3], (cpu[0]+cpu[1]+cpu[2]+cpu[3])*float64(total)/1e6/el.Seconds())
		})
	}
}
