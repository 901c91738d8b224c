// Package redis is logforward's Redis destination: Logtube's Redis
// transport (RPUSH of events in Logtube's compact or standard JSON
// format onto a list, "logtube" by default) or, with type=stream, XADD
// with MAXLEN onto a stream. A small RESP2 client of its own: one
// connection per worker, AUTH and SELECT on connect, one command (RPUSH)
// or a pipeline (XADD) per batch.
package redis

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/drain/jsonw"
)

// Options configure a Redis destination.
type Options struct {
	Addr     string // host:port
	TLS      *tls.Config
	User     string // ACL user (empty: AUTH with the password alone)
	Password string
	DB       int
	Key      string // list or stream (default "logtube")
	Stream   bool   // XADD instead of RPUSH
	MaxLen   int    // stream: MAXLEN ~ this (default 1000000)
	Event    Event
	Timeout  time.Duration // per command (default 10 s)
}

// Event formats Logtube events.
type Event struct {
	Standard bool   // the standard format instead of the compact one
	Host     string // hostname
	Env      string
	Project  string
	// Topic is "severity" (the severity's name, as Logtube's levels
	// are topics) or "source".
	Topic string
}

var severityNames = []string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}

// Clean keeps [0-9a-zA-Z_-] and makes every other byte `_`, as Logtube
// does with env, project and topic.
func Clean(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (e *Event) topic(m *drain.Message) string {
	if e.Topic == "source" {
		if m.Rec.Source == "" {
			return "_"
		}
		return Clean(m.Rec.Source)
	}
	if s := m.Rec.Severity; s >= 0 && s < len(severityNames) {
		return severityNames[s]
	}
	return "info"
}

// Append appends m as one Logtube event. The event time is the sender's
// timestamp when it had one, else memlogd's receive time; memlogd's other
// fields are custom fields (x): source, severity, facility, pid, sd,
// seq, instance.
func (e *Event) Append(b []byte, m *drain.Message) []byte {
	r := &m.Rec
	t := r.Time
	if !r.TS.IsZero() {
		t = r.TS
	}
	type kv struct{ k, v string }
	b = append(b, '{')
	if e.Standard {
		b = jsonw.Key(b, "timestamp")
		b = append(b, '"')
		b = t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, '"')
	} else {
		b = jsonw.Key(b, "t")
		b = jsonw.Int(b, t.UnixMilli())
	}
	for _, f := range []kv{{"h", "hostname"}, {"e", "env"}, {"p", "project"}, {"o", "topic"}, {"m", "message"}} {
		name := f.k
		if e.Standard {
			name = f.v
		}
		b = jsonw.Key(b, name)
		switch f.k {
		case "h":
			b = jsonw.String(b, e.Host)
		case "e":
			b = jsonw.String(b, Clean(e.Env))
		case "p":
			b = jsonw.String(b, Clean(e.Project))
		case "o":
			b = jsonw.String(b, e.topic(m))
		case "m":
			b = jsonw.String(b, r.Msg)
		}
	}
	x := "x_"
	if !e.Standard {
		b = jsonw.Key(b, "x")
		b = append(b, '{')
		x = ""
	}
	b = jsonw.Key(b, x+"source")
	b = jsonw.String(b, r.Source)
	b = jsonw.Key(b, x+"severity")
	b = jsonw.Int(b, int64(r.Severity))
	b = jsonw.Key(b, x+"facility")
	b = jsonw.Int(b, int64(r.Facility))
	if r.PID > 0 {
		b = jsonw.Key(b, x+"pid")
		b = jsonw.Int(b, int64(r.PID))
	}
	if r.SD != "" {
		b = jsonw.Key(b, x+"sd")
		b = jsonw.String(b, r.SD)
	}
	if r.Seq > 0 {
		b = jsonw.Key(b, x+"seq")
		b = jsonw.Uint(b, r.Seq)
	}
	if m.Instance != "" {
		b = jsonw.Key(b, x+"instance")
		b = jsonw.String(b, m.Instance)
	}
	// JSON strings cannot carry bytes that are not valid UTF-8 (they
	// become U+FFFD): the exact bytes follow in base64.
	b = appendB64(b, x+"message_b64", r.Msg)
	b = appendB64(b, x+"source_b64", r.Source)
	b = appendB64(b, x+"sd_b64", r.SD)
	if !e.Standard {
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendB64 appends the key k with s's bytes in standard base64 when s
// is not valid UTF-8.
func appendB64(b []byte, k, s string) []byte {
	if utf8.ValidString(s) {
		return b
	}
	return jsonw.Base64(b, k, s)
}

// New returns a Redis destination.
func New(o Options, bo batch.Options) (*batch.Dest, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("redis: address %q: %w", o.Addr, err)
	}
	if o.Key == "" {
		o.Key = "logtube"
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 1000000
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Event.Topic != "severity" && o.Event.Topic != "source" {
		return nil, fmt.Errorf("redis: topic %q: want severity or source", o.Event.Topic)
	}
	bo.NewSender = func() batch.Sender { return &sender{o: &o} }
	return batch.New(bo), nil
}

type sender struct {
	o   *Options
	c   net.Conn
	r   *bufio.Reader
	buf []byte
	ev  []byte
}

func (s *sender) Close() error {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
	return nil
}

// ServerError is an error reply.
type ServerError string

func (e ServerError) Error() string { return "redis: " + string(e) }

func (s *sender) do(cmds []byte, n int) ([]Reply, error) {
	s.c.SetDeadline(time.Now().Add(s.o.Timeout))
	if _, err := s.c.Write(cmds); err != nil {
		return nil, err
	}
	out := make([]Reply, 0, n)
	for range n {
		r, err := ReadReply(s.r)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *sender) connect(ctx context.Context) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", s.o.Addr)
	if err != nil {
		return err
	}
	if s.o.TLS != nil {
		tc, err := drain.Handshake(ctx, c, s.o.TLS)
		if err != nil {
			return err
		}
		c = tc
	}
	s.c, s.r = c, bufio.NewReaderSize(c, 16<<10)
	var cmds []byte
	n := 0
	if s.o.Password != "" {
		if s.o.User != "" {
			cmds = AppendCommand(cmds, []byte("AUTH"), []byte(s.o.User), []byte(s.o.Password))
		} else {
			cmds = AppendCommand(cmds, []byte("AUTH"), []byte(s.o.Password))
		}
		n++
	}
	if s.o.DB != 0 {
		cmds = AppendCommand(cmds, []byte("SELECT"), []byte(strconv.Itoa(s.o.DB)))
		n++
	}
	if n > 0 {
		reps, err := s.do(cmds, n)
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r.Kind == '-' {
				return ServerError(r.Str)
			}
		}
	}
	return nil
}

// Deliver implements batch.Sender.
func (s *sender) Deliver(ctx context.Context, msgs []drain.Message) batch.Result {
	if s.c == nil {
		if err := s.connect(ctx); err != nil {
			s.Close()
			var se ServerError
			if errors.As(err, &se) || drain.IsPermanent(err) {
				return batch.Result{Err: fmt.Errorf("connecting to redis %s: %w", s.o.Addr, err), Refused: true}
			}
			return batch.Result{Err: fmt.Errorf("connecting to redis %s: %w", s.o.Addr, err)}
		}
	}
	s.buf = s.buf[:0]
	n := 1
	if s.o.Stream {
		maxLen := []byte(strconv.Itoa(s.o.MaxLen))
		for i := range msgs {
			s.ev = s.o.Event.Append(s.ev[:0], &msgs[i])
			s.buf = AppendCommand(s.buf, []byte("XADD"), []byte(s.o.Key), []byte("MAXLEN"), []byte("~"), maxLen, []byte("*"), []byte("event"), s.ev)
		}
		n = len(msgs)
	} else {
		// One RPUSH: the whole batch is one atomic command.
		s.buf = append(s.buf, '*')
		s.buf = strconv.AppendInt(s.buf, int64(len(msgs)+2), 10)
		s.buf = append(s.buf, "\r\n$5\r\nRPUSH\r\n"...)
		s.buf = appendBulk(s.buf, []byte(s.o.Key))
		for i := range msgs {
			s.ev = s.o.Event.Append(s.ev[:0], &msgs[i])
			s.buf = appendBulk(s.buf, s.ev)
		}
	}
	reps, err := s.do(s.buf, n)
	if err != nil {
		s.Close()
		return batch.Result{Err: fmt.Errorf("redis %s: %w", s.o.Addr, err)}
	}
	var res batch.Result
	for i, r := range reps {
		if r.Kind != '-' {
			continue
		}
		reason := ServerError(r.Str).Error()
		// WRONGTYPE, NOPERM and the like will not change by
		// retrying; LOADING, OOM, READONLY, BUSY may.
		if transient(r.Str) {
			if !s.o.Stream {
				return batch.Result{Err: errors.New(reason)}
			}
			res.Retry = append(res.Retry, i)
		} else {
			if !s.o.Stream {
				return batch.Result{Err: errors.New(reason + " (check the key and the user's rights)"), Refused: true}
			}
			res.Rejected++
		}
		res.Reason = reason
	}
	return res
}

func transient(msg string) bool {
	for _, p := range []string{"LOADING", "OOM", "READONLY", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func appendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}
