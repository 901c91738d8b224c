// Package testutil holds helpers for the integration tests of memlogd and
// logread: it builds the real binaries once, starts memlogd on sockets in a
// temporary directory, passes descriptors to it the way LinuxKit's init
// does, and reads its query socket. Every wait is bounded.
package testutil

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var bins struct {
	memlogd string
	logread string
}

// BinEnv names the environment variable that, when set, holds a directory
// of already built binaries that Build returns instead of building: a test
// that runs its own test binary again in a child process passes its
// parent's directory this way.
const BinEnv = "LKLOG_TEST_BIN"

// built is the one directory Build puts binaries in, per test binary.
var built struct {
	mu   sync.Mutex
	dir  string
	root string
	err  error           // sticky: a failed build fails every later Build
	have map[string]bool // names built into dir
}

// Build builds the commands ./pkg/*/cmd/<name> of the module (each once
// per test binary, with CGO_ENABLED=0) into one temporary directory and
// returns it. The directory is removed when Run or BuildAndRun returns,
// so a package whose tests call Build calls one of them from TestMain.
func Build(t testing.TB, names ...string) (dir string) {
	t.Helper()
	dir, err := build(names...)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Bin builds the command name (see Build) and returns its path.
func Bin(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(Build(t, name), name)
}

func build(names ...string) (string, error) {
	if d := os.Getenv(BinEnv); d != "" {
		return d, nil
	}
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.err != nil {
		return "", built.err
	}
	if built.dir == "" {
		root, err := moduleRoot()
		if err != nil {
			built.err = fmt.Errorf("testutil: %w", err)
			return "", built.err
		}
		dir, err := os.MkdirTemp("", "lklog-bin-")
		if err != nil {
			built.err = fmt.Errorf("testutil: %w", err)
			return "", built.err
		}
		built.root, built.dir, built.have = root, dir, map[string]bool{}
	}
	var pkgs, todo []string
	for _, n := range names {
		if built.have[n] || slices.Contains(todo, n) {
			continue
		}
		m, err := filepath.Glob(filepath.Join(built.root, "pkg", "*", "cmd", n))
		if err != nil || len(m) != 1 {
			built.err = fmt.Errorf("testutil: command %q: want one pkg/*/cmd/%s, found %q (%v)", n, n, m, err)
			return "", built.err
		}
		rel, err := filepath.Rel(built.root, m[0])
		if err != nil {
			built.err = fmt.Errorf("testutil: %w", err)
			return "", built.err
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(rel))
		todo = append(todo, n)
	}
	if len(pkgs) == 0 {
		return built.dir, nil
	}
	cmd := exec.Command("go", append([]string{"build", "-o", built.dir + "/"}, pkgs...)...)
	cmd.Dir = built.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		built.err = fmt.Errorf("testutil: go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
		return "", built.err
	}
	for _, n := range todo {
		built.have[n] = true
	}
	return built.dir, nil
}

// Run runs the tests and removes the directory Build made. Call it from
// TestMain.
func Run(m *testing.M) int {
	code := m.Run()
	removeBuilt()
	return code
}

func removeBuilt() {
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// BuildAndRun builds memlogd and logread, runs the tests and removes the
// binaries (see Run). Call it from TestMain.
func BuildAndRun(m *testing.M) int {
	dir, err := build("memlogd", "logread")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		removeBuilt()
		return 1
	}
	bins.memlogd = filepath.Join(dir, "memlogd")
	bins.logread = filepath.Join(dir, "logread")
	return Run(m)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a module")
	}
	return filepath.Dir(mod), nil
}

// MemlogdBin and LogreadBin are the paths of the built binaries.
func MemlogdBin() string { return bins.memlogd }
func LogreadBin() string { return bins.logread }

// Buffer is a goroutine-safe bytes.Buffer for a process's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Proc is a started process whose stdout and stderr go to one Buffer.
type Proc struct {
	Cmd *exec.Cmd
	Out *Buffer

	done chan struct{}
}

// StartProc starts bin with args. At the end of the test the process is
// killed (see Stop) if it is still running.
func StartProc(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(bin, args...), Out: &Buffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Stop(t, syscall.SIGKILL) })
	return p
}

// Output returns what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.Out.String() }

