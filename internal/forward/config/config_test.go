package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lklog/lklog/internal/vm/yml"
)

func TestParseURL(t *testing.T) {
	d := Drain{URL: "syslog+tls://logs.example.com?ca=/etc/ca.pem&servername=x&sources=a*,b&severity=warning&spool=10M"}
	p, err := d.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr != "logs.example.com:6514" || p.TLS.CA != "/etc/ca.pem" || p.TLS.ServerName != "x" ||
		strings.Join(p.Sources, "|") != "a*|b" || *p.MinSeverity != 4 || p.SpoolBytes != 10<<20 || !ValidID(p.ID) {
		t.Fatalf("%+v", p)
	}
	// The same drain gets the same ID.
	d2 := Drain{URL: d.URL}
	p2, _ := d2.Parse()
	if p2.ID != p.ID {
		t.Fatalf("ids %s %s", p.ID, p2.ID)
	}
	for _, c := range []struct{ url, want string }{
		{"syslog+udp://h", "h:514"}, {"relp://[::1]:2000", "[::1]:2000"}, {"syslog://h:1", "h:1"},
	} {
		d := Drain{URL: c.url}
		if p, err := d.Parse(); err != nil || p.Addr != c.want {
			t.Errorf("%s: %v %v", c.url, p.Addr, err)
		}
	}
	for _, bad := range []string{
		"ftp://h", "http://h?ca=x", "syslog://", "syslog://h:99999", "syslog://h?ca=x", "syslog+udp://h?framing=lf",
		"syslog+udp://h?maxsize=100", "syslog://h?bogus=1", "syslog://h?severity=loud", "syslog://h/path",
		"syslog://h?sources=[", "syslog://h?id=a/b", "relp://h?format=json",
	} {
		d := Drain{URL: bad}
		if _, err := d.Parse(); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestRedact(t *testing.T) {
	d := Drain{URL: "syslog+tls://user:hunter2@h?token=abc&bogus=1"}
	_, err := d.Parse()
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "abc") {
		t.Fatalf("error %v", err)
	}
	if got := Redact("relp://u:p@h:1"); got != "relp://u:xxxxx@h:1" {
		t.Fatal(got)
	}
	if got := Redact("relp://u:p@h:1%zz"); strings.Contains(got, "u:p") {
		t.Fatal(got)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "url")
	os.WriteFile(urlFile, []byte("relp://user:secret@10.0.0.1:2514\n"), 0o600)
	good := filepath.Join(dir, "good.yml")
	os.WriteFile(good, []byte(`hostname: vm1
drains:
  - id: central
    url: syslog+tls://logs:6514
    sources: ["onboot.*", sshd]
    exclude: [noisy]
    severity: info
    spool_bytes: 1048576
    tls:
      ca: /etc/ca.pem
      cert: /etc/c.pem
      key: /etc/k.pem
  - url_file: `+urlFile+`
`), 0o600)
	f, err := LoadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Hostname != "vm1" || len(f.Drains) != 2 || f.Drains[0].ID != "central" || f.Drains[0].TLS.Key != "/etc/k.pem" || f.Drains[1].URL != "relp://user:secret@10.0.0.1:2514" {
		t.Fatalf("%+v", f)
	}
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("drains:\n  - url: syslog://h\n    colour: red\n"), 0o600)
	if _, err := LoadFile(bad); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"10": 10, "4K": 4096, "1MiB": 1 << 20, "2g": 2 << 30} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1T"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The configuration examples/forward.yml drops into the image parses.
func TestExampleConfig(t *testing.T) {
	src, err := os.ReadFile("../../../examples/forward.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := yml.ParseConfig(string(src))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range cfg.Files {
		if f.Path != "etc/logforward/forward.yml" {
			continue
		}
		found = true
		p := filepath.Join(t.TempDir(), "forward.yml")
		os.WriteFile(p, []byte(f.Contents), 0o600)
		c, err := LoadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Drains) != 2 || c.Drains[0].TLS.CA != "/etc/logforward/ca.pem" || c.Drains[1].Severity != "warning" {
			t.Fatalf("%+v", c)
		}
	}
	if !found {
		t.Fatal("examples/forward.yml has no etc/logforward/forward.yml")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("syslog+tls://u:secret@h:6514?ca=/x&sources=a*,b&severity=warning&spool=1M")
	f.Add("relp://[::1]?window=5")
	f.Add("syslog+udp://h?maxsize=480")
	f.Fuzz(func(t *testing.T, u string) {
		d := Drain{URL: u}
		p, err := d.Parse()
		if err != nil {
			if strings.Contains(err.Error(), "secret") && !strings.Contains(u, "secret@") && strings.Contains(u, "secret") {
				return // the word is elsewhere in the URL, not a password
			}
			if strings.Contains(u, ":secret@") && strings.Contains(err.Error(), ":secret@") {
				t.Fatalf("password in error: %v", err)
			}
			return
		}
		if !ValidID(p.ID) || p.Addr == "" || p.Host == "" {
			t.Fatalf("parsed %q as %+v", u, p)
		}
		if _, err := ParseBytes(strings.TrimPrefix(u, "syslog")); err == nil && u == "" {
			t.Fatal("empty size parsed")
		}
	})
}

// HTTP, Redis and NATS URLs keep their path, user and the options this
// package does not know (for the destination to check); YAML options win.
func TestParseBatchingURL(t *testing.T) {
	d := Drain{URL: "elasticsearch+https://u:pw@h/base/?index=logs-%25Y&arg._msg_field=message&sources=app&ca=/c.pem", Options: map[string]string{"index": "yaml"}}
	p, err := d.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr != "h:9200" || p.Path != "/base/" || p.User.Username() != "u" || p.TLS.CA != "/c.pem" || len(p.Sources) != 1 {
		t.Fatalf("%+v", p)
	}
	if p.Options.Get("index") != "yaml" || p.Options.Get("arg._msg_field") != "message" || p.Options.Has("sources") {
		t.Fatalf("options %v", p.Options)
	}
	for _, c := range []struct{ url, want string }{
		{"http://h", "h:80"}, {"https://h", "h:443"}, {"loki+http://h", "h:3100"}, {"otlp+http://h", "h:4318"},
		{"redis://h/2", "h:6379"}, {"nats://h?subject=x", "h:4222"},
	} {
		d := Drain{URL: c.url}
		if p, err := d.Parse(); err != nil || p.Addr != c.want {
			t.Errorf("%s: %v %v", c.url, p.Addr, err)
		}
	}
}

// Headers that carry credentials (header.Authorization, API keys) are
// hidden like passwords.
func TestRedactHeaders(t *testing.T) {
	r := Redact("http://h/x?header.Authorization=Bearer+abc&header.X-Api-Key=k1&arg.q=1")
	if strings.Contains(r, "abc") || strings.Contains(r, "k1") || !strings.Contains(r, "q=1") {
		t.Fatal(r)
	}
}
