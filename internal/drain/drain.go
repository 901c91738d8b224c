// Package drain is the narrow interface between logforward's core and its
// destinations (syslog over UDP, TCP and TLS, RELP, and later HTTP and
// streaming ones): a Destination connects, a Conn takes messages in order
// and says how many of them the peer has taken. The core keeps what is not
// acknowledged and sends it again on the next connection.
package drain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/lklog/lklog/internal/logproto"
)

// Message is one entry to deliver, with the memlogd instance it came from.
type Message struct {
	Instance string
	Rec      logproto.Record
}

// Destination is where a drain delivers.
type Destination interface {
	// Connect opens a new connection (resolving the name again). An
	// error that retrying cannot fix is wrapped with Permanent.
	Connect(ctx context.Context) (Conn, error)
	// Window is the most messages that may be sent and not yet
	// acknowledged.
	Window() int
}

// Conn is one connection to a destination. Its methods are called from
// one goroutine.
type Conn interface {
	// Send sends msgs after those sent before on this connection.
	Send(msgs []Message) error
	// Acked returns how many of the messages sent on this connection
	// the peer has taken so far, in order. Unless the peer has taken
	// all, it waits up to wait for it to take more. An error means the
	// connection is broken: what was not acknowledged must be sent
	// again on a new one.
	Acked(ctx context.Context, wait time.Duration) (uint64, error)
	// Close closes the connection.
	Close() error
}

// PermanentError marks an error that retrying does not fix (a refused
// certificate, a bad configuration).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is, or wraps, a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// TLSOptions are the TLS settings of a destination.
type TLSOptions struct {
	CA         string // PEM file of the roots to trust; empty: the system's
	Cert, Key  string // client certificate and key (PEM files) for mutual TLS
	ServerName string // name to verify; empty: the host of the address
	// Insecure skips verifying the server's certificate. The caller
	// must say so loudly.
	Insecure bool
}

// Config builds a tls.Config (TLS 1.2 at least) for a server at host.
func (o *TLSOptions) Config(host string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName, InsecureSkipVerify: o.Insecure}
	if c.ServerName == "" {
		c.ServerName = host
	}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CA)
		}
		c.RootCAs = pool
	}
	if o.Cert != "" || o.Key != "" {
		if o.Cert == "" || o.Key == "" {
			return nil, errors.New("a client certificate needs both cert and key")
		}
		kp, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}

// Handshake runs the TLS client handshake on raw and classifies a refused
// certificate as permanent.
func Handshake(ctx context.Context, raw net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		err = fmt.Errorf("TLS handshake with %s: %w", raw.RemoteAddr(), err)
		if CertError(err) {
			return nil, Permanent(err)
		}
		return nil, err
	}
	return c, nil
}

// CertError reports whether err is a certificate that was refused, on
// either side.
func CertError(err error) bool {
	var (
		ve *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
		ae tls.AlertError
	)
	if errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) {
		return true
	}
	// The server refused our certificate (or its absence).
	if errors.As(err, &ae) {
		switch uint8(ae) {
		case 42, 43, 44, 45, 46, 48, 116: // bad/unsupported/revoked/expired/unknown certificate, unknown CA, certificate required
			return true
		}
	}
	return false
}

// Report is what a destination that batches and retries on its own
// (HTTP, Redis, NATS) says about its deliveries; logforward's status
// shows it.
type Report struct {
	// Batches delivered, Retries of a batch (or of its failed items),
	// Rejected entries the receiver refused for good (logged with the
	// reason; they are not sent again).
	Batches  uint64 `json:"batches"`
	Retries  uint64 `json:"retries"`
	Rejected uint64 `json:"rejected"`
	// Retrying is set while a batch waits to be sent again; LastError
	// says why.
	Retrying  bool   `json:"retrying,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Reporter is implemented by destinations that have a Report.
type Reporter interface {
	Report() Report
}
