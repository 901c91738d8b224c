package logforward

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

func tlsGlobal(p pki) string {
	return fmt.Sprintf(`DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q`, p.CA, p.ServerCert, p.ServerKey)
}

func TestSyslogTLS(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "test")
	r := startRsyslog(t, "tcp", tlsGlobal(p), `module(load="imtcp")`,
		`input(type="imtcp" address="127.0.0.1" port="%PORT%" ruleset="r" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`)
	d := testutil.StartWith(t, testutil.Options{Syslog: true, Args: []string{"-max-line-len", "70000"}})
	f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf("syslog+tls://localhost:%d?ca=%s", r.Port, p.CA))
	checkDelivery(t, r, d, f)
}

func TestSyslogMutualTLS(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "test")
	r := startRsyslog(t, "tcp", tlsGlobal(p), `module(load="imtcp")`,
		`input(type="imtcp" address="127.0.0.1" port="%PORT%" ruleset="r" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")`)
	d := testutil.StartWith(t, testutil.Options{Syslog: true, Args: []string{"-max-line-len", "70000"}})
	// The client certificate comes from a YAML configuration file.
	cfg := dir + "/forward.yml"
	os.WriteFile(cfg, []byte(fmt.Sprintf(`drains:
  - id: central
    url: syslog+tls://127.0.0.1:%d
    tls:
      ca: %s
      servername: localhost
      cert: %s
      key: %s
`, r.Port, p.CA, p.ClientCert, p.ClientKey)), 0o600)
	f := startForward(t, d, t.TempDir(), "-config", cfg)
	checkDelivery(t, r, d, f)
}

// A server whose certificate another CA signed is refused: nothing is
// sent, the status and the log say why, and logforward does not spin.
func TestTLSWrongCA(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "test")
	other := newPKI(t, dir, "other")
	r := startRsyslog(t, "tcp", tlsGlobal(p), `module(load="imtcp")`,
		`input(type="imtcp" address="127.0.0.1" port="%PORT%" ruleset="r" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")`)
	d := testutil.Start(t)
	f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf("syslog+tls://localhost:%d?ca=%s", r.Port, other.CA))
	writeLines(t, d.Socketpair("app"), "app", 0, 10)
	var st StatusReply
	if !testutil.Eventually(30*time.Second, func() bool {
		st = status(t, f)
		return len(st.Drains) == 1 && st.Drains[0].State == "refused"
	}) {
		t.Fatalf("status %+v; log:\n%s", st, f.Output())
	}
	if e := st.Drains[0].LastError; !strings.Contains(e, "certificate signed by unknown authority") {
		t.Fatalf("last error %q", e)
	}
	if !strings.Contains(f.Output(), "refused") || strings.Count(f.Output(), "unknown authority") != 1 {
		t.Fatalf("log:\n%s", f.Output())
	}
	if ms := r.messages(); len(ms) != 0 {
		t.Fatalf("%d messages reached the server", len(ms))
	}
	if st.Drains[0].Sent != 0 || st.Drains[0].SpooledEntries < 10 {
		t.Fatalf("status %+v", st.Drains[0])
	}
}

