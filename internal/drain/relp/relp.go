// Package relp delivers to RELP receivers (rsyslog's imrelp), plain or over
// TLS. Every message is acknowledged by the server; up to a window of them
// may be outstanding. After a broken session the core sends again what was
// not acknowledged: duplicates are possible, loss is not.
package relp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/syslogfmt"
)

// Frame is one RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF.
type Frame struct {
	Txnr    uint64
	Command string
	Data    []byte
}

// MaxData bounds the data of a frame read from a server.
const MaxData = 128 << 10

// maxTxnr is where transaction numbers wrap back to 1.
const maxTxnr = 999999999

// ReadFrame reads one frame from br.
func ReadFrame(br *bufio.Reader) (Frame, error) {
	var f Frame
	txnr, err := readField(br, 9)
	if err != nil {
		return f, fmt.Errorf("RELP frame: transaction number: %w", err)
	}
	if f.Txnr, err = parseNum(txnr); err != nil {
		return f, fmt.Errorf("RELP frame: transaction number: %w", err)
	}
	cmd, err := readField(br, 32)
	if err != nil {
		return f, fmt.Errorf("RELP frame: command: %w", err)
	}
	for _, c := range cmd {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return f, fmt.Errorf("RELP frame: command %q", cmd)
		}
	}
	f.Command = string(cmd)
	// DATALEN ends with a space (data follows) or the final LF.
	var l []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			return f, fmt.Errorf("RELP frame: data length: %w", noEOF(err))
		}
		if c == ' ' || c == '\n' {
			n, err := parseNum(l)
			if err != nil || len(l) > 9 {
				return f, fmt.Errorf("RELP frame: data length %q", l)
			}
			if c == '\n' {
				if n != 0 {
					return f, fmt.Errorf("RELP frame: data length %d but no data", n)
				}
				return f, nil
			}
			if n > MaxData {
				return f, fmt.Errorf("RELP frame: data length %d over %d", n, MaxData)
			}
			f.Data = make([]byte, n)
			if _, err := io.ReadFull(br, f.Data); err != nil {
				return f, fmt.Errorf("RELP frame: data: %w", noEOF(err))
			}
			c, err := br.ReadByte()
			if err != nil {
				return f, fmt.Errorf("RELP frame: trailer: %w", noEOF(err))
			}
			if c != '\n' {
				return f, fmt.Errorf("RELP frame: trailer %q, want a newline", c)
			}
			return f, nil
		}
		l = append(l, c)
		if len(l) > 9 {
			return f, fmt.Errorf("RELP frame: data length %q too long", l)
		}
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readField reads bytes up to a space (not included), at most maxLen.
func readField(br *bufio.Reader, maxLen int) ([]byte, error) {
	var b []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			if len(b) > 0 {
				err = noEOF(err)
			}
			return nil, err
		}
		if c == ' ' {
			if len(b) == 0 {
				return nil, errors.New("empty field")
			}
			return b, nil
		}
		b = append(b, c)
		if len(b) > maxLen {
			return nil, fmt.Errorf("field %.20q too long", b)
		}
	}
}

func parseNum(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", b)
		}
		n = n*10 + uint64(c-'0')
	}
	return n, nil
}

// AppendFrame appends a frame.
func AppendFrame(dst []byte, txnr uint64, cmd string, data []byte) []byte {
	dst = strconv.AppendUint(dst, txnr, 10)
	dst = append(dst, ' ')
	dst = append(dst, cmd...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(data)), 10)
	if len(data) > 0 {
		dst = append(dst, ' ')
		dst = append(dst, data...)
	}
	return append(dst, '\n')
}

// Response splits a rsp frame's data into its code and text.
func Response(data []byte) (code int, text string, err error) {
	s := string(data)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	c, rest, _ := strings.Cut(s, " ")
	code, err = strconv.Atoi(c)
	if err != nil || len(c) != 3 {
		return 0, "", fmt.Errorf("RELP response %.40q has no status code", data)
	}
	return code, rest, nil
}

// Options configure a RELP destination.
type Options struct {
	Addr        string
	TLS         *tls.Config
	Format      syslogfmt.Formatter
	WindowSize  int // default 1024
	DialTimeout time.Duration
}

// Dest is a RELP destination.
type Dest struct{ o Options }

// New returns a destination.
func New(o Options) (*Dest, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("relp: address %q: %w", o.Addr, err)
	}
	if o.WindowSize <= 0 {
		o.WindowSize = 1024
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	return &Dest{o: o}, nil
}

// Window implements drain.Destination.
func (d *Dest) Window() int { return d.o.WindowSize }

const offer = "relp_version=0\nrelp_software=lklog-logforward\ncommands=syslog"

