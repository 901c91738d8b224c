// Package config reads logforward's drains: URLs with query options
// (`-drain syslog+tls://host:6514?ca=/etc/ca.pem`) and a YAML file with
// routes, TLS files and secrets read from files.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lklog/lklog/internal/logproto"
)

// Schemes logforward delivers to.
var Schemes = []string{"syslog", "syslog+tcp", "syslog+udp", "syslog+tls", "relp", "relp+tls",
	"http", "https", "elasticsearch+http", "elasticsearch+https", "loki+http", "loki+https",
	"otlp+http", "otlp+https", "redis", "rediss", "nats"}

// Batching reports whether a scheme is one of the request-based
// destinations (HTTP APIs, Redis, NATS): their URLs have a path, and
// query options this package does not know are kept in Parsed.Options
// for the destination to check.
func Batching(scheme string) bool {
	return !strings.HasPrefix(scheme, "syslog") && !strings.HasPrefix(scheme, "relp")
}

// Drain is one destination and its route.
type Drain struct {
	ID  string `yaml:"id,omitempty" json:"id,omitempty"`
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// URLFile names a file holding the URL (for URLs with credentials).
	URLFile    string   `yaml:"url_file,omitempty" json:"url_file,omitempty"`
	Sources    []string `yaml:"sources,omitempty" json:"sources,omitempty"`
	Exclude    []string `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	Severity   string   `yaml:"severity,omitempty" json:"severity,omitempty"`
	SpoolBytes int64    `yaml:"spool_bytes,omitempty" json:"spool_bytes,omitempty"`
	// Format is rfc5424 (default) or rfc3164.
	Format string `yaml:"format,omitempty" json:"format,omitempty"`
	// Framing is octet (default) or lf, for syslog over TCP and TLS.
	Framing     string `yaml:"framing,omitempty" json:"framing,omitempty"`
	MaxDatagram int    `yaml:"max_datagram,omitempty" json:"max_datagram,omitempty"`
	Window      int    `yaml:"window,omitempty" json:"window,omitempty"`
	TLS         TLS    `yaml:"tls,omitempty" json:"tls,omitzero"`
	// Options of HTTP, Redis and NATS destinations (as in the URL's
	// query; those in the URL apply where these do not set them).
	Options map[string]string `yaml:"options,omitempty" json:"options,omitempty"`
}

// TLS holds a drain's TLS files.
type TLS struct {
	CA                 string `yaml:"ca,omitempty" json:"ca,omitempty"`
	Cert               string `yaml:"cert,omitempty" json:"cert,omitempty"`
	Key                string `yaml:"key,omitempty" json:"key,omitempty"`
	ServerName         string `yaml:"servername,omitempty" json:"servername,omitempty"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// File is the YAML configuration file.
type File struct {
	Hostname string  `yaml:"hostname"`
	Drains   []Drain `yaml:"drains"`
}

// Parsed is a drain with its URL taken apart.
type Parsed struct {
	Drain
	Scheme string
	Addr   string // host:port
	Host   string
	// MinSeverity is the route's severity bound (nil: all).
	MinSeverity *int
	// Path, User and Options of HTTP, Redis and NATS destinations.
	Path    string
	User    *url.Userinfo
	Options url.Values
}

// DefaultPorts per scheme.
var defaultPorts = map[string]string{"syslog": "514", "syslog+tcp": "514", "syslog+udp": "514", "syslog+tls": "6514", "relp": "2514", "relp+tls": "2514",
	"http": "80", "https": "443", "elasticsearch+http": "9200", "elasticsearch+https": "9200", "loki+http": "3100", "loki+https": "3100",
	"otlp+http": "4318", "otlp+https": "4318", "redis": "6379", "rediss": "6379", "nats": "4222"}

// LoadFile reads and checks a YAML configuration file. Unknown keys are
// errors.
func LoadFile(p string) (File, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return File{}, fmt.Errorf("reading configuration: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return File{}, fmt.Errorf("configuration %s: %w", p, err)
	}
	for i := range f.Drains {
		if _, err := f.Drains[i].Parse(); err != nil {
			return File{}, fmt.Errorf("configuration %s: drain %d: %w", p, i+1, err)
		}
	}
	return f, nil
}

// Parse checks d, reads its URL file, applies the URL's query options to
// the fields that are not set, and gives it an ID (derived from its URL
// and route) if it has none. Errors never hold a password.
func (d *Drain) Parse() (Parsed, error) {
	if d.URLFile != "" {
		b, err := os.ReadFile(d.URLFile)
		if err != nil {
			return Parsed{}, fmt.Errorf("reading url_file: %w", err)
		}
		d.URL = strings.TrimSpace(string(b))
	}
	if d.URL == "" {
		return Parsed{}, errors.New("drain without url")
	}
	u, err := url.Parse(d.URL)
	if err != nil {
		return Parsed{}, fmt.Errorf("drain URL %s: not a URL", Redact(d.URL))
	}
	p := Parsed{Drain: *d, Scheme: strings.ToLower(u.Scheme)}
	port, ok := defaultPorts[p.Scheme]
	if !ok {
		return Parsed{}, fmt.Errorf("drain URL %s: scheme %q: want one of %s", Redact(d.URL), u.Scheme, strings.Join(Schemes, ", "))
	}
	p.Host = u.Hostname()
	if p.Host == "" {
		return Parsed{}, fmt.Errorf("drain URL %s: no host", Redact(d.URL))
	}
	if u.Port() != "" {
		port = u.Port()
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Parsed{}, fmt.Errorf("drain URL %s: port %q", Redact(d.URL), port)
	}
	p.Addr = net.JoinHostPort(p.Host, port)
	if Batching(p.Scheme) {
		p.Path, p.User, p.Options = u.Path, u.User, url.Values{}
		for k, v := range d.Options {
			p.Options.Set(k, v)
		}
	} else if u.Path != "" && u.Path != "/" {
		return Parsed{}, fmt.Errorf("drain URL %s: a syslog or RELP URL has no path", Redact(d.URL))
	}
	for k, vs := range u.Query() {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "ca":
			setStr(&p.TLS.CA, v)
		case "cert":
			setStr(&p.TLS.Cert, v)
		case "key":
			setStr(&p.TLS.Key, v)
		case "servername":
			setStr(&p.TLS.ServerName, v)
		case "insecure":
			var b bool
			b, err = strconv.ParseBool(v)
			p.TLS.InsecureSkipVerify = p.TLS.InsecureSkipVerify || b
		case "framing":
			setStr(&p.Framing, v)
		case "format":
			setStr(&p.Format, v)
		case "maxsize":
			if p.MaxDatagram == 0 {
				p.MaxDatagram, err = strconv.Atoi(v)
			}
		case "window":
			if p.Window == 0 {
				p.Window, err = strconv.Atoi(v)
			}
		case "spool":
			if p.SpoolBytes == 0 {
				p.SpoolBytes, err = ParseBytes(v)
			}
		case "severity":
			setStr(&p.Drain.Severity, v)
		case "sources":
			if len(p.Sources) == 0 {
				p.Sources = splitList(vs)
			}
		case "exclude":
			if len(p.Exclude) == 0 {
				p.Exclude = splitList(vs)
			}
		case "id":
			setStr(&p.ID, v)
		default:
			if Batching(p.Scheme) {
				if _, set := d.Options[k]; !set {
					p.Options[k] = vs
				}
				continue
			}
			return Parsed{}, fmt.Errorf("drain URL %s: unknown option %q", Redact(d.URL), k)
		}
		if err != nil {
			return Parsed{}, fmt.Errorf("drain URL %s: option %s=%q: %w", Redact(d.URL), k, v, err)
		}
	}
	tlsScheme := strings.HasSuffix(p.Scheme, "+tls") || strings.HasSuffix(p.Scheme, "https") || p.Scheme == "rediss"
	if !tlsScheme && (p.TLS != TLS{}) {
		return Parsed{}, fmt.Errorf("drain %s: TLS options on a scheme without TLS", Redact(d.URL))
	}
	switch p.Format {
	case "", "rfc5424", "rfc3164":
	default:
		if Batching(p.Scheme) {
			break // the destination checks it
		}
		return Parsed{}, fmt.Errorf("drain %s: format %q: want rfc5424 or rfc3164", Redact(d.URL), p.Format)
	}
	switch p.Framing {
	case "", "octet", "lf":
		if p.Framing != "" && !strings.HasPrefix(p.Scheme, "syslog") || p.Framing != "" && p.Scheme == "syslog+udp" {
			return Parsed{}, fmt.Errorf("drain %s: framing applies to syslog over TCP and TLS only", Redact(d.URL))
		}
	default:
		return Parsed{}, fmt.Errorf("drain %s: framing %q: want octet or lf", Redact(d.URL), p.Framing)
	}
	if p.MaxDatagram != 0 && (p.Scheme != "syslog+udp" || p.MaxDatagram < 480 || p.MaxDatagram > 65507) {
		return Parsed{}, fmt.Errorf("drain %s: maxsize %d: UDP only, 480..65507", Redact(d.URL), p.MaxDatagram)
	}
	if p.Window < 0 || p.Window > 1000000 || p.SpoolBytes < 0 {
		return Parsed{}, fmt.Errorf("drain %s: window or spool size out of range", Redact(d.URL))
	}
	if p.Drain.Severity != "" {
		n, err := logproto.ParseSeverity(p.Drain.Severity)
		if err != nil {
			return Parsed{}, fmt.Errorf("drain %s: %w", Redact(d.URL), err)
		}
		p.MinSeverity = &n
		p.Drain.Severity = logproto.SeverityNames[n]
	}
	for _, g := range append(append([]string{}, p.Sources...), p.Exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return Parsed{}, fmt.Errorf("drain %s: glob %q: %w", Redact(d.URL), g, err)
		}
	}
	if len(p.Sources)+len(p.Exclude) > 30 {
		return Parsed{}, fmt.Errorf("drain %s: at most 30 source globs in all", Redact(d.URL))
	}
	if p.ID == "" {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%q\x00%q\x00%s", d.URL, p.Sources, p.Exclude, p.Drain.Severity)
		p.ID = "d" + hex.EncodeToString(h.Sum(nil))[:10]
	}
	if !ValidID(p.ID) {
		return Parsed{}, fmt.Errorf("drain id %q: want 1-64 letters, digits, - and _", p.ID)
	}
	d.ID = p.ID
	return p, nil
}