// waitReading waits until every drain of f reads memlogd, so that lines
// written next cannot be evicted from a small ring before logforward has
// a cursor in it (on a busy machine that start can take a while).
func waitReading(t *testing.T, f *fwd) {
	t.Helper()
	if !testutil.Eventually(60*time.Second, func() bool {
		var st StatusReply
		if err := newClient(f.control).do("GET", "/v1/status", nil, &st); err != nil || len(st.Drains) == 0 {
			return false
		}
		for _, d := range st.Drains {
			if !d.Reading {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("logforward's drains did not start reading memlogd:\n%s", f.Output())
	}
}

func status(t *testing.T, f *fwd) StatusReply {
	t.Helper()
	out, err := exec.Command(testutil.Bin(t, "logforward"), "-control", f.control, "status").CombinedOutput()
	if err != nil {
		t.Fatalf("logforward status: %v\n%s", err, out)
	}
	var st StatusReply
	if err := newClient(f.control).do("GET", "/v1/status", nil, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRELP(t *testing.T) {
	r := startRsyslog(t, "relp", "", `module(load="imrelp")`, `input(type="imrelp" address="127.0.0.1" port="%PORT%" ruleset="r" maxDataSize="256k")`)
	d := testutil.StartWith(t, testutil.Options{Syslog: true, Args: []string{"-max-line-len", "70000"}})
	f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf("relp://127.0.0.1:%d", r.Port))
	checkDelivery(t, r, d, f)
}

func TestRELPTLS(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "test")
	r := startRsyslog(t, "relp", "", `module(load="imrelp")`, fmt.Sprintf(
		`input(type="imrelp" address="127.0.0.1" port="%%PORT%%" ruleset="r" maxDataSize="256k" tls="on" tls.cacert=%q tls.mycert=%q tls.myprivkey=%q tls.authmode="certvalid")`,
		p.CA, p.ServerCert, p.ServerKey))
	d := testutil.StartWith(t, testutil.Options{Syslog: true, Args: []string{"-max-line-len", "70000"}})
	f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf("relp+tls://localhost:%d?ca=%s&cert=%s&key=%s", r.Port, p.CA, p.ClientCert, p.ClientKey))
	checkDelivery(t, r, d, f)
}

// UDP: one datagram per entry; a long one is cut at the limit and marked.
func TestSyslogUDP(t *testing.T) {
	r := startRsyslog(t, "udp", "", `module(load="imudp")`, `input(type="imudp" address="127.0.0.1" port="%PORT%" ruleset="r")`)
	d := testutil.Start(t, "-max-line-len", "10000")
	f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf("syslog+udp://127.0.0.1:%d?maxsize=1024", r.Port))
	w := d.Socketpair("app")
	writeLines(t, w, "app", 0, 100)
	w.WriteString(strings.Repeat("y", 5000) + "\n")
	ms := r.waitFor(60*time.Second, func(ms []received) bool { return len(ms) >= 101 })
	distinct, dups, ooo := tally(ms)
	// UDP on loopback, paced by nothing: a loss would show here, and
	// the README says UDP can lose.
	if distinct["app"] != 100 || dups != 0 || len(ooo) != 0 {
		t.Fatalf("%v %d %q; log:\n%s", distinct, dups, ooo, f.Output())
	}
	var cut *received
	for i := range ms {
		if strings.HasPrefix(ms[i].Msg, "yyy") {
			cut = &ms[i]
		}
	}
	if cut == nil || !strings.Contains(cut.SD, ` cut="`) || len(cut.Msg) >= 1024 || len(cut.Msg) < 800 {
		t.Fatalf("cut message: %+v", cut)
	}
}

// RFC 3164 with LF framing, for old receivers; the periodic status line
// appears in logforward's log.
func TestRFC3164LF(t *testing.T) {
	r := startRsyslog(t, "tcp", "", tcpInput, `input(type="imtcp" address="127.0.0.1" port="%PORT%" ruleset="r")`)
	d := testutil.Start(t)
	f := startForward(t, d, t.TempDir(), "-report-interval", "100ms", "-drain", fmt.Sprintf("syslog://127.0.0.1:%d?format=rfc3164&framing=lf&sources=app*", r.Port))
	w := d.Socketpair("app.out")
	writeLines(t, w, "app.out", 0, 100)
	ms := r.waitFor(60*time.Second, func(ms []received) bool { return len(ms) >= 100 })
	// rsyslog keeps the space after "TAG:" in an RFC 3164 message.
	for i := range ms {
		ms[i].Msg = strings.TrimPrefix(ms[i].Msg, " ")
	}
	distinct, dups, ooo := tally(ms)
	if distinct["app.out"] != 100 || dups != 0 || len(ooo) != 0 {
		t.Fatalf("%v %d %q", distinct, dups, ooo)
	}
	for _, m := range ms {
		if m.Host != "vm1" || m.App != "app.out" || m.PRI != "30" || m.SD != "-" {
			t.Fatalf("RFC 3164 fields: %+v", m)
		}
	}
	if !testutil.Eventually(30*time.Second, func() bool { return strings.Contains(f.Output(), "connected, sent 100, acknowledged 100") }) {
		t.Fatalf("no status line in the log:\n%s", f.Output())
	}
}