// Connect implements drain.Destination: it connects and opens a session.
func (d *Dest) Connect(ctx context.Context) (drain.Conn, error) {
	dl := net.Dialer{Timeout: d.o.DialTimeout}
	raw, err := dl.DialContext(ctx, "tcp", d.o.Addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", d.o.Addr, err)
	}
	nc := raw
	hctx, cancel := context.WithTimeout(ctx, d.o.DialTimeout)
	defer cancel()
	if d.o.TLS != nil {
		host, _, _ := net.SplitHostPort(d.o.Addr)
		cfg := d.o.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		t, err := drain.Handshake(hctx, raw, cfg)
		if err != nil {
			return nil, err
		}
		nc = t
	}
	stop := context.AfterFunc(hctx, func() { nc.SetDeadline(time.Now()) })
	br := bufio.NewReader(nc)
	_, err = nc.Write(AppendFrame(nil, 1, "open", []byte(offer)))
	var f Frame
	if err == nil {
		f, err = ReadFrame(br)
	}
	stopped := stop()
	if err != nil || !stopped {
		nc.Close()
		if err == nil {
			err = hctx.Err()
		}
		err = fmt.Errorf("opening a RELP session with %s: %w", d.o.Addr, err)
		if drain.CertError(err) {
			return nil, drain.Permanent(err)
		}
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	if f.Command != "rsp" || f.Txnr != 1 {
		nc.Close()
		return nil, fmt.Errorf("RELP server %s answered open with %q %d", d.o.Addr, f.Command, f.Txnr)
	}
	if code, text, err := Response(f.Data); err != nil || code != 200 {
		nc.Close()
		if err == nil {
			err = fmt.Errorf("RELP server %s refused the session: %d %s", d.o.Addr, code, text)
		}
		return nil, err
	}
	c := &conn{nc: nc, br: br, f: d.o.Format, next: 2, firstUnacked: 2, changed: make(chan struct{}, 1), addr: d.o.Addr}
	go c.readReplies()
	return c, nil
}

type conn struct {
	times syslogfmt.TimeCache
	nc    net.Conn
	br    *bufio.Reader
	f     syslogfmt.Formatter
	addr  string
	buf   []byte
	msg   []byte
	next  uint64 // next transaction number to send
	sent  uint64

	mu           sync.Mutex
	acked        uint64
	firstUnacked uint64 // transaction number the next rsp must carry
	err          error
	changed      chan struct{}
}

func nextTxnr(n uint64) uint64 {
	if n >= maxTxnr {
		return 1
	}
	return n + 1
}

func (c *conn) Send(msgs []drain.Message) error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.buf = c.buf[:0]
	for i := range msgs {
		m := syslogfmt.FromRecord(&msgs[i].Rec)
		f := c.f
		f.Instance = msgs[i].Instance
		f.Times = &c.times
		c.msg = f.Append(c.msg[:0], &m)
		c.buf = AppendFrame(c.buf, c.next, "syslog", c.msg)
		c.next = nextTxnr(c.next)
	}
	if _, err := c.nc.Write(c.buf); err != nil {
		return fmt.Errorf("sending to %s: %w", c.addr, err)
	}
	c.mu.Lock()
	c.sent += uint64(len(msgs))
	c.mu.Unlock()
	return nil
}

func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.signal()
}

func (c *conn) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// readReplies takes the server's responses, which come in the order of the
// transactions.
func (c *conn) readReplies() {
	for {
		f, err := ReadFrame(c.br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the server closed the connection")
			}
			err = fmt.Errorf("RELP session with %s: %w", c.addr, err)
			if drain.CertError(err) {
				err = drain.Permanent(err)
			}
			c.fail(err)
			return
		}
		switch f.Command {
		case "serverclose":
			c.fail(fmt.Errorf("RELP server %s closed the session", c.addr))
			return
		case "rsp":
		default:
			c.fail(fmt.Errorf("RELP server %s sent an unexpected %q frame", c.addr, f.Command))
			return
		}
		code, text, err := Response(f.Data)
		c.mu.Lock()
		switch {
		case err != nil:
			c.err = fmt.Errorf("RELP server %s: %w", c.addr, err)
		case f.Txnr != c.firstUnacked:
			c.err = fmt.Errorf("RELP server %s answered transaction %d, expected %d", c.addr, f.Txnr, c.firstUnacked)
		case code != 200:
			c.err = fmt.Errorf("RELP server %s refused message %d: %d %s", c.addr, f.Txnr, code, text)
		default:
			c.acked++
			c.firstUnacked = nextTxnr(c.firstUnacked)
		}
		failed := c.err != nil
		c.mu.Unlock()
		c.signal()
		if failed {
			return
		}
	}
}

func (c *conn) Acked(ctx context.Context, wait time.Duration) (uint64, error) {
	c.mu.Lock()
	start := c.acked
	c.mu.Unlock()
	var t *time.Timer
	for {
		c.mu.Lock()
		acked, sent, err := c.acked, c.sent, c.err
		c.mu.Unlock()
		if err != nil || acked == sent || acked > start || wait <= 0 {
			return acked, err
		}
		if t == nil {
			t = time.NewTimer(wait)
			defer t.Stop()
		}
		select {
		case <-ctx.Done():
			return acked, ctx.Err()
		case <-t.C:
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.acked, c.err
		case <-c.changed:
		}
	}
}

// Close ends the session politely (close, without waiting for the
// answer) and closes the connection.
func (c *conn) Close() error {
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(AppendFrame(nil, c.next, "close", nil))
	return c.nc.Close()
}
