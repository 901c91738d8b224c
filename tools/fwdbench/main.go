// Command fwdbench measures logforward end to end beside rsyslog
// forwarding the same lines over the same protocol, in the same run:
//
//   - logforward: ../shared/bench/loadgen feeds memlogd (N writers of L-byte
//     lines), logforward ships them to a counting sink;
//   - rsyslog: the same number of lines of the same length are sent to an
//     rsyslogd's unix socket (imuxsock), which forwards them with omfwd
//     (TCP, octet counting) or omrelp to the same sink.
//
// The sink (in this program) counts frames and, for RELP, acknowledges
// each one, so neither forwarder waits for a slow receiver. It prints
// lines/s from the first line written to the last line counted, and the
// forwarder's CPU seconds per 10^6 lines. Run it with `make build` done:
//
//	go run ./tools/fwdbench [-runs 3] [-proto tcp,relp]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lklog/lklog/internal/drain/relp"
)

func main() {
	shared := flag.String("shared", "../shared/bench", "folder with loadgen")
	bin := flag.String("bin", "bin", "built binaries (make build)")
	n := flag.Int("n", 4, "writers")
	m := flag.Int("m", 250000, "lines per writer")
	l := flag.Int("l", 80, "bytes per line")
	runs := flag.Int("runs", 1, "runs per scenario (median)")
	protos := flag.String("proto", "tcp,relp", "protocols")
	flag.Parse()
	if err := run(*shared, *bin, *n, *m, *l, *runs, strings.Split(*protos, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "fwdbench:", err)
		os.Exit(1)
	}
}

type result struct {
	rate float64 // lines/s
	cpu  float64 // forwarder CPU s per 10^6 lines
}

func run(shared, bin string, n, m, l, runs int, protos []string) error {
	tmp, err := os.MkdirTemp("", "fwdbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	lg := filepath.Join(tmp, "loadgen")
	cmd := exec.Command("go", "build", "-o", lg, ".")
	cmd.Dir = filepath.Join(shared, "loadgen")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building loadgen: %v\n%s", err, out)
	}
	total := n * m
	fmt.Printf("N=%d L=%d, %d lines, median of %d\n", n, l, total, runs)
	fmt.Printf("%-6s %-12s %12s %22s\n", "proto", "forwarder", "lines/s", "CPU s per 10^6 lines")
	for _, proto := range protos {
		var lf, rs []result
		for i := 0; i < runs; i++ {
			r, err := runLogforward(tmp, bin, lg, proto, n, m, l)
			if err != nil {
				return err
			}
			lf = append(lf, r)
			r, err = runRsyslog(tmp, proto, n, m, l)
			if err != nil {
				return err
			}
			rs = append(rs, r)
		}
		a, b := median(lf), median(rs)
		fmt.Printf("%-6s %-12s %12.0f %22.2f\n", proto, "logforward", a.rate, a.cpu)
		fmt.Printf("%-6s %-12s %12.0f %22.2f\n", proto, "rsyslog", b.rate, b.cpu)
		fmt.Printf("%-6s %-12s %12.2f %22.2f\n", proto, "ratio", a.rate/b.rate, a.cpu/b.cpu)
	}
	return nil
}

func median(rs []result) result {
	sort.Slice(rs, func(i, j int) bool { return rs[i].rate < rs[j].rate })
	r := rs[len(rs)/2]
	cpus := make([]float64, len(rs))
	for i := range rs {
		cpus[i] = rs[i].cpu
	}
	sort.Float64s(cpus)
	r.cpu = cpus[len(cpus)/2]
	return r
}

// sink counts syslog frames (octet counting) or RELP messages.
type sink struct {
	l     net.Listener
	count atomic.Int64
	relp  bool
	full  chan struct{}
	want  int64
	once  sync.Once
}

func newSink(proto string, want int64) (*sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{l: l, relp: proto == "relp", full: make(chan struct{}), want: want}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s, nil
}

func (s *sink) addr() string { return s.l.Addr().String() }

func (s *sink) add() {
	if s.count.Add(1) >= s.want {
		s.once.Do(func() { close(s.full) })
	}
}

func (s *sink) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 256<<10)
	if s.relp {
		bw := bufio.NewWriterSize(c, 64<<10)
		for {
			f, err := relp.ReadFrame(br)
			if err != nil {
				return
			}
			switch f.Command {
			case "open":
				bw.Write(relp.AppendFrame(nil, f.Txnr, "rsp", []byte("200 OK\nrelp_version=0\nrelp_software=fwdbench\ncommands=syslog")))
			case "syslog":
				bw.Write(relp.AppendFrame(nil, f.Txnr, "rsp", []byte("200 OK")))
				s.add()
			case "close":
				bw.Write(relp.AppendFrame(nil, f.Txnr, "rsp", []byte("200 OK")))
				bw.Flush()
				return
			}
			if br.Buffered() == 0 {
				if bw.Flush() != nil {
					return
				}
			}
		}
	}
	for {
		var v int
		for {
			b, err := br.ReadByte()
			if err != nil {
				return
			}
			if b == ' ' {
				break
			}
			if b < '0' || b > '9' {
				fmt.Fprintf(os.Stderr, "fwdbench: sink: not octet counting (%q)\n", b)
				return
			}
			v = v*10 + int(b-'0')
		}
		if _, err := br.Discard(v); err != nil {
			return
		}
		s.add()
	}
}

