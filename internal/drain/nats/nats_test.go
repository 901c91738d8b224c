package nats

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

// sink is a net.Conn that takes writes and has no deadlines.
type sink struct {
	net.Conn
	out bytes.Buffer
}

func (s *sink) Write(b []byte) (int, error)      { return s.out.Write(b) }
func (s *sink) SetReadDeadline(time.Time) error  { return nil }
func (s *sink) SetWriteDeadline(time.Time) error { return nil }
func (s *sink) SetDeadline(time.Time) error      { return nil }
func (s *sink) Close() error                     { return nil }

func client(in string) (*Client, *sink) {
	s := &sink{}
	return &Client{c: s, r: bufio.NewReader(strings.NewReader(in)), inbox: "_INBOX.x"}, s
}

func TestNext(t *testing.T) {
	cl, s := client("+OK\r\nPING\r\nMSG _INBOX.x.3 1 5\r\nhello\r\nHMSG _INBOX.x.4 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n-ERR 'Authorization Violation'\r\n")
	m, err := cl.Next(time.Time{})
	if err != nil || m.Subject != "_INBOX.x.3" || string(m.Data) != "hello" || s.out.String() != "PONG\r\n" {
		t.Fatalf("%+v %v %q", m, err, s.out.String())
	}
	m, err = cl.Next(time.Time{})
	if err != nil || m.Status != "503" || len(m.Data) != 0 {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := cl.Next(time.Time{}); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("%v", err)
	}
	got := string(AppendHPUB(nil, "logs.a", "_INBOX.x.0", []string{"Nats-Msg-Id: i-1"}, []byte("{}")))
	if want := "HPUB logs.a _INBOX.x.0 30 32\r\nNATS/1.0\r\nNats-Msg-Id: i-1\r\n\r\n{}\r\n"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
	if Token("a.b *c>") != "a_b__c_" || CheckSubject("logs.{source}") != nil || CheckSubject("a..b") == nil || CheckSubject("a.>") == nil {
		t.Fatal("subjects")
	}
}

// Whatever a server sends, the client returns a message or an error:
// never a panic, a payload longer than announced, or a huge allocation
// from a length alone.
func FuzzNext(f *testing.F) {
	for _, s := range []string{"MSG a 1 5\r\nhello\r\n", "MSG a 1 r 0\r\n\r\n", "HMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", "HMSG a 1 20 10\r\n",
		"MSG a 1 67108864\r\n", "PING\r\n", "-ERR x\r\n", "MSG a 1 -1\r\n", "bogus\r\n", "MSG a 1 3\r\nabcd\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cl, _ := client(string(b))
		for range 10 {
			m, err := cl.Next(time.Time{})
			if err != nil {
				return
			}
			if len(m.Header)+len(m.Data) > len(b) {
				t.Fatalf("%d bytes of message from %d of input", len(m.Header)+len(m.Data), len(b))
			}
		}
	})
}
