package nats

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Client is a minimal NATS client: publish with headers (HPUB) and a reply
// subject, and replies on one inbox subscription. Its methods are called
// from one goroutine.
type Client struct {
	c     net.Conn
	r     *bufio.Reader
	inbox string
	buf   []byte
}

// Msg is a message the client received.
type Msg struct {
	Subject, Reply string
	// Status is the header line's status code ("503" for no
	// responders), empty when there is none.
	Status string
	Header []byte
	Data   []byte
}

// Dial connects, sends CONNECT (with user and password if given) and
// subscribes to a fresh inbox.
func Dial(ctx context.Context, addr, user, pass string, timeout time.Duration) (*Client, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cl := &Client{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	c.SetDeadline(time.Now().Add(timeout))
	line, err := cl.line()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("reading INFO: %w", err)
	}
	if !strings.HasPrefix(line, "INFO ") {
		c.Close()
		return nil, fmt.Errorf("%w: expected INFO, got %q", ErrProtocol, trim(line))
	}
	var info struct {
		Headers bool `json:"headers"`
	}
	json.Unmarshal([]byte(line[5:]), &info)
	if !info.Headers {
		c.Close()
		return nil, errors.New("the NATS server does not support headers (needed for message ids)")
	}
	conn := map[string]any{"verbose": false, "pedantic": false, "headers": true, "no_responders": true,
		"name": "lklog-logforward", "lang": "go", "version": "1", "protocol": 1}
	if user != "" || pass != "" {
		conn["user"], conn["pass"] = user, pass
	}
	cj, _ := json.Marshal(conn)
	var rb [8]byte
	rand.Read(rb[:])
	cl.inbox = "_INBOX." + hex.EncodeToString(rb[:])
	fmt.Fprintf(c, "CONNECT %s\r\nPING\r\nSUB %s.* 1\r\n", cj, cl.inbox)
	for {
		line, err := cl.line()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("connecting: %w", err)
		}
		if line == "PONG" {
			break
		}
		if strings.HasPrefix(line, "-ERR") {
			c.Close()
			return nil, &ServerError{Msg: trim(line[4:])}
		}
	}
	c.SetDeadline(time.Time{})
	return cl, nil
}

// ErrProtocol is a server line the client does not understand.
var ErrProtocol = errors.New("nats: protocol error")

// ServerError is an -ERR line.
type ServerError struct{ Msg string }

func (e *ServerError) Error() string { return "nats: server error: " + e.Msg }

func trim(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Inbox returns the reply subject for token.
func (cl *Client) Inbox(token int) string { return cl.inbox + "." + strconv.Itoa(token) }

// Close closes the connection.
func (cl *Client) Close() error { return cl.c.Close() }

// AppendHPUB appends a publish with headers (hdr holds "Name: value"
// lines, without the version line) to dst.
func AppendHPUB(dst []byte, subject, reply string, hdr []string, data []byte) []byte {
	h := "NATS/1.0\r\n"
	for _, l := range hdr {
		h += l + "\r\n"
	}
	h += "\r\n"
	dst = append(dst, "HPUB "...)
	dst = append(dst, subject...)
	dst = append(dst, ' ')
	if reply != "" {
		dst = append(dst, reply...)
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, int64(len(h)), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(h)+len(data)), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, h...)
	dst = append(dst, data...)
	return append(dst, "\r\n"...)
}

// Write sends raw protocol bytes.
func (cl *Client) Write(b []byte, deadline time.Time) error {
	cl.c.SetWriteDeadline(deadline)
	_, err := cl.c.Write(b)
	return err
}

// Request publishes data to subject and waits for one reply.
func (cl *Client) Request(subject string, data []byte, timeout time.Duration) (Msg, error) {
	deadline := time.Now().Add(timeout)
	cl.buf = AppendHPUB(cl.buf[:0], subject, cl.Inbox(0), nil, data)
	if err := cl.Write(cl.buf, deadline); err != nil {
		return Msg{}, err
	}
	return cl.Next(deadline)
}

