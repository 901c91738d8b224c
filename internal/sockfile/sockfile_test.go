package sockfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	if err := RemoveStale(filepath.Join(dir, "missing"), "unix"); err != nil {
		t.Errorf("missing path: %v", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o600)
	if err := RemoveStale(file, "unix"); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Error("regular file removed")
	}
	for _, network := range []string{"unix", "unixgram"} {
		path := filepath.Join(dir, network+".sock")
		var live interface{ Close() error }
		var err error
		if network == "unix" {
			var l *net.UnixListener
			l, err = net.ListenUnix(network, &net.UnixAddr{Name: path, Net: network})
			if l != nil {
				l.SetUnlinkOnClose(false)
			}
			live = l
		} else {
			live, err = net.ListenUnixgram(network, &net.UnixAddr{Name: path, Net: network})
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := RemoveStale(path, network); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("%s live socket: %v", network, err)
		}
		live.Close()
		if err := RemoveStale(path, network); err != nil {
			t.Errorf("%s stale socket: %v", network, err)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s stale socket not removed", network)
		}
	}
}

// TestLiveBusySocketKept: a live stream socket whose accept queue is full
// answers a connect with EAGAIN; it is not stale.
func TestLiveBusySocketKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	// Fill the accept queue (it never accepts).
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	full := false
	for range 64 {
		c, err := net.Dial("unix", path)
		if err != nil {
			if !errors.Is(err, syscall.EAGAIN) {
				t.Fatalf("connect: %v, want EAGAIN once the queue is full", err)
			}
			full = true
			break
		}
		conns = append(conns, c)
	}
	if !full {
		t.Fatal("the accept queue never filled")
	}
	if err := RemoveStale(path, "unix"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("busy live socket: %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("busy live socket removed: %v", err)
	}
}

// TestOtherTypeKept: a datagram socket where a stream socket is about to
// be bound (or the reverse) is some other program's: left alone.
func TestOtherTypeKept(t *testing.T) {
	dir := t.TempDir()
	dg := filepath.Join(dir, "dgram.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: dg, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := RemoveStale(dg, "unix"); err == nil || !strings.Contains(err.Error(), "another type") {
		t.Errorf("datagram socket checked as stream: %v", err)
	}
	st := filepath.Join(dir, "stream.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: st, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := RemoveStale(st, "unixgram"); err == nil || !strings.Contains(err.Error(), "another type") {
		t.Errorf("stream socket checked as datagram: %v", err)
	}
	for _, p := range []string{dg, st} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

// TestConcurrentBind: processes starting at once over a stale socket:
// exactly one binds, and the path is its socket.
func TestConcurrentBind(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.sock")
	for round := range 50 {
		// A stale socket: bound, then closed without removing the file.
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close()

		const n = 4
		var wg sync.WaitGroup
		lns := make([]*net.UnixListener, n)
		files := make([]*File, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var ln *net.UnixListener
				f, err := Bind(path, "unix", func() (err error) {
					ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
					return err
				})
				if err == nil {
					ln.SetUnlinkOnClose(false)
					lns[i], files[i] = ln, f
				}
			}()
		}
		wg.Wait()
		won := -1
		for i, ln := range lns {
			if ln == nil {
				continue
			}
			if won >= 0 {
				t.Fatalf("round %d: both %d and %d bound %s", round, won, i, path)
			}
			won = i
		}
		if won < 0 {
			t.Fatalf("round %d: nobody bound the stale path", round)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("round %d: the winner's socket does not answer: %v", round, err)
		}
		c.Close()
		lns[won].Close()
		if err := files[won].Remove(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemoveKeepsNewerSocket: an older process's Remove leaves alone the
// socket a newer process bound at the same path.
func TestRemoveKeepsNewerSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.sock")
	bind := func() (*File, *net.UnixListener) {
		var l *net.UnixListener
		f, err := Bind(path, "unix", func() (err error) {
			l, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		return f, l
	}
	old, oldL := bind()
	os.Remove(path) // someone deletes the older process's socket file
	newer, newL := bind()
	defer newL.Close()
	// The older process stops: it removes its file, then closes.
	if err := old.Remove(); err != nil {
		t.Fatal(err)
	}
	oldL.Close()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the newer socket was removed by the older process: %v", err)
	}
	c.Close()
	if err := newer.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("own socket not removed: %v", err)
	}
	if err := newer.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}
