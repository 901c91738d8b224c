// Package httpdrain delivers batches over HTTP(S) for logforward's HTTP
// destinations (JSON lines, HTTPS syslog drains, Elasticsearch _bulk,
// Loki, OTLP): one POST per batch to the base URL plus the API's
// endpoint, with basic or bearer authentication, extra headers and query
// arguments, optional gzip, and the retry rules: network errors, 408, 429
// and 5xx are retried (honouring Retry-After), 401, 403, 404, 405 and 407
// (a configuration an operator must fix) are retried slowly, and any
// other 4xx rejects the batch for good, logged and counted.
package httpdrain

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
)

// Protocol is one HTTP API.
type Protocol interface {
	// Endpoint is appended to the URL's path ("/_bulk").
	Endpoint() string
	// ContentType of the bodies.
	ContentType() string
	// Encode appends the body of msgs to dst and may set per-batch
	// headers.
	Encode(dst []byte, msgs []drain.Message, h http.Header) []byte
	// Check reads a 2xx reply to a batch of n entries (per-item
	// failures, partial success).
	Check(status int, body []byte, n int) batch.Result
}

// Options configure an HTTP destination.
type Options struct {
	Base     *url.URL // scheme, host and base path; user info is not used
	User     string   // basic authentication, if Password or User is set
	Password string
	// TokenFile holds a bearer token (read at each request, so it can
	// be rotated).
	TokenFile string
	Headers   http.Header
	Args      url.Values // extra query arguments
	Gzip      bool
	TLS       *tls.Config
	Timeout   time.Duration // per request (default 30 s)
	Protocol  Protocol
}

// Dest is an HTTP destination: a batch.Dest whose senders POST.
type Dest struct {
	*batch.Dest
}

// New returns an HTTP destination.
func New(o Options, bo batch.Options) (*Dest, error) {
	if o.Base == nil || (o.Base.Scheme != "http" && o.Base.Scheme != "https") || o.Base.Host == "" {
		return nil, errors.New("http: need an http or https base URL")
	}
	if o.Protocol == nil {
		return nil, errors.New("http: no protocol")
	}
	if err := CheckHeaders(o.Headers); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if err := checkTokenFile(o.TokenFile); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	u := *o.Base
	u.User = nil
	u.Path = strings.TrimSuffix(u.Path, "/") + o.Protocol.Endpoint()
	u.RawPath = ""
	q := u.Query()
	for k, vs := range o.Args {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	u.RawQuery = q.Encode()
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     o.TLS,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: max(bo.Parallel, 2),
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   o.TLS != nil,
	}
	client := &http.Client{Transport: tr, Timeout: o.Timeout}
	target := u.String()
	bo.NewSender = func() batch.Sender {
		return &sender{o: &o, client: client, url: target}
	}
	return &Dest{Dest: batch.New(bo)}, nil
}

type sender struct {
	o      *Options
	client *http.Client
	url    string
	body   []byte
	reply  []byte
	gz     bytes.Buffer
	zw     *gzip.Writer
}

// Close implements batch.Sender.
func (s *sender) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Deliver implements batch.Sender.
func (s *sender) Deliver(ctx context.Context, msgs []drain.Message) batch.Result {
	h := http.Header{}
	s.body = s.o.Protocol.Encode(s.body[:0], msgs, h)
	body := s.body
	if s.o.Gzip {
		s.gz.Reset()
		if s.zw == nil {
			s.zw, _ = gzip.NewWriterLevel(&s.gz, gzip.BestSpeed)
		} else {
			s.zw.Reset(&s.gz)
		}
		s.zw.Write(body)
		s.zw.Close()
		body = s.gz.Bytes()
		h.Set("Content-Encoding", "gzip")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return batch.Result{Err: fmt.Errorf("building the request: %w", err), Refused: true}
	}
	for k, vs := range s.o.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", s.o.Protocol.ContentType())
	req.Header.Set("User-Agent", "lklog-logforward")
	if s.o.User != "" || s.o.Password != "" {
		req.SetBasicAuth(s.o.User, s.o.Password)
	}
	if s.o.TokenFile != "" {
		tok, err := os.ReadFile(s.o.TokenFile)
		if err != nil {
			return batch.Result{Err: fmt.Errorf("reading the token file: %w", err), Refused: true}
		}
		if err := CheckToken(s.o.TokenFile, tok); err != nil {
			return batch.Result{Err: err, Refused: true}
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if cerr := drain.CertError(err); cerr {
			return batch.Result{Err: fmt.Errorf("POST %s: %w", s.url, err), Refused: true}
		}
		return batch.Result{Err: fmt.Errorf("POST %s: %w", s.url, err)}
	}
	var rerr error
	s.reply, rerr = readAll(s.reply[:0], io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	return Classify(resp.StatusCode, resp.Header, s.reply, rerr, len(msgs), s.o.Protocol)
}

// readAll is io.ReadAll appending to b (a sender's buffer, reused for
// every reply).
func readAll(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// Classify turns a reply into a batch.Result (see the package comment).
func Classify(status int, h http.Header, body []byte, readErr error, n int, p Protocol) batch.Result {
	reason := fmt.Sprintf("HTTP %d %s", status, snippet(body))
	switch {
	case status >= 200 && status < 300:
		if readErr != nil {
			// The reply was cut: what was taken is unknown, so
			// send it again (receivers that dedupe drop copies).
			return batch.Result{Err: fmt.Errorf("reading the reply: %w", readErr)}
		}
		return p.Check(status, body, n)
	case status == 408 || status == 429 || status >= 500:
		return batch.Result{Err: errors.New(reason), RetryAfter: RetryAfter(h.Get("Retry-After"), time.Now())}
	case status == 401 || status == 403 || status == 404 || status == 405 || status == 407:
		return batch.Result{Err: errors.New(reason + " (check the URL and credentials)"), Refused: true}
	default:
		return batch.Result{Rejected: n, Reason: reason}
	}
}

// RetryAfter reads a Retry-After header: seconds or an HTTP date. The wait
// is at most 10 minutes; 0 when absent or unreadable.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, 600)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), 10*time.Minute)
}

// snippet is the start of a reply body, printable, for a log line.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		b = b[:300]
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			r = ' '
		}
		sb.WriteRune(r)
	}
	if sb.Len() == 0 {
		return "(empty reply)"
	}
	return sb.String()
}
