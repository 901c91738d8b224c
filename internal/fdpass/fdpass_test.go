package fdpass

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func listen(t *testing.T) (string, *Receiver, *net.UnixConn) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return path, NewReceiver(c), c
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestSendReceive(t *testing.T) {
	path, r, _ := listen(t)
	p, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer pw.Close()
	q, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := Send(path, "onboot.001-x.out", int(q.Fd()), int(p.Fd())); err != nil {
		t.Fatal(err)
	}
	m, err := r.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Name) != "onboot.001-x.out" || len(m.FDs) != 2 || m.NameTruncated || m.ControlTruncated {
		t.Fatalf("message %+v", m)
	}
	// The received descriptor reads what the sender's pipe carries.
	got := os.NewFile(uintptr(m.FDs[0]), "got")
	defer got.Close()
	unix.Close(m.FDs[1])
	w.Write([]byte("hi\n"))
	w.Close()
	buf := make([]byte, 10)
	n, _ := got.Read(buf)
	if string(buf[:n]) != "hi\n" {
		t.Errorf("read %q", buf[:n])
	}
	if fl, _ := unix.FcntlInt(uintptr(m.FDs[0]), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Error("received fd is not close-on-exec")
	}
}

func TestNoFDAndLongName(t *testing.T) {
	path, r, _ := listen(t)
	if err := Send(path, "lonely"); err != nil {
		t.Fatal(err)
	}
	m, err := r.Receive()
	if err != nil || string(m.Name) != "lonely" || len(m.FDs) != 0 {
		t.Fatalf("%+v %v", m, err)
	}
	long := strings.Repeat("n", MaxName+100)
	if err := Send(path, long, 0); err != nil {
		t.Fatal(err)
	}
	m, err = r.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if !m.NameTruncated || len(m.Name) != MaxName || len(m.FDs) != 1 {
		t.Fatalf("long name: truncated=%v len=%d fds=%d", m.NameTruncated, len(m.Name), len(m.FDs))
	}
	unix.Close(m.FDs[0])
}

func TestTooManyFDsReportedNotLeaked(t *testing.T) {
	path, r, _ := listen(t)
	before := openFDs(t)
	fds := make([]int, MaxFDs+20)
	for i := range fds {
		fds[i] = 0 // stdin, duplicated by the kernel for each slot
	}
	if err := Send(path, "many", fds...); err != nil {
		t.Skipf("kernel refused %d fds in one message: %v", len(fds), err)
	}
	m, err := r.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if !m.ControlTruncated || len(m.FDs) > MaxFDs {
		t.Fatalf("truncated=%v fds=%d", m.ControlTruncated, len(m.FDs))
	}
	for _, fd := range m.FDs {
		unix.Close(fd)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d fds open before, %d after", before, after)
	}
}

func TestReceiveAfterClose(t *testing.T) {
	_, r, c := listen(t)
	c.Close()
	if _, err := r.Receive(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("after close: %v", err)
	}
}

func TestParseRightsMalformed(t *testing.T) {
	bad := unix.UnixRights(3)
	bad[0] = 0xff // cmsg_len far beyond the buffer
	if _, err := parseRights(bad); err == nil {
		t.Error("control message with a bad length parsed")
	}
	fds, err := parseRights(unix.UnixRights(3, 4))
	if err != nil || len(fds) != 2 || fds[0] != 3 || fds[1] != 4 {
		t.Errorf("%v %v", fds, err)
	}
}

func FuzzParseRights(f *testing.F) {
	f.Add(unix.UnixRights(5))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fds, _ := parseRights(b)
		if len(fds) > len(b)/4 {
			t.Fatalf("%d fds from %d bytes", len(fds), len(b))
		}
	})
}
