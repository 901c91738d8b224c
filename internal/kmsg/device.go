package kmsg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultPath is the kernel log device.
const DefaultPath = "/dev/kmsg"

// MaxRecord is the buffer size a read of /dev/kmsg needs: the kernel
// refuses (EINVAL) a buffer smaller than the record it would return, and
// a record (header, at most 1 KiB of text escaped up to four times, and
// its dictionary) fits in 8 KiB on every kernel since 3.5. Twice that is
// kept for safety.
const MaxRecord = 16 << 10

// Whence values for Device.Seek.
const (
	// SeekEnd skips every record the kernel holds: reading continues
	// with the next record written.
	SeekEnd = unix.SEEK_END
	// SeekData goes to the first record after the last clear of the
	// kernel log (dmesg -c, syslog(SYSLOG_ACTION_CLEAR)).
	SeekData = unix.SEEK_DATA
	// SeekStart goes to the oldest record the kernel holds (where a
	// newly opened device starts).
	SeekStart = unix.SEEK_SET
)

// Device is a source of kernel log records with /dev/kmsg's semantics.
type Device interface {
	// Read reads one whole record into p (at least MaxRecord bytes).
	// It does not block: with no record available it returns an error
	// that is unix.EAGAIN. When records were overwritten before they
	// were read it returns unix.EPIPE once, and the next Read returns
	// the oldest record still held.
	Read(p []byte) (int, error)
	// Wait blocks until a record may be available to Read, or ctx is
	// done (it then returns ctx's error).
	Wait(ctx context.Context) error
	// Seek moves to SeekStart, SeekEnd or SeekData.
	Seek(whence int) error
	// Close releases the device.
	Close() error
}

// ErrNoDevice is wrapped by Open's error when the device does not exist.
var ErrNoDevice = errors.New("kernel log device missing")

// ErrPermission is wrapped by Open's error when opening is not allowed.
var ErrPermission = errors.New("not allowed to read the kernel log")

// file is the real /dev/kmsg, opened non-blocking and read through Go's
// poller: Wait parks in the runtime's epoll, not in a blocked read(), so
// a context cancel ends it at once.
type file struct {
	f  *os.File
	rc interface {
		Read(func(fd uintptr) bool) error
		Control(func(fd uintptr)) error
	}
}

// Open opens a /dev/kmsg-like device at path for reading. A missing
// device or a missing capability gives an error that names what is
// missing and wraps ErrNoDevice or ErrPermission.
func Open(path string) (Device, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("%w: %s does not exist (no devtmpfs on /dev, or the container does not bind the device: add %s, char 1:11, to the image's devices/binds): %v",
				ErrNoDevice, path, path, err)
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("%w: opening %s needs CAP_SYSLOG when /proc/sys/kernel/dmesg_restrict is 1 (it is %s), and read permission on the device: add CAP_SYSLOG to the service's capabilities: %v",
				ErrPermission, path, dmesgRestrict(), err)
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Check the poller took the descriptor: otherwise Wait could not be
	// cancelled.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not pollable (is it /dev/kmsg?): %w", path, err)
	}
	return &file{f: f, rc: rc}, nil
}

func dmesgRestrict() string {
	b, err := os.ReadFile("/proc/sys/kernel/dmesg_restrict")
	if err != nil {
		return "unreadable"
	}
	return string(trimSpace(b))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// Read does one non-blocking read().
func (d *file) Read(p []byte) (int, error) {
	var n int
	var rerr error
	err := d.rc.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Read(int(fd), p)
			if rerr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Wait waits in Go's poller for the descriptor to become readable.
func (d *file) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.f.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("waiting for kernel log records: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { d.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	first := true
	err := d.rc.Read(func(uintptr) bool {
		if first {
			// Report "not ready" once so that the poller waits for
			// readability; the caller's Read does the actual read.
			first = false
			return false
		}
		return true
	})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		return fmt.Errorf("waiting for kernel log records: %w", err)
	}
	return nil
}

func (d *file) Seek(whence int) error {
	var serr error
	err := d.rc.Control(func(fd uintptr) {
		_, serr = unix.Seek(int(fd), 0, whence)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("seeking %s (whence %d): %w", d.f.Name(), whence, err)
	}
	return nil
}

func (d *file) Close() error { return d.f.Close() }
