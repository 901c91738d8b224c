//go:build linux

package syslogd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/lklog/lklog/internal/ring"
	"github.com/lklog/lklog/internal/sockfile"
	"golang.org/x/sys/unix"
)

// Sink receives entries. It must copy what it keeps: the entries' byte
// slices point into the server's receive buffer, which is reused as soon as
// Append returns. *ring.Ring satisfies it.
type Sink interface {
	Append(...ring.Entry) uint64
}

// MaxDatagram is the longest datagram read whole; longer ones are cut to
// this size and their entry is flagged ring.FlagTruncated.
const MaxDatagram = 64 << 10

const (
	// bufSize is the receive buffer shared by one batch of datagrams.
	bufSize = 8 * MaxDatagram
	// maxBatch bounds the datagrams handed to one Sink.Append.
	maxBatch = 256
	// oobSize has room for SCM_CREDENTIALS and a few stray SCM_RIGHTS fds.
	oobSize = 512
)

// Config configures a Server.
type Config struct {
	// Path of the socket, e.g. /dev/log.
	Path string
	// Perm is the socket file's mode; 0 means 0666, so that every
	// program can log.
	Perm os.FileMode
	// MaxMsgLen, if positive, cuts longer messages and flags them
	// ring.FlagTruncated.
	MaxMsgLen int
	// Now returns the time of receipt; nil means time.Now.
	Now func() time.Time
	// Location is the zone of RFC 3164 timestamps, which carry none; nil
	// means time.Local.
	Location *time.Location
}

// Stats counts what a Server received. Every datagram is counted once in
// Received and once in exactly one of Parsed3164, Parsed5424 and Raw.
type Stats struct {
	Received   uint64 // datagrams read
	Parsed3164 uint64 // understood as RFC 3164 / BSD (glibc, musl, busybox)
	Parsed5424 uint64 // understood as RFC 5424
	Raw        uint64 // kept whole, flagged ring.FlagRaw (Empty included)
	Empty      uint64 // empty datagrams (after stripping newlines and NULs)
	Truncated  uint64 // cut at MaxDatagram or MaxMsgLen
	CredPIDs   uint64 // entries whose PID came from SCM_CREDENTIALS
	FDsClosed  uint64 // file descriptors sent to the socket, closed unread
	ReadErrors uint64 // failed reads that Serve survived
}

// Server receives syslog datagrams on a Unix socket and turns each one
// into one ring entry.
type Server struct {
	cfg     Config
	conn    *net.UnixConn
	raw     syscall.RawConn
	created *sockfile.File // the socket file Listen made, to remove on Close

	serving   atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// Receive state, touched only by the goroutine running Serve.
	buf     []byte
	oob     []byte
	dgrams  []dgram
	entries []ring.Entry
	used    int
	rerr    error
	readFn  func(fd uintptr) bool
	iov     unix.Iovec
	msg     unix.Msghdr

	nReceived, n3164, n5424, nRaw, nEmpty, nTruncated, nCredPIDs, nFDsClosed, nReadErrors atomic.Uint64
}

// dgram is one datagram in buf.
type dgram struct {
	off, n int
	pid    int32 // sender's pid from SCM_CREDENTIALS, 0 if none
	trunc  bool
	root   bool // the sender's uid from SCM_CREDENTIALS is 0
}

