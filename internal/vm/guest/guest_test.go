package guest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeMemlogd receives one fd-passing datagram and returns the name and
// the file.
func receive(t *testing.T, l *net.UnixConn) (string, *os.File) {
	t.Helper()
	if err := l.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := l.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages: %v %v", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v %v", fds, err)
	}
	return string(buf[:n]), os.NewFile(uintptr(fds[0]), "received")
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(f)
		done <- string(b)
	}()
	select {
	case s := <-done:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no EOF on the passed fd")
		return ""
	}
}

func newLogger(t *testing.T) (*Logger, *net.UnixConn) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log.sock")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	console, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { console.Close() })
	return &Logger{Socket: sock, FIFODir: dir, Console: console}, l
}

func TestStreamPassesSocketpair(t *testing.T) {
	lg, l := newLogger(t)
	if !lg.Enabled() {
		t.Fatal("logging not enabled with the socket present")
	}
	w, err := lg.Stream("onboot.000-hello.out")
	if err != nil {
		t.Fatal(err)
	}
	name, r := receive(t, l)
	defer r.Close()
	if name != "onboot.000-hello.out" {
		t.Fatalf("name = %q", name)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(r.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Fatalf("passed fd is not a socket: %v %o", err, st.Mode)
	}
	// A child process writes; after it and we close the write end, the
	// reader sees EOF although init keeps its copy of the passed end.
	cmd := exec.Command("sh", "-c", "echo line one; printf partial")
	cmd.Stdout = w
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := readAll(t, r); got != "line one\npartial" {
		t.Fatalf("read %q", got)
	}
	if len(lg.keep) != 1 {
		t.Fatalf("init keeps %d passed ends, want 1", len(lg.keep))
	}
}

func TestFIFOPassesReadEnd(t *testing.T) {
	lg, l := newLogger(t)
	w, err := lg.FIFO("ticker.out")
	if err != nil {
		t.Fatal(err)
	}
	name, r := receive(t, l)
	defer r.Close()
	if name != "ticker.out" {
		t.Fatalf("name = %q", name)
	}
	st, err := os.Stat(filepath.Join(lg.FIFODir, "ticker.out.log"))
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("fifo: %v %v", st, err)
	}
	flags, err := unix.FcntlInt(r.Fd(), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK != 0 {
		t.Fatalf("passed read end is non-blocking (%#x, %v)", flags, err)
	}
	if _, err := w.WriteString("tick 1\ntick 2\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := readAll(t, r); got != "tick 1\ntick 2\n" {
		t.Fatalf("read %q", got)
	}
}

func TestLoggingOffUsesConsole(t *testing.T) {
	lg, _ := newLogger(t)
	lg.Socket = filepath.Join(t.TempDir(), "absent.sock")
	if lg.Enabled() {
		t.Fatal("enabled without a socket")
	}
	for _, get := range []func(string) (*os.File, error){lg.Stream, lg.FIFO} {
		f, err := get("x")
		if err != nil {
			t.Fatal(err)
		}
		if f == lg.Console {
			t.Fatal("got the console itself (the caller closes it)")
		}
		f.Close()
	}
	if _, err := lg.Console.WriteString("still open\n"); err != nil {
		t.Fatalf("console closed: %v", err)
	}
	if entries, _ := os.ReadDir(lg.FIFODir); len(entries) != 1 { // only log.sock
		t.Fatalf("FIFOs made with logging off: %v", entries)
	}
}

func TestSendToMissingSocketFallsBack(t *testing.T) {
	lg, l := newLogger(t)
	l.Close() // the path exists but nobody listens
	f, err := lg.Stream("onboot.001-x")
	if err == nil {
		t.Fatal("no error when memlogd is gone")
	}
	if f == nil {
		t.Fatal("no fallback file")
	}
	f.Close()
}

func TestReaper(t *testing.T) {
	r := NewReaper()
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		r.Run(ctx)
		close(stopped)
	}()
	// The reaper must be gone before other tests start processes.
	defer func() {
		cancel()
		<-stopped
	}()
	quick, err := r.Start("quick", exec.Command("sh", "-c", "exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	slow, err := r.Start("slow", exec.Command("sleep", "30"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // quick is reaped before anyone waits
	ws, err := quick.Wait(5 * time.Second)
	if err != nil || ws.ExitStatus() != 3 {
		t.Fatalf("quick: %v %v", Describe(ws), err)
	}
	if _, err := slow.Wait(100 * time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("slow: err = %v, want timeout", err)
	}
	slow.Signal(unix.SIGKILL)
	ws, err = slow.Wait(5 * time.Second)
	if err != nil || !ws.Signaled() || ws.Signal() != unix.SIGKILL {
		t.Fatalf("slow after kill: %v %v", Describe(ws), err)
	}
	if _, err := r.Start("bad", &exec.Cmd{Path: "/bin/true", Stdout: &strings.Builder{}}); err == nil {
		t.Fatal("non-file stdout accepted")
	}
}

func TestScanPass(t *testing.T) {
	var out strings.Builder
	if !ScanPass(strings.NewReader("a\nsuite PASSED\r\nb"), &out) || out.String() != "a\nsuite PASSED\r\nb" {
		t.Fatalf("pass not seen or output changed: %q", out.String())
	}
	for _, s := range []string{"suite PASSED?\n", "not suite PASSED\n", ""} {
		if ScanPass(strings.NewReader(s), io.Discard) {
			t.Errorf("%q counted as pass", s)
		}
	}
}

func TestPlanValidate(t *testing.T) {
	good := Plan{Mode: ModeTest, Check: "/test/check.sh", Onboot: []Proc{{Name: "a", Command: []string{"x"}}}}
	if _, err := good.Marshal(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	b, _ := good.Marshal()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := ReadPlan(path); err != nil || p.Onboot[0].Name != "a" {
		t.Fatalf("ReadPlan: %+v %v", p, err)
	}
	for _, bad := range []Plan{
		{Mode: "other"},
		{Mode: ModeTest},
		{Mode: ModeRun, Services: []Proc{{Name: "a"}}},
		{Mode: ModeRun, Onboot: []Proc{{Name: "a", Command: []string{"x"}}}, Services: []Proc{{Name: "a", Command: []string{"y"}}}},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestHasLogwrite(t *testing.T) {
	in := &Init{Plan: &Plan{Services: []Proc{{Name: "hello", Command: []string{"/bin/sh", "-c", "echo logwrite"}}}}}
	if in.hasLogwrite() {
		t.Error("a shell that prints 'logwrite' taken for logwrite")
	}
	in.Plan.Services = append(in.Plan.Services, Proc{Name: "w", Command: []string{"/usr/bin/logwrite", "-log-dir", "/var/log"}})
	if !in.hasLogwrite() {
		t.Error("logwrite not seen")
	}
}