// Done is closed once the process has exited and its output is collected.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// SignalWait sends sig (unless the process has exited) and waits up to
// timeout for it to exit; if it does not, it kills the process, waits and
// returns false.
func (p *Proc) SignalWait(sig syscall.Signal, timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

// Stop signals the process and waits for it (at most 10 s, after which it
// is killed and the test marked failed).
func (p *Proc) Stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if !p.SignalWait(sig, 10*time.Second) {
		t.Errorf("%s did not stop within 10 s of %v", p.Cmd.Path, sig)
	}
}

// Eventually polls cond every few milliseconds until it holds or timeout
// passes; it reports whether it held.
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Daemon is one memlogd process under test.
type Daemon struct {
	t      testing.TB
	Dir    string
	Log    string // log socket path
	Query  string // query socket path
	Syslog string // syslog socket path ("" if disabled)
	Cmd    *exec.Cmd
	Stdout *Buffer // nil if Options.Stdout was given
	Stderr *Buffer

	done    chan struct{}
	waitErr error
	keep    []*os.File // descriptors kept open as LinuxKit's init keeps them
	keepMu  sync.Mutex
}

// Options change how Start runs memlogd.
type Options struct {
	Args   []string // appended after the defaults, so they override them
	Syslog bool     // bind a syslog socket in the temporary directory
	Stdout *os.File // memlogd's stdout (default: a Buffer)
}

// Start runs memlogd with its sockets in a new temporary directory and
// -console=false, and waits until its query socket answers. It is stopped
// at the end of the test.
func Start(t testing.TB, args ...string) *Daemon {
	return StartWith(t, Options{Args: args})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Daemon {
	t.Helper()
	dir := ShortTempDir(t)
	d := &Daemon{
		t: t, Dir: dir,
		Log:   filepath.Join(dir, "log.sock"),
		Query: filepath.Join(dir, "q.sock"),
		done:  make(chan struct{}),
	}
	args := []string{"-socket-log", d.Log, "-socket-query", d.Query, "-console=false"}
	if o.Syslog {
		d.Syslog = filepath.Join(dir, "syslog.sock")
	}
	args = append(args, "-socket-syslog="+d.Syslog)
	args = append(args, o.Args...)
	d.Cmd = exec.Command(MemlogdBin(), args...)
	d.Stderr = &Buffer{}
	d.Cmd.Stderr = d.Stderr
	if o.Stdout != nil {
		d.Cmd.Stdout = o.Stdout
	} else {
		d.Stdout = &Buffer{}
		d.Cmd.Stdout = d.Stdout
	}
	if err := d.Cmd.Start(); err != nil {
		t.Fatalf("starting memlogd: %v", err)
	}
	go func() {
		d.waitErr = d.Cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			d.Cmd.Process.Kill()
			<-d.done
			t.Errorf("memlogd did not exit within 10 s of SIGTERM")
		}
		d.keepMu.Lock()
		for _, f := range d.keep {
			f.Close()
		}
		d.keepMu.Unlock()
	})
	ok := Eventually(10*time.Second, func() bool {
		select {
		case <-d.done:
			return true
		default:
		}
		// A connect succeeds as soon as the listener exists, before
		// memlogd has finished binding its other sockets; an answer
		// comes only once it serves.
		c, err := net.Dial("unix", d.Query)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("{\"mode\":\"dump\",\"tail\":1}\n")); err != nil {
			return false
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		return err == nil && strings.HasPrefix(line, `{"type":"hello"`)
	})
	select {
	case <-d.done:
		t.Fatalf("memlogd exited at start: %v; stderr:\n%s", d.waitErr, d.Stderr)
	default:
	}
	if !ok {
		t.Fatalf("memlogd's query socket did not appear within 10 s; stderr:\n%s", d.Stderr)
	}
	return d
}

// ShortTempDir is t.TempDir, or a shorter directory under /tmp when the
// path would be too long for a unix socket address.
func ShortTempDir(t testing.TB) string {
	dir := t.TempDir()
	if len(dir) < 60 {
		return dir
	}
	d, err := os.MkdirTemp("", "lk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// ServeUnix listens on the unix stream socket path and runs handle for
// each connection in its own goroutine: a stand-in server. The listener
// and every connection it accepted (handled or still held open) are
// closed when the test ends.
func ServeUnix(t testing.TB, path string, handle func(net.Conn)) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go handle(c)
		}
	}()
}