// ValidID reports whether id can name a drain (and its spool directory).
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func setStr(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}

func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// ParseBytes reads a size: a number with an optional K, M or G (powers
// of 1024, with or without "iB").
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"):
		mult = 1 << 10
	case strings.HasSuffix(t, "M"):
		mult = 1 << 20
	case strings.HasSuffix(t, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a number with an optional K, M or G", s)
	}
	return n * mult, nil
}

// Redact hides the password in a URL's user info and the values of query
// options named like secrets.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Not parseable: show only the scheme, if there is one.
		if i := strings.Index(raw, "://"); i > 0 && i < 20 {
			return raw[:i] + "://(unparseable URL hidden)"
		}
		return "(unparseable URL hidden)"
	}
	if u.Opaque != "" || u.Host == "" {
		// Not scheme://host...: no telling where a password might be.
		return u.Scheme + "://(URL without a host hidden)"
	}
	u.Fragment, u.RawFragment = "", ""
	if strings.Contains(u.Path, "@") {
		u.Path, u.RawPath = "/(hidden)", ""
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	changed := false
	for k := range q {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "pass") || strings.Contains(lk, "token") || strings.Contains(lk, "secret") ||
			strings.Contains(lk, "auth") || strings.Contains(lk, "apikey") || strings.Contains(lk, "api-key") || strings.Contains(lk, "api_key") {
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
