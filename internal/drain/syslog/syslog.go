// Package syslog delivers to syslog receivers: RFC 5424 (or 3164) messages
// in UDP datagrams (RFC 5426), over TCP with octet counting or LF framing
// (RFC 6587), or over TLS (RFC 5425).
//
// TCP has no application acknowledgement. A message counts as taken once
// the peer's TCP has acknowledged its last byte (TCP_INFO bytes_acked, or
// the bytes written minus the socket's unacknowledged bytes, SIOCOUTQ).
// What is in flight when a connection breaks is sent again on the next
// one.
package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/syslogfmt"
)

// DefaultMaxDatagram is the UDP message size RFC 5426 says receivers
// should accept.
const DefaultMaxDatagram = 2048

// Options configure a syslog destination.
type Options struct {
	Network     string // "udp" or "tcp"
	Addr        string // host:port, resolved at each connection
	TLS         *tls.Config
	Framing     string // syslogfmt.OctetCounting (default) or syslogfmt.LF
	Format      syslogfmt.Formatter
	MaxDatagram int // UDP: longer messages are cut and marked (default 2048)
	WindowSize  int // most unacknowledged messages (default 10000)
	DialTimeout time.Duration
}

// Dest is a syslog destination.
type Dest struct{ o Options }

// New returns a destination.
func New(o Options) (*Dest, error) {
	if o.Network != "udp" && o.Network != "tcp" {
		return nil, fmt.Errorf("syslog: network %q: want udp or tcp", o.Network)
	}
	if o.Network == "udp" && o.TLS != nil {
		return nil, errors.New("syslog: TLS needs tcp")
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("syslog: address %q: %w", o.Addr, err)
	}
	if o.Framing == "" {
		o.Framing = syslogfmt.OctetCounting
	}
	if o.Framing != syslogfmt.OctetCounting && o.Framing != syslogfmt.LF {
		return nil, fmt.Errorf("syslog: framing %q: want %s or %s", o.Framing, syslogfmt.OctetCounting, syslogfmt.LF)
	}
	if o.MaxDatagram <= 0 {
		o.MaxDatagram = DefaultMaxDatagram
	}
	if o.MaxDatagram < 480 {
		return nil, fmt.Errorf("syslog: maximum datagram %d is below the 480 bytes every receiver takes", o.MaxDatagram)
	}
	if o.WindowSize <= 0 {
		o.WindowSize = 10000
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	return &Dest{o: o}, nil
}

// Window implements drain.Destination.
func (d *Dest) Window() int { return d.o.WindowSize }

// Connect implements drain.Destination.
func (d *Dest) Connect(ctx context.Context) (drain.Conn, error) {
	dl := net.Dialer{Timeout: d.o.DialTimeout}
	raw, err := dl.DialContext(ctx, d.o.Network, d.o.Addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", d.o.Addr, err)
	}
	f := d.o.Format
	if d.o.Network == "udp" {
		return &udpConn{c: raw, f: f, max: d.o.MaxDatagram}, nil
	}
	tc := raw.(*net.TCPConn)
	cc := &countConn{Conn: raw}
	var ackBase uint64
	if rc, err := tc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				ackBase = info.Bytes_acked
			}
		})
	}
	var w net.Conn = cc
	if d.o.TLS != nil {
		host, _, _ := net.SplitHostPort(d.o.Addr)
		cfg := d.o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		hctx, cancel := context.WithTimeout(ctx, d.o.DialTimeout)
		t, err := drain.Handshake(hctx, cc, cfg)
		cancel()
		if err != nil {
			return nil, err
		}
		w = t
	}
	c := &tcpConn{tc: tc, cc: cc, w: w, f: f, framing: d.o.Framing, dead: make(chan struct{}), ackBase: ackBase}
	go c.watch()
	return c, nil
}

// countConn counts the bytes written to the socket.
type countConn struct {
	net.Conn
	mu sync.Mutex
	n  uint64
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.n += uint64(n)
	c.mu.Unlock()
	return n, err
}

func (c *countConn) written() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

type batchEnd struct {
	raw  uint64 // socket bytes written when this batch was out
	msgs uint64 // messages sent up to and including it
}

type tcpConn struct {
	times   syslogfmt.TimeCache
	tc      *net.TCPConn
	cc      *countConn
	w       net.Conn
	f       syslogfmt.Formatter
	framing string
	buf     []byte
	msg     []byte
	sent    uint64
	acked   uint64
	ends    []batchEnd
	ackBase uint64 // TCP_INFO bytes_acked at connect (the SYN)
	dead    chan struct{}
	err     error // set before dead is closed
}

// watch reads from the peer, which sends nothing in syslog: an end of
// file or an error means the connection is gone (a TLS alert shows up
// here too).
func (c *tcpConn) watch() {
	var b [512]byte
	for {
		if _, err := c.w.Read(b[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the receiver closed the connection")
			}
			c.err = fmt.Errorf("connection to %s: %w", c.tc.RemoteAddr(), err)
			if drain.CertError(err) {
				c.err = drain.Permanent(c.err)
			}
			close(c.dead)
			return
		}
	}
}

func (c *tcpConn) Send(msgs []drain.Message) error {
	select {
	case <-c.dead:
		return c.err
	default:
	}
	c.buf = c.buf[:0]
	for i := range msgs {
		m := syslogfmt.FromRecord(&msgs[i].Rec)
		f := c.f
		f.Instance = msgs[i].Instance
		f.Times = &c.times
		c.msg = f.Append(c.msg[:0], &m)
		c.buf = syslogfmt.AppendFrame(c.buf, c.framing, c.msg)
	}
	if _, err := c.w.Write(c.buf); err != nil {
		return fmt.Errorf("sending to %s: %w", c.tc.RemoteAddr(), err)
	}
	c.sent += uint64(len(msgs))
	c.ends = append(c.ends, batchEnd{raw: c.cc.written(), msgs: c.sent})
	return nil
}