// streamNames asks JetStream for the streams whose subjects overlap
// filter ($JS.API.STREAM.NAMES), skipping late replies to earlier
// publishes.
func (cl *Client) streamNames(filter string, deadline time.Time) ([]string, error) {
	req, _ := json.Marshal(map[string]string{"subject": filter})
	reply := cl.inbox + ".names"
	cl.buf = AppendHPUB(cl.buf[:0], "$JS.API.STREAM.NAMES", reply, nil, req)
	if err := cl.Write(cl.buf, deadline); err != nil {
		return nil, err
	}
	for {
		m, err := cl.Next(deadline)
		if err != nil {
			return nil, err
		}
		if m.Subject != reply {
			continue
		}
		if m.Status == "503" {
			return nil, errors.New("the JetStream API has no responders: is JetStream enabled on the server?")
		}
		var r struct {
			Streams []string `json:"streams"`
			Error   *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return nil, fmt.Errorf("stream names reply %q: %w", trim(string(m.Data)), err)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("stream names: %s", r.Error.Description)
		}
		return r.Streams, nil
	}
}

func (cl *Client) line() (string, error) {
	var line []byte
	for {
		part, err := cl.r.ReadSlice('\n')
		line = append(line, part...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull || len(line) > 1<<20 {
			return "", err
		}
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// Next returns the next message for the inbox, answering PINGs.
func (cl *Client) Next(deadline time.Time) (Msg, error) {
	cl.c.SetReadDeadline(deadline)
	for {
		line, err := cl.line()
		if err != nil {
			return Msg{}, err
		}
		m, ok, err := cl.parse(line)
		if err != nil || ok {
			return m, err
		}
	}
}

// parse handles one protocol line (reading a message's payload).
func (cl *Client) parse(line string) (Msg, bool, error) {
	switch {
	case line == "PING":
		_, err := cl.c.Write([]byte("PONG\r\n"))
		return Msg{}, false, err
	case line == "PONG" || line == "+OK" || strings.HasPrefix(line, "INFO "):
		return Msg{}, false, nil
	case strings.HasPrefix(line, "-ERR"):
		return Msg{}, false, &ServerError{Msg: trim(line[4:])}
	}
	f := strings.Fields(line)
	var m Msg
	hdrLen, total := 0, 0
	var err error
	switch {
	case len(f) > 0 && f[0] == "MSG" && (len(f) == 4 || len(f) == 5):
		m.Subject = f[1]
		if len(f) == 5 {
			m.Reply = f[3]
		}
		total, err = strconv.Atoi(f[len(f)-1])
	case len(f) > 0 && f[0] == "HMSG" && (len(f) == 5 || len(f) == 6):
		m.Subject = f[1]
		if len(f) == 6 {
			m.Reply = f[3]
		}
		hdrLen, err = strconv.Atoi(f[len(f)-2])
		if err == nil {
			total, err = strconv.Atoi(f[len(f)-1])
		}
	default:
		return Msg{}, false, fmt.Errorf("%w: %q", ErrProtocol, trim(line))
	}
	if err != nil || hdrLen < 0 || total < hdrLen || total > 64<<20 {
		return Msg{}, false, fmt.Errorf("%w: %q", ErrProtocol, trim(line))
	}
	var body bytes.Buffer
	if _, err := io.CopyN(&body, cl.r, int64(total)+2); err != nil {
		return Msg{}, false, err
	}
	b := body.Bytes()
	if len(b) != total+2 || b[total] != '\r' || b[total+1] != '\n' {
		return Msg{}, false, fmt.Errorf("%w: message payload not ended by CRLF", ErrProtocol)
	}
	m.Header, m.Data = b[:hdrLen], b[hdrLen:total]
	if hdrLen > 0 {
		first, _, _ := bytes.Cut(m.Header, []byte("\r\n"))
		if st := strings.Fields(string(first)); len(st) >= 2 && st[0] == "NATS/1.0" {
			m.Status = st[1]
		}
	}
	return m, true, nil
}
