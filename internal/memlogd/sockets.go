package memlogd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/lklog/lklog/internal/sockfile"
)

// withUmask runs bind under a umask that gives the new socket file mode
// at once, so that it is never reachable with wider permissions. (The
// umask is per process: memlogd binds its sockets before anything else
// creates files.) The chmod after it stays, for modes a umask cannot give.
func withUmask(mode os.FileMode, bind func() error) error {
	old := syscall.Umask(int(0o777 &^ mode.Perm()))
	defer syscall.Umask(old)
	return bind()
}

// listenDatagram binds a unix datagram socket at path with permissions mode.
func listenDatagram(path string, mode os.FileMode) (*net.UnixConn, *sockfile.File, error) {
	var c *net.UnixConn
	f, err := bindAt(path, "unixgram", mode, func() (err error) {
		c, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		return err
	}, func() { c.Close() })
	if err != nil {
		return nil, nil, err
	}
	return c, f, nil
}

// listenStream binds a unix stream listener at path with permissions mode.
func listenStream(path string, mode os.FileMode) (*net.UnixListener, *sockfile.File, error) {
	var l *net.UnixListener
	f, err := bindAt(path, "unix", mode, func() (err error) {
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err == nil {
			l.SetUnlinkOnClose(false)
		}
		return err
	}, func() { l.Close() })
	if err != nil {
		return nil, nil, err
	}
	return l, f, nil
}

// bindAt makes path's directory, replaces a stale socket there (a live
// one, or any other file, is an error) and binds with mode; closeIt
// undoes a bind that then fails.
func bindAt(path, network string, mode os.FileMode, bind func() error, closeIt func()) (*sockfile.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("binding %s: %w", path, err)
	}
	f, err := sockfile.Bind(path, network, func() error { return withUmask(mode, bind) })
	if err != nil {
		return nil, fmt.Errorf("binding %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		f.Remove()
		closeIt()
		return nil, fmt.Errorf("binding %s: %w", path, err)
	}
	return f, nil
}

// inheritedDatagram wraps an inherited fd as a datagram socket.
func inheritedDatagram(fd int, what string) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), what)
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("using fd %d as the %s: %w", fd, what, err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("using fd %d as the %s: not a unix socket", fd, what)
	}
	return uc, nil
}

// inheritedListener wraps an inherited fd as a stream listener.
func inheritedListener(fd int, what string) (*net.UnixListener, error) {
	f := os.NewFile(uintptr(fd), what)
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("using fd %d as the %s: %w", fd, what, err)
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("using fd %d as the %s: not a unix socket", fd, what)
	}
	ul.SetUnlinkOnClose(false)
	return ul, nil
}

// socketPath returns the path a unix socket is bound to ("" if none).
func socketPath(a net.Addr) string {
	if ua, ok := a.(*net.UnixAddr); ok && ua != nil && ua.Name != "" && ua.Name[0] != '@' {
		return ua.Name
	}
	return ""
}

// adopt records the socket file of an inherited socket as this process's
// to remove at exit: nil if it has none, or if its path holds no socket
// any more (then there is nothing of ours to remove).
func adopt(a net.Addr) *sockfile.File {
	p := socketPath(a)
	if p == "" {
		return nil
	}
	f, err := sockfile.Adopt(p)
	if err != nil {
		return nil
	}
	return f
}