// peerAcked returns how many of the bytes written since the connection
// was made the peer's TCP has acknowledged: TCP_INFO's cumulative
// bytes_acked (less its value at connect, which counts the SYN). Unlike
// written minus SIOCOUTQ it stays right after a reset, which purges the
// send queue (SIOCOUTQ then says 0 though those bytes never arrived);
// SIOCOUTQ is the fallback while the connection is established.
func (c *tcpConn) peerAcked() (uint64, error) {
	rc, err := c.tc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		info *unix.TCPInfo
		ierr error
		q    int
		qerr error
	)
	if err := rc.Control(func(fd uintptr) {
		info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		q, qerr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
	}); err != nil {
		return 0, err
	}
	if ierr == nil && info.Bytes_acked >= c.ackBase && (info.Bytes_acked > 0 || info.State != tcpEstablished) {
		return info.Bytes_acked - c.ackBase, nil
	}
	if qerr != nil {
		return 0, fmt.Errorf("SIOCOUTQ: %w", qerr)
	}
	if ierr == nil && info.State != tcpEstablished {
		// Without bytes_acked a queue length read now cannot be trusted.
		return 0, nil
	}
	return c.cc.written() - min(uint64(q), c.cc.written()), nil
}

const tcpEstablished = 1

// take moves acked past the batches whose last byte the peer acknowledged.
func (c *tcpConn) take(done uint64) {
	for len(c.ends) > 0 && c.ends[0].raw <= done {
		c.acked = c.ends[0].msgs
		c.ends = c.ends[1:]
	}
}

func (c *tcpConn) Acked(ctx context.Context, wait time.Duration) (uint64, error) {
	deadline := time.Now().Add(wait)
	pause := 100 * time.Microsecond
	start := c.acked
	for {
		done, err := c.peerAcked()
		if err != nil {
			return c.acked, err
		}
		c.take(done)
		if c.acked == c.sent || c.acked > start || !time.Now().Before(deadline) {
			select {
			case <-c.dead:
				if c.acked == c.sent {
					return c.acked, nil
				}
				return c.acked, c.err
			default:
			}
			return c.acked, nil
		}
		t := time.NewTimer(min(pause, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return c.acked, ctx.Err()
		case <-c.dead:
			t.Stop()
			// Bytes acknowledged before the end still count.
			if done, err := c.peerAcked(); err == nil {
				c.take(done)
			}
			if c.acked == c.sent {
				return c.acked, nil
			}
			return c.acked, c.err
		case <-t.C:
		}
		pause = min(pause*2, 5*time.Millisecond)
	}
}

func (c *tcpConn) Close() error { return c.w.Close() }

type udpConn struct {
	times syslogfmt.TimeCache
	c     net.Conn
	f     syslogfmt.Formatter
	max   int
	msg   []byte
	sent  uint64
}

// Cut shortens a formatted message to at most limit bytes, at a UTF-8
// character boundary.
func Cut(b []byte, limit int) []byte {
	if len(b) <= limit {
		return b
	}
	n := limit
	for n > 0 && n > limit-utf8.UTFMax && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}

// Fit formats m (its Cut set) into at most limit bytes with the header
// and structured data whole, so that the receiver can still parse them
// and sees the lklog@32473 element (instance, seq, cut): only MSG is cut.
// When the header and structured data alone pass limit, the entry's own
// structured data is left out, then the exact source (source="...",
// source_b64) is, keeping the APP-NAME made of it; the cut="N" element
// says the datagram lost bytes. Only a header that still does not fit (a
// hostname near 255 bytes with a small limit) is cut through.
func Fit(dst []byte, f *syslogfmt.Formatter, m *syslogfmt.Message, limit int) []byte {
	mm := *m
	mm.Msg = ""
	head := f.Append(dst[:0], &mm)
	if len(head) > limit && mm.SD != "" {
		mm.SD = ""
		head = f.Append(dst[:0], &mm)
	}
	if len(head) > limit {
		mm.Source, _ = syslogfmt.AppName(mm.Source)
		head = f.Append(dst[:0], &mm)
	}
	if len(head) >= limit {
		return Cut(head, limit)
	}
	mm.Msg = m.Msg
	return Cut(f.Append(head[:0], &mm), limit)
}

func (c *udpConn) Send(msgs []drain.Message) error {
	for i := range msgs {
		m := syslogfmt.FromRecord(&msgs[i].Rec)
		f := c.f
		f.Instance = msgs[i].Instance
		f.Times = &c.times
		c.msg = f.Append(c.msg[:0], &m)
		if len(c.msg) > c.max {
			m.Cut = len(c.msg)
			c.msg = Fit(c.msg[:0], &f, &m, c.max)
		}
		if _, err := c.c.Write(c.msg); err != nil {
			c.sent += uint64(i)
			return fmt.Errorf("sending to %s: %w", c.c.RemoteAddr(), err)
		}
	}
	c.sent += uint64(len(msgs))
	return nil
}

// Acked counts every datagram sent: UDP says nothing about delivery.
func (c *udpConn) Acked(context.Context, time.Duration) (uint64, error) { return c.sent, nil }

func (c *udpConn) Close() error { return c.c.Close() }
