// Package nats is logforward's NATS JetStream destination: each entry is
// published (HPUB) as a JSON object to a subject (a template that may
// hold the source) with the header Nats-Msg-Id set to memlogd's instance
// and sequence number, and counts as taken only when JetStream
// acknowledges it. A resend after a crash carries the same id, so the
// stream's duplicate window makes it a no-op. A minimal client of the
// NATS text protocol of its own (no dependency): CONNECT, SUB to an
// inbox, HPUB with a reply subject per message, the acks as replies.
package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/drain/httpdrain"
)

// Options configure a NATS destination.
type Options struct {
	Addr       string
	User, Pass string
	// Subject may hold {source}, replaced by the entry's source with
	// the characters a subject token cannot hold made `_`.
	Subject string
	Meta    httpdrain.Meta
	Timeout time.Duration // per batch, for the acks (default 10 s)
}

// New returns a NATS destination.
func New(o Options, bo batch.Options) (*batch.Dest, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("nats: address %q: %w", o.Addr, err)
	}
	if err := CheckSubject(strings.ReplaceAll(o.Subject, "{source}", "x")); err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	bo.NewSender = func() batch.Sender { return &sender{o: &o} }
	return batch.New(bo), nil
}

// CheckSubject reports a subject a publisher cannot use.
func CheckSubject(s string) error {
	if s == "" {
		return errors.New("nats: give a subject (subject=logs.{source})")
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("nats: subject %q: tokens must be non-empty, without spaces, * or >", s)
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] < ' ' || tok[i] == 0x7f {
				return fmt.Errorf("nats: subject %q: control byte %#x", s, tok[i])
			}
		}
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("nats: subject %q is not valid UTF-8", s)
	}
	return nil
}

// Token makes s usable as one subject token: '.', '*', '>', space,
// control bytes, DEL and bytes that are not valid UTF-8 become '_' (valid
// UTF-8 letters stay), and the empty source is "_". Different sources may
// meet in one token (a.b and a_b); the message body has the exact source.
func Token(s string) string {
	if s == "" {
		return "_"
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, '_')
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		if c <= ' ' || c == '.' || c == '*' || c == '>' || c == 0x7f {
			c = '_'
		}
		b = append(b, c)
		i++
	}
	return string(b)
}

// MsgID is an entry's message id (empty for logforward's own notices,
// which have no sequence number).
func MsgID(m *drain.Message) string {
	if m.Rec.Seq == 0 || m.Instance == "" {
		return ""
	}
	return m.Instance + "-" + strconv.FormatUint(m.Rec.Seq, 10)
}

type sender struct {
	o    *Options
	cl   *Client
	buf  []byte
	data []byte
}

func (s *sender) Close() error {
	if s.cl != nil {
		s.cl.Close()
		s.cl = nil
	}
	return nil
}

type pubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// Deliver implements batch.Sender.
func (s *sender) Deliver(ctx context.Context, msgs []drain.Message) batch.Result {
	if s.cl == nil {
		cl, err := Dial(ctx, s.o.Addr, s.o.User, s.o.Pass, s.o.Timeout)
		if err != nil {
			var se *ServerError
			return batch.Result{Err: fmt.Errorf("connecting to nats %s: %w", s.o.Addr, err), Refused: errors.As(err, &se)}
		}
		s.cl = cl
	}
	s.buf = s.buf[:0]
	f := httpdrain.NewFields(&s.o.Meta, "time", "msg")
	for i := range msgs {
		m := &msgs[i]
		subject := strings.ReplaceAll(s.o.Subject, "{source}", Token(m.Rec.Source))
		s.data = append(s.data[:0], '{')
		s.data = f.Append(s.data, m)
		s.data = append(s.data, '}')
		var hdr []string
		if id := MsgID(m); id != "" {
			hdr = []string{"Nats-Msg-Id: " + id}
		}
		s.buf = AppendHPUB(s.buf, subject, s.cl.Inbox(i), hdr, s.data)
	}
	deadline := time.Now().Add(s.o.Timeout)
	if err := s.cl.Write(s.buf, deadline); err != nil {
		s.Close()
		return batch.Result{Err: fmt.Errorf("nats %s: %w", s.o.Addr, err)}
	}
	got := make([]bool, len(msgs))
	var res batch.Result
	var failed, noStream []int
	var noStreamSubject string
	for left := len(msgs); left > 0; {
		m, err := s.cl.Next(deadline)
		if err != nil {
			s.Close()
			// Messages not acknowledged are sent again (same ids).
			return batch.Result{Err: fmt.Errorf("nats %s: waiting for JetStream acks (%d of %d): %w", s.o.Addr, len(msgs)-left, len(msgs), err)}
		}
		tok, ok := strings.CutPrefix(m.Subject, s.cl.inbox+".")
		i, err := strconv.Atoi(tok)
		if !ok || err != nil || i < 0 || i >= len(msgs) || got[i] {
			continue // a late reply from an earlier batch
		}
		got[i] = true
		left--
		if m.Status == "503" {
			noStream = append(noStream, i)
			noStreamSubject = strings.ReplaceAll(s.o.Subject, "{source}", Token(msgs[i].Rec.Source))
			continue
		}
		var a pubAck
		if err := json.Unmarshal(m.Data, &a); err != nil {
			failed = append(failed, i)
			res.Reason = fmt.Sprintf("JetStream ack %q: %v", m.Data, err)
			continue
		}
		if a.Error != nil {
			failed = append(failed, i)
			res.Reason = fmt.Sprintf("JetStream: %d %s", a.Error.Code, a.Error.Description)
		}
	}
	if len(noStream) > 0 {
		// No responders: either no stream exists for this drain's
		// subjects yet (retried until an operator creates it) or one
		// does and does not capture these sources' subjects, which no
		// retry can change: those entries are rejected, counted and
		// logged, rather than holding the drain back for ever.
		names, err := s.cl.streamNames(strings.ReplaceAll(s.o.Subject, "{source}", "*"), deadline)
		switch {
		case err != nil:
			s.Close()
			return batch.Result{Err: fmt.Errorf("nats %s: asking JetStream which streams capture %s: %w", s.o.Addr, s.o.Subject, err)}
		case len(names) > 0 && strings.Contains(s.o.Subject, "{source}"):
			res.Rejected += len(noStream)
			res.Reason = fmt.Sprintf("JetStream stream(s) %s capture subjects of %s but not %s: %d entries rejected", strings.Join(names, ", "), s.o.Subject, noStreamSubject, len(noStream))
		default:
			failed = append(failed, noStream...)
			sort.Ints(failed)
			res.Reason = "no JetStream stream takes subject " + noStreamSubject + " (503 no responders)"
		}
	}
	if len(failed) > 0 {
		// A missing stream or a full one: retried (never dropped);
		// the operator sees the reason in the log and the status.
		res.Retry = failed
	}
	return res
}
