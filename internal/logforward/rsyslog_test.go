package logforward

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rsyslog is a private rsyslogd started by a test on loopback: one input,
// every message written as one JSON line with its RFC 5424 fields.
type rsyslog struct {
	t    testing.TB
	dir  string
	conf string
	out  string
	Port int
	cmd  *exec.Cmd
	done chan struct{}
	errb strings.Builder
	mu   sync.Mutex
}

// received is one message as rsyslog parsed it.
type received struct {
	PRI    string `json:"pri"`
	Time   string `json:"time"`
	Host   string `json:"host"`
	App    string `json:"app"`
	ProcID string `json:"procid"`
	MsgID  string `json:"msgid"`
	SD     string `json:"sd"`
	Msg    string `json:"msg"`
}

const jsonTemplate = `template(name="j" type="list" option.jsonf="on") {
  property(outname="pri" name="pri" format="jsonf")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
`

func needRsyslog(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("rsyslogd"); err != nil {
		t.Fatal("rsyslogd is not installed: run scripts/deps.sh (make test-go does) to install rsyslog and its TLS and RELP modules")
	}
}

// freePort returns a port that was free a moment ago.
func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRsyslog writes a configuration with global settings glob, module
// loads mods and the input line input (with %PORT% for the port) and
// starts rsyslogd.
func startRsyslog(t testing.TB, kind, glob, mods, input string) *rsyslog {
	t.Helper()
	needRsyslog(t)
	r := &rsyslog{t: t, dir: t.TempDir()}
	r.out = filepath.Join(r.dir, "out.json")
	network := "tcp"
	if kind == "udp" {
		network = "udp"
	}
	r.Port = freePort(t, network)
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="256k" parser.escapeControlCharactersOnReceive="off" %s)
%s
%s
ruleset(name="r") { action(type="omfile" file=%q template="j") }
%s
`, r.dir, glob, mods, jsonTemplate, r.out, strings.ReplaceAll(input, "%PORT%", fmt.Sprint(r.Port)))
	r.conf = filepath.Join(r.dir, "rsyslog.conf")
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("rsyslogd", "-N1", "-f", r.conf).CombinedOutput(); err != nil {
		t.Fatalf("rsyslog configuration refused: %v\n%s\n%s", err, out, conf)
	}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rsyslog) start() {
	r.t.Helper()
	r.cmd = exec.Command("rsyslogd", "-n", "-f", r.conf, "-i", filepath.Join(r.dir, "pid"))
	r.errb.Reset()
	r.cmd.Stdout, r.cmd.Stderr = &lockedWriter{w: &r.errb, mu: &r.mu}, &lockedWriter{w: &r.errb, mu: &r.mu}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	r.done = done
	go func() { r.cmd.Wait(); close(done) }()
	// Ready when the port takes connections (TCP) or after rsyslog
	// said it started (UDP cannot tell).
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			r.t.Fatalf("rsyslogd exited at start: %s", r.stderr())
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if strings.Contains(r.stderr(), "imudp") || fileHas(filepath.Join(r.dir, "pid")) && isUDP(r.conf) {
			time.Sleep(200 * time.Millisecond) // imudp binds before the pid file; a short grace only
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("rsyslogd did not listen on %d within 30 s: %s", r.Port, r.stderr())
}

func isUDP(conf string) bool {
	b, _ := os.ReadFile(conf)
	return strings.Contains(string(b), `type="imudp"`)
}

func fileHas(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Size() > 0
}

type lockedWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (r *rsyslog) stderr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errb.String()
}

// stop stops rsyslogd with SIGTERM and waits for it.
func (r *rsyslog) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// messages returns what rsyslog has written so far.
func (r *rsyslog) messages() []received {
	f, err := os.Open(r.out)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []received
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m received
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			// A line being written: stop here.
			break
		}
		out = append(out, m)
	}
	return out
}

// waitFor waits up to timeout until cond holds for the messages.
func (r *rsyslog) waitFor(timeout time.Duration, cond func([]received) bool) []received {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := r.messages()
		if cond(ms) {
			return ms
		}
		if time.Now().After(deadline) {
			return ms
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pki is a throwaway CA with a server and a client certificate.
type pki struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

func newPKI(t testing.TB, dir, name string) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := pki{CA: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	leaf := func(cn string, serial int64) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
			KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		c, kf := filepath.Join(dir, name+"-"+cn+".pem"), filepath.Join(dir, name+"-"+cn+"-key.pem")
		writePEM(t, c, "CERTIFICATE", der)
		writePEM(t, kf, "EC PRIVATE KEY", kd)
		return c, kf
	}
	p.ServerCert, p.ServerKey = leaf("localhost", 2)
	p.ClientCert, p.ClientKey = leaf("client", 3)
	return p
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
