package logforward

import (
	"crypto/tls"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/drain/elastic"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/drain/jsonlines"
	"github.com/lklog/lklog/internal/drain/loki"
	"github.com/lklog/lklog/internal/drain/nats"
	"github.com/lklog/lklog/internal/drain/otlp"
	"github.com/lklog/lklog/internal/drain/redis"
	"github.com/lklog/lklog/internal/forward/config"
	"github.com/lklog/lklog/internal/syslogfmt"
)

// bootID is the kernel's boot id (memlogd runs on the same kernel).
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// newBatchDest makes an HTTP, Redis or NATS destination. Its options
// (the URL's query or the YAML options) are checked here: unknown ones
// are errors.
func newBatchDest(p config.Parsed, hostname string, logf func(string, ...any)) (drain.Destination, error) {
	o := batch.NewOpts(p.Options)
	bo := batch.Options{Name: "drain " + p.ID, Logf: logf}
	var tc *tls.Config
	if p.Scheme == "https" || strings.HasSuffix(p.Scheme, "+https") || p.Scheme == "rediss" {
		t := drain.TLSOptions{CA: p.TLS.CA, Cert: p.TLS.Cert, Key: p.TLS.Key, ServerName: p.TLS.ServerName, Insecure: p.TLS.InsecureSkipVerify}
		var err error
		if tc, err = t.Config(p.Host); err != nil {
			return nil, drain.Permanent(err)
		}
		if t.Insecure {
			logf("WARNING: drain %s (%s): the server's TLS certificate is NOT verified (insecure): anyone on the path can read and change these logs", p.ID, config.Redact(p.URL))
		}
	}
	meta := httpdrain.Meta{Host: hostname, Boot: bootID()}
	var d drain.Destination
	var err error
	switch p.Scheme {
	case "http", "https", "elasticsearch+http", "elasticsearch+https", "loki+http", "loki+https", "otlp+http", "otlp+https":
		d, err = newHTTP(p, o, bo, tc, meta, hostname)
	case "redis", "rediss":
		d, err = newRedis(p, o, bo, tc, hostname)
	case "nats":
		no := nats.Options{Addr: p.Addr, Subject: o.Str("subject", "logs.{source}"), Meta: meta,
			Timeout: o.Duration("timeout", 10*time.Second, time.Hour)}
		if p.User != nil {
			no.User = p.User.Username()
			no.Pass, _ = p.User.Password()
		}
		if p.Format != "" || (p.Path != "" && p.Path != "/") {
			return nil, fmt.Errorf("drain %s: a NATS URL has no path and no format", config.Redact(p.URL))
		}
		bo.Read(o, 1)
		d, err = nats.New(no, bo)
	default:
		err = fmt.Errorf("scheme %q not supported", p.Scheme)
	}
	if err != nil {
		return nil, err
	}
	if err := o.Err(); err != nil {
		return nil, fmt.Errorf("drain %s: %w", config.Redact(p.URL), err)
	}
	return d, nil
}

func newHTTP(p config.Parsed, o *batch.Opts, bo batch.Options, tc *tls.Config, meta httpdrain.Meta, hostname string) (drain.Destination, error) {
	api, scheme, ok := strings.Cut(p.Scheme, "+")
	if !ok {
		api, scheme = "", p.Scheme
	}
	ho := httpdrain.Options{
		Base:      &url.URL{Scheme: scheme, Host: p.Addr, Path: p.Path},
		TokenFile: o.Str("token_file", ""),
		Headers:   http.Header{},
		Args:      o.Prefixed("arg."),
		TLS:       tc,
		Timeout:   o.Duration("timeout", 30*time.Second, time.Hour),
	}
	if p.User != nil {
		ho.User = p.User.Username()
		ho.Password, _ = p.User.Password()
	}
	for k, vs := range o.Prefixed("header.") {
		for _, v := range vs {
			ho.Headers.Add(k, v)
		}
	}
	bo.Read(o, 2)
	switch api {
	case "":
		switch p.Format {
		case "", "json":
			ho.Protocol = &jsonlines.JSON{Meta: meta}
		case "syslog":
			ho.Protocol = &jsonlines.Syslog{Format: syslogfmt.Formatter{Hostname: hostname}}
		default:
			return nil, fmt.Errorf("drain %s: format %q: want json or syslog", config.Redact(p.URL), p.Format)
		}
		ho.Gzip = o.Bool("gzip", false)
	case "elasticsearch":
		b := &elastic.Bulk{Index: o.Str("index", elastic.DefaultIndex), Meta: meta}
		if err := elastic.CheckIndex(strings.NewReplacer("%Y", "2006", "%m", "01", "%d", "02", "%H", "15").Replace(b.Index)); err != nil {
			return nil, fmt.Errorf("drain %s: %w", config.Redact(p.URL), err)
		}
		ho.Protocol = b
		ho.Gzip = o.Bool("gzip", false)
	case "loki":
		l := &loki.Push{Labels: o.List("labels", []string{"host", "source", "severity"}), Meta: meta}
		if err := loki.CheckLabels(l.Labels); err != nil {
			return nil, fmt.Errorf("drain %s: %w", config.Redact(p.URL), err)
		}
		ho.Protocol = l
		ho.Gzip = o.Bool("gzip", true)
	case "otlp":
		ho.Protocol = &otlp.Logs{Meta: meta}
		ho.Gzip = o.Bool("gzip", true)
	}
	if p.Format != "" && api != "" {
		return nil, fmt.Errorf("drain %s: format applies to http(s) drains only", config.Redact(p.URL))
	}
	d, err := httpdrain.New(ho, bo)
	if err != nil {
		return nil, err
	}
	return d.Dest, nil
}

func newRedis(p config.Parsed, o *batch.Opts, bo batch.Options, tc *tls.Config, hostname string) (drain.Destination, error) {
	ro := redis.Options{Addr: p.Addr, TLS: tc, Key: o.Str("redis_key", "logtube"),
		Stream:  o.OneOf("type", "list", "list", "stream") == "stream",
		MaxLen:  o.Int("maxlen", 1000000, 1, math.MaxInt32),
		Timeout: o.Duration("timeout", 10*time.Second, time.Hour),
		Event: redis.Event{Host: hostname, Env: o.Str("env", "default"), Project: o.Str("project", "lklog"),
			Topic: o.OneOf("topic", "severity", "severity", "source")},
	}
	switch p.Format {
	case "", "compact":
	case "standard":
		ro.Event.Standard = true
	default:
		return nil, fmt.Errorf("drain %s: format %q: want compact or standard", config.Redact(p.URL), p.Format)
	}
	if db := strings.Trim(p.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("drain %s: the path is the database number, not %q", config.Redact(p.URL), db)
		}
		ro.DB = n
	}
	if p.User != nil {
		pw, ok := p.User.Password()
		if ok {
			ro.User, ro.Password = p.User.Username(), pw
			if ro.User == "default" {
				ro.User = ""
			}
		} else {
			// redis://:password@ and redis://password@ both mean a
			// password alone.
			ro.Password = p.User.Username()
		}
	}
	bo.Read(o, 1)
	return redis.New(ro, bo)
}
