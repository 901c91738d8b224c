//go:build linux

package syslogd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/syslog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/ring"
	"golang.org/x/sys/unix"
)

// collector is a Sink that keeps deep copies of what it is given.
type collector struct {
	mu      sync.Mutex
	entries []ring.Entry
	calls   int
	changed chan struct{}
}

func newCollector() *collector { return &collector{changed: make(chan struct{}, 1)} }

func (c *collector) Append(es ...ring.Entry) uint64 {
	c.mu.Lock()
	for _, e := range es {
		e.Source = bytes.Clone(e.Source)
		e.Msg = bytes.Clone(e.Msg)
		e.SD = bytes.Clone(e.SD)
		c.entries = append(c.entries, e)
	}
	c.calls++
	n := len(c.entries)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return uint64(n)
}

// wait returns the first n entries, failing the test after a timeout.
func (c *collector) wait(t testing.TB, n int) []ring.Entry {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.entries) >= n {
			es := append([]ring.Entry(nil), c.entries...)
			c.mu.Unlock()
			return es
		}
		have := len(c.entries)
		c.mu.Unlock()
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("timed out with %d entries, want %d", have, n)
		}
	}
}

// serve starts a server on a socket in a temporary directory; it is stopped
// and checked at the end of the test.
func serve(t *testing.T, c Config, sink Sink) *Server {
	t.Helper()
	if c.Path == "" {
		c.Path = filepath.Join(t.TempDir(), "log")
	}
	s, err := Listen(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// sendRaw sends each datagram from a fresh unbound socket, as syslog(3)
// does, with oob as ancillary data.
func sendRaw(t testing.TB, path string, oob []byte, dgrams ...[]byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, d := range dgrams {
		if err := unix.Sendmsg(fd, d, oob, &unix.SockaddrUnix{Name: path}, 0); err != nil {
			t.Fatalf("send %d bytes: %v", len(d), err)
		}
	}
}

func TestServeSamples(t *testing.T) {
	col := newCollector()
	s := serve(t, Config{Location: time.UTC, Now: func() time.Time { return testNow }}, col)
	var dgrams [][]byte
	for _, c := range parseCases {
		dgrams = append(dgrams, []byte(c.in))
	}
	sendRaw(t, s.Addr(), nil, dgrams...)
	es := col.wait(t, len(parseCases))
	if len(es) != len(parseCases) {
		t.Fatalf("%d entries for %d datagrams", len(es), len(parseCases))
	}
	var want Stats
	for i, c := range parseCases {
		e := es[i]
		if e.Time != testNow.UnixNano() {
			t.Errorf("%s: time %d, want receive time %d", c.name, e.Time, testNow.UnixNano())
		}
		// A message without a pid gets the sender's, from SCM_CREDENTIALS.
		if c.pid == 0 {
			if e.PID != int32(os.Getpid()) || e.Flags&ring.FlagHasPID == 0 {
				t.Errorf("%s: pid %d flags %#x, want credentials pid %d", c.name, e.PID, e.Flags, os.Getpid())
			}
			c.pid = int32(os.Getpid())
			want.CredPIDs++
		}
		t.Run(c.name, func(t *testing.T) { checkEntry(t, c, e, c.format) })
		want.Received++
		switch c.format {
		case Format3164:
			want.Parsed3164++
		case Format5424:
			want.Parsed5424++
		default:
			want.Raw++
			if c.msg == "" {
				want.Empty++
			}
		}
	}
	if got := s.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestServeTruncation(t *testing.T) {
	col := newCollector()
	s := serve(t, Config{MaxMsgLen: 100}, col)
	big := append([]byte("<13>Nov 22 04:00:00 big: "), bytes.Repeat([]byte("x"), 100<<10)...)
	sendRaw(t, s.Addr(), nil, []byte("<13>p: "+strings.Repeat("y", 101)), []byte("<13>p: "+strings.Repeat("z", 100)), big)
	es := col.wait(t, 3)
	if string(es[0].Msg) != strings.Repeat("y", 100) || es[0].Flags&ring.FlagTruncated == 0 {
		t.Errorf("101 bytes: msg %d bytes flags %#x, want 100 and truncated", len(es[0].Msg), es[0].Flags)
	}
	if len(es[1].Msg) != 100 || es[1].Flags&ring.FlagTruncated != 0 {
		t.Errorf("100 bytes: msg %d bytes flags %#x, want 100, not truncated", len(es[1].Msg), es[1].Flags)
	}
	if string(es[2].Source) != "big" || len(es[2].Msg) != 100 || es[2].Flags&ring.FlagTruncated == 0 {
		t.Errorf("100 KiB: source %q msg %d bytes flags %#x", es[2].Source, len(es[2].Msg), es[2].Flags)
	}
	if st := s.Stats(); st.Truncated != 2 || st.Received != 3 {
		t.Errorf("stats %+v", st)
	}
}

// TestServeOversizedDatagram: beyond MaxDatagram the kernel cuts the
// datagram; the entry keeps what fitted and says so.
func TestServeOversizedDatagram(t *testing.T) {
	col := newCollector()
	s := serve(t, Config{}, col)
	big := append([]byte("<13>Nov 22 04:00:00 big[5]: "), bytes.Repeat([]byte("x"), 2*MaxDatagram)...)
	sendRaw(t, s.Addr(), nil, big, []byte("<13>after: ok"))
	es := col.wait(t, 2)
	if string(es[0].Source) != "big" || es[0].PID != 5 || es[0].Flags&ring.FlagTruncated == 0 ||
		len(es[0].Msg) != MaxDatagram-len("<13>Nov 22 04:00:00 big[5]: ") {
		t.Errorf("oversized: source %q pid %d msg %d bytes flags %#x", es[0].Source, es[0].PID, len(es[0].Msg), es[0].Flags)
	}
	if string(es[1].Msg) != "ok" || es[1].Flags&ring.FlagTruncated != 0 {
		t.Errorf("next datagram: %q flags %#x", es[1].Msg, es[1].Flags)
	}
	if st := s.Stats(); st.Truncated != 1 {
		t.Errorf("stats %+v", st)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// TestServePassedFDsClosed: file descriptors sent to /dev/log are closed,
// not leaked, and the message is still logged.
func TestServePassedFDsClosed(t *testing.T) {
	col := newCollector()
	s := serve(t, Config{}, col)
	f1, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f2, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	before := countFDs(t)
	sendRaw(t, s.Addr(), unix.UnixRights(int(f1.Fd()), int(f2.Fd())), []byte("<13>fd: with fds"))
	es := col.wait(t, 1)
	if string(es[0].Msg) != "with fds" {
		t.Errorf("msg %q", es[0].Msg)
	}
	if after := countFDs(t); after != before {
		t.Errorf("%d open fds after, %d before: passed fds leaked", after, before)
	}
	if st := s.Stats(); st.FDsClosed != 2 {
		t.Errorf("FDsClosed %d, want 2", st.FDsClosed)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Config{Path: file}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: err %v, want 'not a socket'", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("regular file changed: %q %v", b, err)
	}
	if _, err := Listen(Config{Path: dir}); err == nil {
		t.Error("directory: no error")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("directory: %v", err)
	}
	if _, err := Listen(Config{}); err == nil {
		t.Error("empty path: no error")
	}
	if _, err := Listen(Config{Path: filepath.Join(dir, "missing", "log")}); err == nil {
		t.Error("missing directory: no error")
	}
}

func TestListenStaleAndLiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	// A stale socket: bound, then its owner went away without removing it.
	old, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not there: %v", err)
	}
	s, err := Listen(Config{Path: path})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	defer s.Close()
	// A live one is not taken over.
	if _, err := Listen(Config{Path: path}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("live socket: err %v, want 'in use'", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("live socket removed by the failed Listen: %v", err)
	}
}

func TestPermAndClose(t *testing.T) {
	old := unix.Umask(0o077) // the mode must not depend on the umask
	defer unix.Umask(old)
	for _, perm := range []os.FileMode{0, 0o600} {
		path := filepath.Join(t.TempDir(), "log")
		s, err := Listen(Config{Path: path, Perm: perm})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		want := perm
		if want == 0 {
			want = 0o666
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != want {
			t.Errorf("mode %v, want socket %v", fi.Mode(), want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close: %v, want the socket removed", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
}

// TestCloseKeepsReplacement: Close removes only the socket it created.
func TestCloseKeepsReplacement(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	s, err := Listen(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("someone else's file removed: %v", err)
	}
}

func TestServeStops(t *testing.T) {
	s, err := Listen(Config{Path: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	// Cancel.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, col) }()
	time.Sleep(20 * time.Millisecond)
	if err := s.Serve(context.Background(), col); err == nil {
		t.Error("second concurrent Serve: no error")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	// The same server serves again after a cancel, then stops on Close.
	go func() { done <- s.Serve(context.Background(), col) }()
	sendRaw(t, s.Addr(), nil, []byte("<13>again: yes"))
	col.wait(t, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

// TestServeConcurrentRing: many senders into a real ring; every datagram
// arrives exactly once, in order per sender.
func TestServeConcurrentRing(t *testing.T) {
	const senders, each = 8, 500
	r, err := ring.New(ring.Config{MaxEntries: senders * each, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := serve(t, Config{}, r)
	var wg sync.WaitGroup
	var stop atomic.Bool
	wg.Add(1)
	go func() { // Stats is safe to read meanwhile
		defer wg.Done()
		for !stop.Load() {
			s.Stats()
			time.Sleep(time.Millisecond)
		}
	}()
	var swg sync.WaitGroup
	for i := range senders {
		swg.Add(1)
		go func() {
			defer swg.Done()
			c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.Addr(), Net: "unixgram"})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := range each {
				if _, err := fmt.Fprintf(c, "<14>Nov 22 04:00:00 w%d[%d]: %d", i, 1000+i, j); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	swg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Received < senders*each && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	var b ring.Batch
	first, _ := r.Bounds()
	r.Read(first, &b, 2*senders*each, 64<<20)
	if len(b.Entries) != senders*each || b.Lost != 0 {
		t.Fatalf("%d entries (lost %d), want %d", len(b.Entries), b.Lost, senders*each)
	}
	next := make(map[string]int)
	for _, e := range b.Entries {
		src := string(e.Source)
		if want := fmt.Sprint(next[src]); string(e.Msg) != want {
			t.Fatalf("%s: message %q, want %q", src, e.Msg, want)
		}
		next[src]++
	}
	if st := s.Stats(); st.Received != senders*each || st.Parsed3164 != senders*each {
		t.Errorf("stats %+v", st)
	}
}

// TestGoLogSyslogClient: Go's log/syslog, a real client, on our socket.
func TestGoLogSyslogClient(t *testing.T) {
	col := newCollector()
	s := serve(t, Config{}, col)
	w, err := syslog.Dial("unixgram", s.Addr(), syslog.LOG_WARNING|syslog.LOG_DAEMON, "gotag")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	before := time.Now().Add(-2 * time.Second)
	if err := w.Info("hello from log/syslog"); err != nil {
		t.Fatal(err)
	}
	if err := w.Err("second line\n"); err != nil {
		t.Fatal(err)
	}
	es := col.wait(t, 2)
	for i, want := range []struct {
		msg string
		sev uint8
	}{{"hello from log/syslog", ring.SevInfo}, {"second line", ring.SevErr}} {
		e := es[i]
		if string(e.Source) != "gotag" || string(e.Msg) != want.msg || e.Facility != 3 || e.Severity != want.sev ||
			e.PID != int32(os.Getpid()) || e.Flags != ring.FlagHasPID {
			t.Errorf("entry %d: %q %q %d.%d pid %d flags %#x", i, e.Source, e.Msg, e.Facility, e.Severity, e.PID, e.Flags)
		}
		if e.OrigTime < before.Truncate(time.Second).UnixNano() || e.OrigTime > time.Now().UnixNano() {
			t.Errorf("entry %d: orig time %v, want about now", i, time.Unix(0, e.OrigTime))
		}
	}
}

// TestUtilLinuxLogger: util-linux logger(1) in its three formats.
func TestUtilLinuxLogger(t *testing.T) {
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger (util-linux) not installed")
	}
	if out, err := exec.Command(logger, "--help").CombinedOutput(); err != nil || !bytes.Contains(out, []byte("--rfc5424")) {
		t.Skip("logger is not util-linux's")
	}
	col := newCollector()
	s := serve(t, Config{}, col)
	args := [][]string{
		{"--rfc3164", "-t", "ul3164", "-p", "local0.err", "--id=4242", "three one six four"},
		{"--rfc5424", "-t", "ul5424", "-p", "daemon.info", "--id=4343", "--sd-id", "zoo@123", "--sd-param", `tiger="hungry"`, "five four two four"},
		{"-t", "uldefault", "default format"},
	}
	for _, a := range args {
		cmd := exec.Command(logger, append([]string{"-d", "-u", s.Addr(), "--socket-errors=on"}, a...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("logger %q: %v: %s", a, err, out)
		}
	}
	es := col.wait(t, len(args))
	check := func(e ring.Entry, src, msg string, fac, sev uint8, pid int32) {
		t.Helper()
		if string(e.Source) != src || string(e.Msg) != msg || e.Facility != fac || e.Severity != sev ||
			(pid != 0 && e.PID != pid) || e.Flags&ring.FlagRaw != 0 || e.OrigTime == 0 {
			t.Errorf("got %q %q %d.%d pid %d flags %#x orig %d; want %q %q %d.%d pid %d",
				e.Source, e.Msg, e.Facility, e.Severity, e.PID, e.Flags, e.OrigTime, src, msg, fac, sev, pid)
		}
	}
	check(es[0], "ul3164", "three one six four", 16, 3, 4242)
	check(es[1], "ul5424", "five four two four", 3, 6, 4343)
	if !bytes.Contains(es[1].SD, []byte(`[zoo@123 tiger="hungry"]`)) {
		t.Errorf("5424 SD %q", es[1].SD)
	}
	check(es[2], "uldefault", "default format", 1, 5, 0)
}

// runWithDevLog runs a command that logs to the hard-wired /dev/log in a
// private mount namespace whose /dev is a tmpfs with /dev/log a symlink to
// path: the host's /dev/log is never touched.
func runWithDevLog(t *testing.T, path string, argv ...string) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and unshare(1) for a private /dev/log")
	}
	script := `mount -t tmpfs lklog-test /dev && ln -s "$0" /dev/log && exec "$@"`
	cmd := exec.Command(unshare, append([]string{"--mount", "--propagation", "private", "sh", "-c", script, path}, argv...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot run with a private /dev/log: %v: %s", err, out)
	}
}

// TestGlibcSyslog: glibc's syslog(3), through Python's syslog module.
func TestGlibcSyslog(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	col := newCollector()
	s := serve(t, Config{}, col)
	prog := `import syslog, os
syslog.openlog("pytag", syslog.LOG_PID, syslog.LOG_LOCAL1)
syslog.syslog(syslog.LOG_ERR, "from glibc syslog(3)")
print(os.getpid())`
	runWithDevLog(t, s.Addr(), python, "-c", prog)
	es := col.wait(t, 1)
	e := es[0]
	if string(e.Source) != "pytag" || string(e.Msg) != "from glibc syslog(3)" || e.Facility != 17 || e.Severity != 3 ||
		e.Flags != ring.FlagHasPID || e.PID <= 0 || e.OrigTime == 0 {
		t.Errorf("got %q %q %d.%d pid %d flags %#x orig %d", e.Source, e.Msg, e.Facility, e.Severity, e.PID, e.Flags, e.OrigTime)
	}
}

// TestBusyboxLogger: busybox logger, if busybox is installed.
func TestBusyboxLogger(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed")
	}
	col := newCollector()
	s := serve(t, Config{}, col)
	runWithDevLog(t, s.Addr(), bb, "logger", "-t", "bbtag", "-p", "user.warn", "from busybox logger")
	e := col.wait(t, 1)[0]
	if string(e.Source) != "bbtag" || string(e.Msg) != "from busybox logger" || e.Facility != 1 || e.Severity != 4 || e.OrigTime == 0 {
		t.Errorf("got %q %q %d.%d pid %d flags %#x", e.Source, e.Msg, e.Facility, e.Severity, e.PID, e.Flags)
	}
}

// countSink counts entries and signals when it has seen target of them.
type countSink struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
	calls  atomic.Int64
}

func (c *countSink) Append(es ...ring.Entry) uint64 {
	c.calls.Add(1)
	if c.n.Add(int64(len(es))) >= c.target && c.target > 0 {
		select {
		case c.done <- struct{}{}:
		default:
		}
	}
	return 0
}

// BenchmarkServe measures datagrams/s through the socket (one sender,
// glibc format, ~80-byte messages) into a sink or a real ring. allocs/op
// is per datagram, sender included.
func BenchmarkServe(b *testing.B) {
	msg := []byte("<30>Nov 22 04:00:00 dhcpcd[123]: eth0: carrier acquired, link is up and running fine")
	for _, mode := range []string{"count", "ring"} {
		b.Run(mode, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "log")
			s, err := Listen(Config{Path: path})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			cs := &countSink{target: int64(b.N), done: make(chan struct{}, 1)}
			var sink Sink = cs
			if mode == "ring" {
				r, err := ring.New(ring.Config{MaxEntries: 5000, MaxBytes: 5000 * 1024})
				if err != nil {
					b.Fatal(err)
				}
				sink = multiSink{r, cs}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go s.Serve(ctx, sink)
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(fd)
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				if _, err := unix.Write(fd, msg); err != nil {
					b.Fatal(err)
				}
			}
			<-cs.done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
			b.ReportMetric(float64(b.N)/float64(cs.calls.Load()), "datagrams/append")
		})
	}
}

type multiSink struct {
	r *ring.Ring
	c *countSink
}

func (m multiSink) Append(es ...ring.Entry) uint64 {
	m.r.Append(es...)
	return m.c.Append(es...)
}
