// Package fdpass sends and receives named file descriptors over an AF_UNIX
// datagram socket the way LinuxKit's init hands containers' stdout and
// stderr to memlogd: one datagram whose payload is the log name and whose
// SCM_RIGHTS control message carries the descriptors.
package fdpass

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Send sends fds under name to the datagram socket at path. The caller keeps
// its own copies of fds open or closes them, as it likes.
func Send(path, name string, fds ...int) error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sending %q to %s: socket: %w", name, path, err)
	}
	defer unix.Close(s)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(s, []byte(name), oob, &unix.SockaddrUnix{Name: path}, 0); err != nil {
		return fmt.Errorf("sending %q to %s: %w", name, path, err)
	}
	return nil
}

// Buffer sizes of a receiver. Names longer than MaxName are cut; more than
// MaxFDs descriptors in one datagram are lost (the kernel closes the rest)
// and the message is reported as truncated.
const (
	MaxName = 4096
	MaxFDs  = 64
)

// Message is one received datagram.
type Message struct {
	Name []byte
	// FDs holds the received descriptors, close-on-exec. The caller owns
	// them: it must close each one.
	FDs []int
	// NameTruncated is set when the name was longer than MaxName.
	NameTruncated bool
	// ControlTruncated is set when descriptors were lost because the
	// control message did not fit.
	ControlTruncated bool
}

// Receiver reads messages from a bound datagram socket.
type Receiver struct {
	conn *net.UnixConn
	name []byte
	oob  []byte
}

// NewReceiver reads from conn; closing conn stops a Receive in progress.
func NewReceiver(conn *net.UnixConn) *Receiver {
	return &Receiver{
		conn: conn,
		name: make([]byte, MaxName),
		oob:  make([]byte, unix.CmsgSpace(MaxFDs*4)),
	}
}

// Receive waits for one datagram. Descriptors that arrive in control
// messages other than SCM_RIGHTS are ignored; every descriptor received is
// either returned or closed, never leaked. After conn is closed it returns
// an error wrapping net.ErrClosed.
func (r *Receiver) Receive() (Message, error) {
	// The net package asks for MSG_CMSG_CLOEXEC itself on Linux.
	n, oobn, flags, _, err := r.conn.ReadMsgUnix(r.name, r.oob)
	if err != nil {
		return Message{}, fmt.Errorf("receiving from log socket: %w", err)
	}
	m := Message{
		Name:             append([]byte(nil), r.name[:n]...),
		NameTruncated:    flags&unix.MSG_TRUNC != 0,
		ControlTruncated: flags&unix.MSG_CTRUNC != 0,
	}
	fds, perr := parseRights(r.oob[:oobn])
	m.FDs = fds
	if perr != nil {
		m.ControlTruncated = true
	}
	return m, nil
}

// parseRights returns every descriptor in SCM_RIGHTS messages of oob. On a
// malformed buffer it returns what it could parse and an error.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parsing control message: %w", err)
	}
	var fds []int
	var firstErr error
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		// unix.ParseUnixRights indexes past the end of data whose length
		// is not a multiple of 4; read whole descriptors only.
		data := msgs[i].Data
		if len(data)%4 != 0 && firstErr == nil {
			firstErr = fmt.Errorf("parsing SCM_RIGHTS: %d bytes of data is not a whole number of descriptors", len(data))
		}
		for ; len(data) >= 4; data = data[4:] {
			fds = append(fds, int(int32(binary.NativeEndian.Uint32(data))))
		}
	}
	return fds, firstErr
}