// PID is memlogd's process id.
func (d *Daemon) PID() int { return d.Cmd.Process.Pid }

// Stop sends SIGTERM and returns the exit status (failing the test if it
// does not exit within 10 s).
func (d *Daemon) Stop() int {
	d.t.Helper()
	d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.t.Fatalf("memlogd did not exit within 10 s of SIGTERM")
	}
	return d.Cmd.ProcessState.ExitCode()
}

// Exited reports whether memlogd has exited.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// SendFDs sends a datagram with payload name and fds to the log socket.
func SendFDs(t testing.TB, path string, name []byte, fds ...int) {
	t.Helper()
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(s, name, oob, &unix.SockaddrUnix{Name: path}, 0); err != nil {
		t.Fatalf("sendmsg to %s: %v", path, err)
	}
}

// Socketpair passes one end of a new socketpair to memlogd under name, as
// LinuxKit's init does for onboot containers (keeping its own copy of the
// passed end open until the test ends), and returns the other end, the
// container's stdout.
func (d *Daemon) Socketpair(name string) *os.File {
	d.t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	passed := os.NewFile(uintptr(fds[0]), "passed")
	w := os.NewFile(uintptr(fds[1]), name)
	SendFDs(d.t, d.Log, []byte(name), fds[0])
	d.keepMu.Lock()
	d.keep = append(d.keep, passed)
	d.keepMu.Unlock()
	d.t.Cleanup(func() { w.Close() })
	return w
}

// FIFO makes a FIFO as LinuxKit's init does for services: it opens the
// read end O_RDONLY|O_NONBLOCK, opens the write end (the service's stdout,
// which containerd opens before init's blocking open of the read end
// returns, so a writer always exists when init passes the read end),
// passes the read end to memlogd under name, closes its copy and returns
// the write end.
func (d *Daemon) FIFO(name string) *os.File {
	d.t.Helper()
	p := filepath.Join(d.Dir, strings.ReplaceAll(name, "/", "_")+".log")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		d.t.Fatal(err)
	}
	rfd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		d.t.Fatal(err)
	}
	SendFDs(d.t, d.Log, []byte(name), rfd)
	unix.Close(rfd)
	d.t.Cleanup(func() { w.Close() })
	return w
}