// Listen binds an AF_UNIX SOCK_DGRAM socket at c.Path and sets its mode.
// An existing socket file is removed first if nobody is listening on it;
// an existing socket in use, or any other kind of file, is an error.
func Listen(c Config) (*Server, error) {
	if c.Path == "" {
		return nil, errors.New("syslogd: listen: empty socket path")
	}
	if c.Perm == 0 {
		c.Perm = 0o666
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	var conn *net.UnixConn
	file, err := sockfile.Bind(c.Path, "unixgram", func() (err error) {
		conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: c.Path, Net: "unixgram"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("syslogd: listen on %s: %w", c.Path, err)
	}
	s, err := New(conn, c)
	if err != nil {
		file.Remove()
		conn.Close()
		return nil, err
	}
	s.created = file
	if err := os.Chmod(c.Path, c.Perm); err != nil {
		file.Remove()
		conn.Close()
		return nil, fmt.Errorf("syslogd: chmod %s to %v: %w", c.Path, c.Perm, err)
	}
	return s, nil
}

// New serves an already bound datagram socket (memlogd binds it itself,
// or inherits it from its -daemonize parent). Close closes conn but
// removes no file: the socket's path belongs to whoever bound it. c.Path
// only names the socket in messages.
func New(conn *net.UnixConn, c Config) (*Server, error) {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	s := &Server{cfg: c, conn: conn}
	var err error
	if s.raw, err = conn.SyscallConn(); err != nil {
		return nil, fmt.Errorf("syslogd: %s: raw conn: %w", c.Path, err)
	}
	var serr error
	if err := s.raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		return nil, fmt.Errorf("syslogd: %s: set SO_PASSCRED: %w", c.Path, errors.Join(err, serr))
	}
	s.buf = make([]byte, bufSize)
	s.oob = make([]byte, oobSize)
	s.dgrams = make([]dgram, 0, maxBatch)
	s.entries = make([]ring.Entry, 0, maxBatch)
	s.readFn = s.recvBatch
	return s, nil
}

// Addr is the socket's path.
func (s *Server) Addr() string { return s.cfg.Path }

// Close closes the socket and removes the socket file, if it is still the
// one Listen created. It is safe to call more than once and concurrently
// with Serve, which then returns nil.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		// Before closing: the open socket keeps its file's inode number,
		// by which the file is told apart, from being reused.
		if err := s.created.Remove(); err != nil {
			s.closeErr = fmt.Errorf("syslogd: %w", err)
		}
		if err := s.conn.Close(); err != nil {
			s.closeErr = errors.Join(s.closeErr, fmt.Errorf("syslogd: close %s: %w", s.cfg.Path, err))
		}
	})
	return s.closeErr
}

// Stats returns the counters so far; safe to call at any time.
func (s *Server) Stats() Stats {
	return Stats{
		Received:   s.nReceived.Load(),
		Parsed3164: s.n3164.Load(),
		Parsed5424: s.n5424.Load(),
		Raw:        s.nRaw.Load(),
		Empty:      s.nEmpty.Load(),
		Truncated:  s.nTruncated.Load(),
		CredPIDs:   s.nCredPIDs.Load(),
		FDsClosed:  s.nFDsClosed.Load(),
		ReadErrors: s.nReadErrors.Load(),
	}
}

// Serve reads datagrams until ctx is done or the server is closed, then
// returns nil. Each datagram becomes exactly one entry; the datagrams
// pending at each wake-up (up to 256) go to sink in one Append. Serve must
// not run twice at once on the same Server. Other errors are returned
// wrapped; a failed read that does not concern the socket itself (ENOBUFS,
// ENOMEM) is counted in Stats.ReadErrors and reading goes on.
func (s *Server) Serve(ctx context.Context, sink Sink) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("syslogd: Serve already running")
	}
	defer s.serving.Store(false)
	if err := s.conn.SetReadDeadline(time.Time{}); err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return fmt.Errorf("syslogd: %s: clear read deadline: %w", s.cfg.Path, err)
	}
	stop := context.AfterFunc(ctx, func() {
		// Wake the blocked read; the loop then sees ctx is done.
		s.conn.SetReadDeadline(time.Unix(1, 0))
	})
	defer stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		s.dgrams = s.dgrams[:0]
		s.used = 0
		s.rerr = nil
		err := s.raw.Read(s.readFn)
		if len(s.dgrams) > 0 {
			s.deliver(sink)
		}
		if err == nil {
			err = s.rerr
		}
		switch {
		case err == nil:
		case ctx.Err() != nil, errors.Is(err, net.ErrClosed):
			return nil
		case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			s.nReadErrors.Add(1)
		default:
			return fmt.Errorf("syslogd: read %s: %w", s.cfg.Path, err)
		}
	}
}

// recvBatch is the syscall.RawConn.Read callback: it reads every pending
// datagram (up to the batch limits) without blocking, and asks to wait for
// readability only if there was none.
func (s *Server) recvBatch(fd uintptr) bool {
	for len(s.dgrams) < maxBatch && len(s.buf)-s.used >= MaxDatagram {
		n, flags, pid, root, errno := s.recvmsg(fd, s.buf[s.used:s.used+MaxDatagram])
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return len(s.dgrams) > 0
		default:
			s.rerr = errno
			return true
		}
		s.dgrams = append(s.dgrams, dgram{off: s.used, n: n, pid: pid, root: root, trunc: flags&unix.MSG_TRUNC != 0})
		s.used += n
	}
	return true
}

