package logforward

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/relp"
	"github.com/lklog/lklog/internal/drain/syslog"
	"github.com/lklog/lklog/internal/forward/config"
	"github.com/lklog/lklog/internal/syslogfmt"
)

// newDest makes the destination of a parsed drain.
func newDest(p config.Parsed, hostname string, logf func(string, ...any)) (drain.Destination, error) {
	if config.Batching(p.Scheme) {
		return newBatchDest(p, hostname, logf)
	}
	f := syslogfmt.Formatter{Hostname: hostname, RFC3164: p.Format == "rfc3164"}
	var tc *tls.Config
	if strings.HasSuffix(p.Scheme, "+tls") {
		o := drain.TLSOptions{CA: p.TLS.CA, Cert: p.TLS.Cert, Key: p.TLS.Key, ServerName: p.TLS.ServerName, Insecure: p.TLS.InsecureSkipVerify}
		var err error
		if tc, err = o.Config(p.Host); err != nil {
			return nil, drain.Permanent(err)
		}
		if o.Insecure {
			logf("WARNING: drain %s (%s): the server's TLS certificate is NOT verified (insecure): anyone on the path can read and change these logs", p.ID, config.Redact(p.URL))
		}
	}
	switch p.Scheme {
	case "syslog", "syslog+tcp", "syslog+tls":
		return syslog.New(syslog.Options{Network: "tcp", Addr: p.Addr, TLS: tc, Framing: p.Framing, Format: f, WindowSize: p.Window})
	case "syslog+udp":
		return syslog.New(syslog.Options{Network: "udp", Addr: p.Addr, Format: f, MaxDatagram: p.MaxDatagram, WindowSize: p.Window})
	case "relp", "relp+tls":
		return relp.New(relp.Options{Addr: p.Addr, TLS: tc, Format: f, WindowSize: p.Window})
	}
	return nil, fmt.Errorf("scheme %q not supported", p.Scheme)
}
