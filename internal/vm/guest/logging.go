package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Default paths, as in LinuxKit.
const (
	LogSocket = "/var/run/linuxkit-external-logging.sock"
	FIFODir   = "/var/run"
)

// Logger hands output streams to memlogd the way LinuxKit's init does.
type Logger struct {
	Socket  string   // the external logging socket (SOCK_DGRAM)
	FIFODir string   // where service FIFOs are created
	Console *os.File // fallback when external logging is off
	// keep holds init's copies of the socketpair ends passed to memlogd
	// (LinuxKit's init keeps them open too), so they are not closed by
	// the garbage collector.
	keep []*os.File
}

// Enabled reports whether external logging is on: as LinuxKit decides,
// when the log socket path exists.
func (l *Logger) Enabled() bool {
	_, err := os.Stat(l.Socket)
	return err == nil
}

// Send passes fd to the logger under name: one datagram whose payload is
// the name and whose SCM_RIGHTS carry the fd.
func (l *Logger) Send(name string, fd int) error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("log socket: %w", err)
	}
	defer unix.Close(s)
	if err := unix.Sendmsg(s, []byte(name), unix.UnixRights(fd), &unix.SockaddrUnix{Name: l.Socket}, 0); err != nil {
		return fmt.Errorf("sending %q to %s: %w", name, l.Socket, err)
	}
	return nil
}

// Stream returns the file a process writes to for a stream named name
// (e.g. "onboot.000-x.out"): the other end of a socketpair whose first end
// was passed to the logger. The caller closes the returned file once the
// child has it. When logging is off, or passing fails, it returns a
// duplicate of the console and the reason in err (the file is still usable).
func (l *Logger) Stream(name string) (*os.File, error) {
	if !l.Enabled() {
		return l.console()
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		f, _ := l.console()
		return f, fmt.Errorf("socketpair for %s: %w", name, err)
	}
	passed := os.NewFile(uintptr(fds[0]), "log:"+name)
	child := os.NewFile(uintptr(fds[1]), name)
	if err := l.Send(name, fds[0]); err != nil {
		passed.Close()
		child.Close()
		f, _ := l.console()
		return f, err
	}
	l.keep = append(l.keep, passed)
	return child, nil
}

// FIFO creates the FIFO <FIFODir>/<name>.log, passes its read end to the
// logger under name and returns the write end for the process (a service's
// stdout or stderr). Like LinuxKit's init, it does not keep the read end.
func (l *Logger) FIFO(name string) (*os.File, error) {
	if !l.Enabled() {
		return l.console()
	}
	path := filepath.Join(l.FIFODir, name+".log")
	fallback := func(err error) (*os.File, error) {
		f, _ := l.console()
		return f, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fallback(fmt.Errorf("fifo %s: %w", path, err))
	}
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return fallback(fmt.Errorf("mkfifo %s: %w", path, err))
	}
	// Open the read end without blocking (no writer yet), then the write
	// end, then make the read end blocking again for memlogd.
	rfd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fallback(fmt.Errorf("open %s for reading: %w", path, err))
	}
	defer unix.Close(rfd)
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fallback(fmt.Errorf("open %s for writing: %w", path, err))
	}
	if err := unix.SetNonblock(rfd, false); err != nil {
		w.Close()
		return fallback(fmt.Errorf("fifo %s: %w", path, err))
	}
	if err := l.Send(name, rfd); err != nil {
		w.Close()
		return fallback(err)
	}
	return w, nil
}

func (l *Logger) console() (*os.File, error) {
	fd, err := unix.Dup(int(l.Console.Fd()))
	if err != nil {
		// Never hand out the console itself: callers close what they get.
		f, nerr := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if nerr != nil {
			return nil, fmt.Errorf("dup console: %w; %w", err, nerr)
		}
		return f, fmt.Errorf("dup console: %w", err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "console"), nil
}