// Record is one decoded reply line of either protocol.
type Record struct {
	Type      string    `json:"type"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Source    string    `json:"source"`
	Msg       string    `json:"msg"`
	Facility  *int      `json:"facility"`
	Severity  *int      `json:"severity"`
	PID       *int      `json:"pid"`
	TS        string    `json:"ts"`
	SD        string    `json:"sd"`
	Truncated bool      `json:"truncated"`
	Partial   bool      `json:"partial"`
	Raw       bool      `json:"raw"`
	Instance  string    `json:"instance"`
	Boot      string    `json:"boot"`
	First     uint64    `json:"first"`
	Next      uint64    `json:"next"`
	Resumed   bool      `json:"resumed"`
	Lost      uint64    `json:"lost"`
	Error     string    `json:"error"`

	Line []byte `json:"-"` // the line as received, without its newline
}

// Conn is one query connection.
type Conn struct {
	t  testing.TB
	C  *net.UnixConn
	BR *bufio.Reader
}

// Dial connects to a query socket and sends req as is.
func Dial(t testing.TB, path string, req []byte) *Conn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatalf("connecting to %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	if len(req) > 0 {
		if _, err := c.Write(req); err != nil {
			t.Fatalf("sending request: %v", err)
		}
	}
	return &Conn{t: t, C: c, BR: bufio.NewReaderSize(c, 1<<20)}
}

// Request dials and sends an extended request (a JSON object, without
// the newline).
func Request(t testing.TB, path, req string) *Conn {
	t.Helper()
	return Dial(t, path, []byte(req+"\n"))
}

// Close closes the connection.
func (c *Conn) Close() { c.C.Close() }

// Line reads one line (without its newline) within timeout.
func (c *Conn) Line(timeout time.Duration) ([]byte, error) {
	c.C.SetReadDeadline(time.Now().Add(timeout))
	line, err := c.BR.ReadBytes('\n')
	if err != nil {
		return line, err
	}
	return line[:len(line)-1], nil
}

// Next reads and decodes one line within timeout, failing the test on an
// error.
func (c *Conn) Next(timeout time.Duration) Record {
	c.t.Helper()
	line, err := c.Line(timeout)
	if err != nil {
		c.t.Fatalf("reading reply: %v (partial line %q)", err, line)
	}
	return Decode(c.t, line)
}

// Decode decodes one reply line.
func Decode(t testing.TB, line []byte) Record {
	t.Helper()
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("reply line is not valid JSON: %v: %q", err, line)
	}
	r.Line = append([]byte(nil), line...)
	return r
}

// ReadAll reads lines until EOF (or an "end" record for extended replies,
// which is included), all within timeout.
func (c *Conn) ReadAll(timeout time.Duration) []Record {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var recs []Record
	for {
		line, err := c.Line(time.Until(deadline))
		if err != nil {
			if len(line) == 0 && errors.Is(err, io.EOF) {
				return recs
			}
			c.t.Fatalf("reading reply after %d records: %v (partial %q)", len(recs), err, line)
		}
		r := Decode(c.t, line)
		recs = append(recs, r)
		if r.Type == "end" || r.Type == "error" {
			return recs
		}
	}
}

// Dump returns the entries (and gap records) of an extended dump with the
// given extra request fields, e.g. `"sources":["x"]`, and the hello.
func Dump(t testing.TB, path, extra string) (hello Record, recs []Record) {
	t.Helper()
	req := `{"mode":"dump"`
	if extra != "" {
		req += "," + extra
	}
	req += "}"
	c := Request(t, path, req)
	defer c.Close()
	all := c.ReadAll(10 * time.Second)
	if len(all) == 0 || all[0].Type != "hello" {
		t.Fatalf("dump %s: reply does not start with hello: %+v", req, all)
	}
	last := all[len(all)-1]
	if last.Type != "end" {
		t.Fatalf("dump %s: reply does not finish with end: %s", req, last.Line)
	}
	if last.Seq != all[0].Next && extra == "" {
		t.Errorf("dump: end seq %d, hello next %d", last.Seq, all[0].Next)
	}
	return all[0], all[1 : len(all)-1]
}

// Msgs returns the messages of entries from source.
func Msgs(recs []Record, source string) []string {
	var out []string
	for _, r := range recs {
		if r.Type == "" && r.Source == source {
			out = append(out, r.Msg)
		}
	}
	return out
}

// WaitMsg waits (up to timeout) until an entry from source with message
// msg is in memlogd's ring, and returns the dump that shows it.
func WaitMsg(t testing.TB, path, source, msg string, timeout time.Duration) []Record {
	t.Helper()
	var recs []Record
	if !Eventually(timeout, func() bool {
		_, recs = Dump(t, path, "")
		for _, r := range recs {
			if r.Source == source && r.Msg == msg {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no entry %q from %q within %v; ring holds %d entries, last %s", msg, source, timeout, len(recs), lastLine(recs))
	}
	return recs
}

// WaitMsgContaining waits until an entry from source whose message
// contains sub is in the ring and returns it.
func WaitMsgContaining(t testing.TB, path, source, sub string, timeout time.Duration) Record {
	t.Helper()
	var found Record
	var recs []Record
	if !Eventually(timeout, func() bool {
		_, recs = Dump(t, path, "")
		for _, r := range recs {
			if r.Source == source && strings.Contains(r.Msg, sub) {
				found = r
				return true
			}
		}
		return false
	}) {
		var mine []string
		for _, r := range recs {
			if r.Source == source {
				mine = append(mine, r.Msg)
			}
		}
		t.Fatalf("no entry from %q containing %q within %v; %q entries: %q", source, sub, timeout, source, mine)
	}
	return found
}

func lastLine(recs []Record) string {
	if len(recs) == 0 {
		return "(none)"
	}
	return string(recs[len(recs)-1].Line)
}

// CountFDs counts the open descriptors of process pid.
func CountFDs(t testing.TB, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// StatusKB returns a field of /proc/PID/status in KiB (e.g. "VmHWM").
func StatusKB(t testing.TB, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("%s: %q: %v", field, l, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
