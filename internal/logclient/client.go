// Package logclient reads memlogd's query socket: logread, logwrite and
// forwarders share it. It speaks the extended protocol, which carries
// sequence numbers, gaps and a cursor to resume from, and the legacy one
// for LinuxKit's own memlogd.
package logclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/logproto"
)

// DefaultSocket is where memlogd listens for readers.
const DefaultSocket = "/var/run/memlogdq.sock"

// ErrNotExtended is returned by Open when the server closed the connection
// without answering an extended request: it is probably LinuxKit's own
// memlogd, which knows only the one-byte requests.
var ErrNotExtended = errors.New("memlogd does not speak the extended query protocol (LinuxKit's memlogd?)")

// ErrClosed is returned by Next when memlogd closed a following stream
// (or reset it): it was stopped or restarted.
var ErrClosed = errors.New("memlogd closed the connection: it was stopped or restarted")

// ErrTruncated is returned by Next when a dump ended without its end
// record: memlogd went away in the middle. It wraps ErrClosed.
var ErrTruncated = fmt.Errorf("%w before the end of the dump", ErrClosed)

// HelloTimeout bounds the wait for the first reply record. It only has
// to catch a memlogd that accepts and never answers: one on a starved
// machine (a VM on a busy host) can take several seconds, and a client
// that gives up on it fails where waiting would have worked.
const HelloTimeout = 30 * time.Second