// cpuSeconds reads a process's user+system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil
}

func waitFile(p string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("%s did not appear within %v", p, d)
}

func waitFull(s *sink, d time.Duration) error {
	select {
	case <-s.full:
		return nil
	case <-time.After(d):
		return fmt.Errorf("the sink counted %d of %d lines in %v", s.count.Load(), s.want, d)
	}
}

func runLogforward(tmp, bin, lg, proto string, n, m, l int) (result, error) {
	dir, err := os.MkdirTemp(tmp, "lf")
	if err != nil {
		return result{}, err
	}
	total := int64(n * m)
	s, err := newSink(proto, total)
	if err != nil {
		return result{}, err
	}
	defer s.l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logSock, qSock := filepath.Join(dir, "log.sock"), filepath.Join(dir, "q.sock")
	md := exec.CommandContext(ctx, filepath.Join(bin, "memlogd"), "-socket-log", logSock, "-socket-query", qSock, "-socket-syslog=", "-max-lines", "5000", "-console=false")
	if err := md.Start(); err != nil {
		return result{}, err
	}
	defer func() { cancel(); md.Wait() }()
	if err := waitFile(qSock, 10*time.Second); err != nil {
		return result{}, err
	}
	scheme := "syslog+tcp"
	if proto == "relp" {
		scheme = "relp"
	}
	lfOut := &strings.Builder{}
	lf := exec.CommandContext(ctx, filepath.Join(bin, "logforward"), "-socket", qSock, "-state-dir", filepath.Join(dir, "state"),
		"-control", filepath.Join(dir, "ctl.sock"), "-spool-bytes", "2G", "-report-interval", "0",
		"-drain", fmt.Sprintf("%s://%s?sources=svc*", scheme, s.addr()))
	lf.Stderr = lfOut
	if err := lf.Start(); err != nil {
		return result{}, err
	}
	defer func() { cancel(); lf.Wait() }()
	if err := waitFile(filepath.Join(dir, "ctl.sock"), 10*time.Second); err != nil {
		return result{}, err
	}
	start := time.Now()
	g := exec.Command(lg, "-log-socket", logSock, "-query-socket", qSock, "-n", fmt.Sprint(n), "-m", fmt.Sprint(m), "-l", fmt.Sprint(l), "-followers", "", "-q")
	if out, err := g.CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("loadgen: %v\n%s", err, out)
	}
	if err := waitFull(s, 10*time.Minute); err != nil {
		return result{}, fmt.Errorf("logforward: %w\n%s", err, lfOut)
	}
	el := time.Since(start)
	cpu, err := cpuSeconds(lf.Process.Pid)
	if err != nil {
		return result{}, err
	}
	return result{rate: float64(total) / el.Seconds(), cpu: cpu / (float64(total) / 1e6)}, nil
}

func runRsyslog(tmp, proto string, n, m, l int) (result, error) {
	dir, err := os.MkdirTemp(tmp, "rs")
	if err != nil {
		return result{}, err
	}
	total := int64(n * m)
	s, err := newSink(proto, total)
	if err != nil {
		return result{}, err
	}
	defer s.l.Close()
	host, port, _ := net.SplitHostPort(s.addr())
	sock := filepath.Join(dir, "in.sock")
	action := fmt.Sprintf(`action(type="omfwd" target=%q port=%q protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")`, host, port)
	mods := `module(load="imuxsock" SysSock.Use="off")`
	if proto == "relp" {
		mods += "\nmodule(load=\"omrelp\")"
		action = fmt.Sprintf(`action(type="omrelp" target=%q port=%q template="RSYSLOG_SyslogProtocol23Format")`, host, port)
	}
	conf := fmt.Sprintf(`global(workDirectory=%q)
%s
input(type="imuxsock" Socket=%q RateLimit.Interval="0" CreatePath="on")
%s
`, dir, mods, sock, action)
	cf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs := exec.CommandContext(ctx, "rsyslogd", "-n", "-f", cf, "-i", filepath.Join(dir, "pid"))
	out := &strings.Builder{}
	rs.Stdout, rs.Stderr = out, out
	if err := rs.Start(); err != nil {
		return result{}, err
	}
	defer func() { cancel(); rs.Wait() }()
	if err := waitFile(sock, 10*time.Second); err != nil {
		return result{}, fmt.Errorf("rsyslog: %w\n%s", err, out)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := net.Dial("unixgram", sock)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			prefix := fmt.Sprintf("<30>svc%d.out: ", w)
			line := []byte(prefix + strings.Repeat("x", max(l-len(prefix), 1)))
			for i := 0; i < m; i++ {
				if _, err := c.Write(line); err != nil {
					if errors.Is(err, io.EOF) {
						return
					}
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return result{}, fmt.Errorf("feeding rsyslog: %w", err)
	}
	if err := waitFull(s, 10*time.Minute); err != nil {
		return result{}, fmt.Errorf("rsyslog: %w\n%s", err, out)
	}
	el := time.Since(start)
	cpu, err := cpuSeconds(rs.Process.Pid)
	if err != nil {
		return result{}, err
	}
	return result{rate: float64(total) / el.Seconds(), cpu: cpu / (float64(total) / 1e6)}, nil
}