// recvmsg reads one datagram into p with a reused msghdr (x/sys/unix's
// Recvmsg allocates the sender's address at every call), and returns its
// length, the msg_flags, the sender's pid from SCM_CREDENTIALS, whether
// its uid there is 0, and the errno. File descriptors passed with it are
// closed.
func (s *Server) recvmsg(fd uintptr, p []byte) (n, flags int, pid int32, root bool, errno unix.Errno) {
	s.iov.Base = &p[0]
	s.iov.SetLen(len(p))
	s.msg = unix.Msghdr{Iov: &s.iov, Control: &s.oob[0]}
	s.msg.SetIovlen(1)
	s.msg.SetControllen(len(s.oob))
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.msg)),
		unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if e != 0 {
		return 0, 0, 0, false, e
	}
	n = int(r)
	if n > len(p) {
		n = len(p)
	}
	pid, root = s.controlMessages(s.oob[:s.msg.Controllen])
	return n, int(s.msg.Flags), pid, root, 0
}

// controlMessages returns the pid in an SCM_CREDENTIALS message and
// whether its uid is 0, and closes every file descriptor of SCM_RIGHTS
// messages: /dev/log takes no fds, and one left open would leak.
func (s *Server) controlMessages(oob []byte) (pid int32, root bool) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		data := oob[hdr:l]
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_CREDENTIALS && len(data) >= unix.SizeofUcred:
			cred := (*unix.Ucred)(unsafe.Pointer(&data[0]))
			pid, root = cred.Pid, cred.Uid == 0
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS:
			for i := 0; i+4 <= len(data); i += 4 {
				fd := *(*int32)(unsafe.Pointer(&data[i]))
				unix.Close(int(fd))
				s.nFDsClosed.Add(1)
			}
		}
		sp := unix.CmsgSpace(l - hdr)
		if sp > len(oob) {
			break
		}
		oob = oob[sp:]
	}
	return pid, root
}

// deliver parses the batch read into s.buf and appends it to sink.
func (s *Server) deliver(sink Sink) {
	now := s.cfg.Now()
	nowNS := now.UnixNano()
	var c3164, c5424, craw, cempty, ctrunc, ccred uint64
	s.entries = s.entries[:0]
	for _, d := range s.dgrams {
		e, f := Parse(s.buf[d.off:d.off+d.n], now, s.cfg.Location)
		if !d.root && f != FormatRaw && Reserved(e.Source) {
			e, f = Unclaimed(s.buf[d.off:d.off+d.n], e), FormatRaw
		}
		e.Time = nowNS
		switch f {
		case Format3164:
			c3164++
		case Format5424:
			c5424++
		default:
			craw++
			if len(e.Msg) == 0 {
				cempty++
			}
		}
		if d.trunc {
			e.Flags |= ring.FlagTruncated
		}
		if s.cfg.MaxMsgLen > 0 && len(e.Msg) > s.cfg.MaxMsgLen {
			e.Msg = e.Msg[:s.cfg.MaxMsgLen]
			e.Flags |= ring.FlagTruncated
		}
		if e.Flags&ring.FlagTruncated != 0 {
			ctrunc++
		}
		if e.Flags&ring.FlagHasPID == 0 && d.pid > 0 {
			e.PID = d.pid
			e.Flags |= ring.FlagHasPID
			ccred++
		}
		s.entries = append(s.entries, e)
	}
	// Count before delivering: whoever sees an entry sees it counted.
	s.nReceived.Add(uint64(len(s.dgrams)))
	s.n3164.Add(c3164)
	s.n5424.Add(c5424)
	s.nRaw.Add(craw)
	s.nEmpty.Add(cempty)
	s.nTruncated.Add(ctrunc)
	s.nCredPIDs.Add(ccred)
	sink.Append(s.entries...)
	clear(s.entries) // drop references into buf and 5424 strings
}