func hungUp(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ServerError is an error record sent by memlogd. Code is the record's
// code (logproto.ErrBusy, ErrCursor, ErrRequest); for a memlogd too old
// to send one it is inferred from that memlogd's messages, or left empty.
type ServerError struct {
	Code string
	Msg  string
}

func (e *ServerError) Error() string {
	return string(logproto.AppendEscaped([]byte("memlogd: "), e.Msg, false))
}

// Busy reports whether memlogd could not serve the request now (too many
// readers): the same request may succeed later.
func (e *ServerError) Busy() bool { return e.Code == logproto.ErrBusy }

// CursorRefused reports whether memlogd refused the request's cursor
// itself: asking again with the same cursor cannot succeed.
func (e *ServerError) CursorRefused() bool { return e.Code == logproto.ErrCursor }

// serverError decodes an error record.
func serverError(line []byte) error {
	var rec struct {
		Code  string `json:"code"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return fmt.Errorf("decoding memlogd's error record: %w", err)
	}
	if rec.Code == "" {
		// memlogd before error codes: its two messages that are not
		// about a malformed request.
		switch {
		case strings.HasPrefix(rec.Error, "too many readers"):
			rec.Code = logproto.ErrBusy
		case strings.HasPrefix(rec.Error, "cursor ") && strings.Contains(rec.Error, "is beyond the newest entry"):
			rec.Code = logproto.ErrCursor
		}
	}
	return &ServerError{Code: rec.Code, Msg: rec.Error}
}

// Stream is one open request.
type Stream struct {
	conn   net.Conn
	br     *bufio.Reader
	legacy bool
	follow bool
	stop   func() bool
	line   []byte
	// Hello is the first record of an extended reply (zero for legacy),
	// and HelloLine that record as sent.
	Hello     logproto.Record
	HelloLine []byte
	last      uint64 // sequence number of the last entry returned
	ended     bool
	dec       logproto.Decoder
	// skipBefore, for a legacy stream that stands for a follow request:
	// entries received before this time are skipped.
	skipBefore time.Time
	skip       logproto.Record
}

// Open connects to the query socket at path and sends req. For an extended
// request it reads the hello record before returning. Cancelling ctx
// closes the stream.
func Open(ctx context.Context, path string, req logproto.Request) (*Stream, error) {
	wire, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to memlogd at %s: %w", path, err)
	}
	// A small buffer: memlogd judges whether a reader is alive by how it
	// drains the socket, and a slow reader should drain it often.
	s := newStream(ctx, conn, bufio.NewReaderSize(conn, 32<<10), req)
	if _, err := conn.Write(wire); err != nil {
		s.Close()
		if !req.Legacy && hungUp(err) {
			return nil, fmt.Errorf("%w: %w", ErrNotExtended, err)
		}
		return nil, fmt.Errorf("sending request to memlogd at %s: %w", path, err)
	}
	if req.Legacy {
		return s, nil
	}
	// Our memlogd answers at once. LinuxKit's reads one byte and then
	// either closes (the rest of the request unread: a reset) or, for a
	// mode byte it does not know, never answers.
	if err := s.readHello(path); err != nil {
		return nil, err
	}
	return s, nil
}

func newStream(ctx context.Context, conn net.Conn, br *bufio.Reader, req logproto.Request) *Stream {
	s := &Stream{conn: conn, br: br, legacy: req.Legacy, follow: req.Follow()}
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	return s
}

// readHello reads the first record of an extended reply; on an error the
// stream is closed.
func (s *Stream) readHello(path string) error {
	s.conn.SetReadDeadline(time.Now().Add(HelloTimeout))
	line, err := s.readLine()
	s.conn.SetReadDeadline(time.Time{})
	if err != nil {
		s.Close()
		var ne net.Error
		// The cause stays in the chain: a reset may also be a memlogd
		// that died just then, which a careful caller tells apart by
		// seeing it twice.
		if errors.Is(err, io.EOF) || hungUp(err) || (errors.As(err, &ne) && ne.Timeout()) {
			return fmt.Errorf("%w: %w", ErrNotExtended, err)
		}
		return fmt.Errorf("reading reply from memlogd at %s: %w", path, err)
	}
	var rec logproto.Record
	if err := s.dec.Decode(line, &rec); err != nil {
		s.Close()
		return err
	}
	switch rec.Type {
	case logproto.TypeHello:
		s.Hello = rec
		s.HelloLine = append([]byte(nil), line...)
		return nil
	case logproto.TypeError:
		s.Close()
		return serverError(line)
	}
	s.Close()
	return fmt.Errorf("memlogd at %s: reply did not start with a hello record: %.100q", path, line)
}

// Close closes the stream.
func (s *Stream) Close() error {
	s.stop()
	return s.conn.Close()
}

// readLine returns the next line without its newline; the slice is valid
// until the next call.
func (s *Stream) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == nil {
		return line[:len(line)-1], nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		if len(line) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	s.line = append(s.line[:0], line...)
	for {
		line, err = s.br.ReadSlice('\n')
		s.line = append(s.line, line...)
		if err == nil {
			return s.line[:len(s.line)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// NextRaw returns the next reply line as memlogd sent it (entries and
// gap records; the end record is consumed). At the end of a complete dump
// it returns io.EOF; if memlogd went away first, ErrTruncated (extended)
// or io.EOF (a legacy dump, which cannot tell). A follow never ends but
// with an error: ErrClosed when memlogd closed the connection.
func (s *Stream) NextRaw() ([]byte, error) {
	for {
		line, err := s.nextRaw()
		if err != nil || !s.skipping(line) {
			return line, err
		}
	}
}

// skipping reports whether line is an entry of a legacy dump that arrived
// before a follow request was made, and so is skipped.
func (s *Stream) skipping(line []byte) bool {
	if !s.legacy || s.skipBefore.IsZero() {
		return false
	}
	if s.dec.DecodeView(line, &s.skip) == nil && s.skip.Time.Before(s.skipBefore) {
		return true
	}
	s.skipBefore = time.Time{}
	return false
}

func (s *Stream) nextRaw() ([]byte, error) {
	if s.ended {
		return nil, io.EOF
	}
	line, err := s.readLine()
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || hungUp(err) {
			switch {
			case s.follow:
				return nil, ErrClosed
			case s.legacy && err == io.EOF:
				return nil, io.EOF
			}
			return nil, ErrTruncated
		}
		return nil, fmt.Errorf("reading from memlogd: %w", err)
	}

	if !s.legacy && bytes.HasPrefix(line, []byte(`{"type":"`)) {
		switch {
		case bytes.HasPrefix(line, []byte(`{"type":"end"`)):
			s.ended = true
			return nil, io.EOF
		case bytes.HasPrefix(line, []byte(`{"type":"error"`)):
			return nil, serverError(line)
		}
	}
	if seq, ok := logproto.EntrySeq(line); ok {
		s.last = seq
	}
	return line, nil
}

// Next returns the next record: an entry (Type "") or a gap (Type
// logproto.TypeGap). Errors are those of NextRaw.
func (s *Stream) Next() (logproto.Record, error) {
	var r logproto.Record
	err := s.NextInto(&r)
	return r, err
}

// NextInto is Next decoding into r, which it overwrites. The strings of r
// stay valid after later calls.
func (s *Stream) NextInto(r *logproto.Record) error {
	line, err := s.NextRaw()
	if err != nil {
		*r = logproto.Record{}
		return err
	}
	return s.dec.Decode(line, r)
}

// NextView is NextInto for a caller that is done with r before its next
// call: r's strings may point into the stream's buffer, which saves
// copying them.
func (s *Stream) NextView(r *logproto.Record) error {
	line, err := s.NextRaw()
	if err != nil {
		*r = logproto.Record{}
		return err
	}
	return s.dec.DecodeView(line, r)
}

// Legacy reports whether the stream speaks LinuxKit's protocol (no hello,
// no sequence numbers, no gap records).
func (s *Stream) Legacy() bool { return s.legacy }

// Cursor returns the position after the last entry Next returned, for a
// later request's After (the zero Cursor if none was returned yet, or if
// the stream is legacy).
func (s *Stream) Cursor() logproto.Cursor {
	if s.legacy || s.last == 0 {
		return logproto.Cursor{}
	}
	return logproto.Cursor{Instance: s.Hello.Instance, Seq: s.last}
}

// Buffered reports whether more reply bytes are already read and waiting,
// so a caller can delay flushing its own output.
func (s *Stream) Buffered() bool { return s.br.Buffered() > 0 }

// Idle reports whether nothing is buffered and nothing waits unread in the
// connection at this moment: the reader has everything memlogd has sent
// so far (false if the connection cannot tell).
func (s *Stream) Idle() bool {
	if s.br.Buffered() > 0 {
		return false
	}
	sc, ok := s.conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := -1
	if rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }) != nil || err != nil {
		return false
	}
	return n == 0
}

// SetDeadline sets a deadline on the underlying connection.
func (s *Stream) SetDeadline(t time.Time) error { return s.conn.SetDeadline(t) }
