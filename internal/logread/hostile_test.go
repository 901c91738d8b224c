package logread_test

// Hostile bytes in sources and messages, and readers facing a memlogd of
// another kind (LinuxKit's) or one that goes away.

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logproto"
	tu "github.com/lklog/lklog/internal/testutil"
)

// parseText splits a text line into time, source and message and undoes
// the escaping; it fails the test if the line could not have come from
// one entry.
func parseText(t *testing.T, line string) (src, msg string) {
	t.Helper()
	if !utf8.ValidString(line) {
		t.Fatalf("line %q is not valid UTF-8", line)
	}
	for _, r := range line {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			t.Fatalf("line %q holds control character %U", line, r)
		}
	}
	tm, rest, ok := strings.Cut(line, ";")
	if _, err := time.Parse(time.RFC3339Nano, tm); !ok || err != nil {
		t.Fatalf("line %q does not start with a time", line)
	}
	// The source ends at the first ';' not escaped.
	i := 0
	for ; i < len(rest); i++ {
		if rest[i] == '\\' {
			i++
			continue
		}
		if rest[i] == ';' {
			break
		}
	}
	if i >= len(rest) {
		t.Fatalf("line %q has no message field", line)
	}
	s, err1 := logproto.Unescape(nil, []byte(rest[:i]))
	m, err2 := logproto.Unescape(nil, []byte(rest[i+1:]))
	if err1 != nil || err2 != nil {
		t.Fatalf("line %q does not unescape: %v %v", line, err1, err2)
	}
	return string(s), string(m)
}

// TestForgedLines: no sender can make logread or memlogd's console print
// a line that looks like another program's, or send bytes to the
// terminal; the text unescapes to the exact bytes; -json stays exact.
func TestForgedLines(t *testing.T) {
	d := tu.StartWith(t, tu.Options{Syslog: true, Args: []string{"-console=true"}})
	forged := "ok\n2026-12-01T21:00:00.000000000Z;sshd;Accepted password for root from 10.0.0.1"
	badApp := "<13>1 - h ss\nhd - - - forged too"
	for _, dg := range []string{"<13>sshd: " + forged, badApp} {
		c, err := net.Dial("unixgram", d.Syslog)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(dg))
		c.Close()
	}
	src := "c;\x1b[31m\xff"
	msg := "esc \x1b]0;title\x07 \xc2\x9b2J \xe2\x80\xae \xff\\x41 done"
	w := d.Socketpair(src)
	w.Write([]byte(msg + "\n"))

	var lines []string
	if !tu.Eventually(30*time.Second, func() bool {
		out, _, _ := runLogread(t, "-socket", d.Query)
		lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		return strings.Contains(out, "done\n")
	}) {
		t.Fatalf("entries did not arrive: %q", lines)
	}
	check := func(what string, lines []string) {
		t.Helper()
		var sshd, syslog, hostile int
		for _, l := range lines {
			s, m := parseText(t, l)
			switch s {
			case "sshd":
				sshd++
				if m != forged {
					t.Errorf("%s: sshd message %q, want %q", what, m, forged)
				}
			case "syslog":
				if m == badApp {
					syslog++
				}
			case src:
				hostile++
				if m != msg {
					t.Errorf("%s: message %q, want %q", what, m, msg)
				}
			}
		}
		if sshd != 1 || syslog != 1 || hostile != 1 {
			t.Errorf("%s: %d sshd lines, %d raw syslog lines, %d hostile-source lines; want 1 each:\n%s", what, sshd, syslog, hostile, strings.Join(lines, "\n"))
		}
	}
	check("logread", lines)
	if !tu.Eventually(30*time.Second, func() bool { return strings.Contains(d.Stdout.String(), "done\n") }) {
		t.Fatalf("console did not echo the entries: %q", d.Stdout.String())
	}
	check("console", strings.Split(strings.TrimSuffix(d.Stdout.String(), "\n"), "\n"))

	// -json: exact bytes through the _b64 keys, the plain keys as
	// encoding/json readers expect them.
	out, _, _ := runLogread(t, "-socket", d.Query, "-json")
	found := false
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		r, err := logproto.DecodeRecord([]byte(l))
		if err != nil {
			t.Fatalf("-json line %q: %v", l, err)
		}
		if r.Source != src {
			continue
		}
		found = true
		if r.Msg != msg {
			t.Errorf("-json message %q, want %q", r.Msg, msg)
		}
		var plain struct{ Source, Msg string }
		json.Unmarshal([]byte(l), &plain)
		if plain.Source != strings.ToValidUTF8(src, "\ufffd") {
			t.Errorf("-json plain source %q", plain.Source)
		}
	}
	if !found {
		t.Errorf("-json output lacks the hostile source: %s", out)
	}
}

// lkServer serves its query socket as LinuxKit's memlogd does: one
// connection at a time, one byte read; 0 dumps and closes, 1 follows, 2
// dumps and follows, anything else is never answered. Its ring starts
// with its own "memlogd started" entry.
type lkServer struct {
	path      string
	l         *net.UnixListener
	mu        sync.Mutex
	ring      [][]byte
	followers []net.Conn
	conns     []net.Conn
	accepted  int
}

func startLK(t *testing.T) *lkServer {
	s := &lkServer{path: filepath.Join(tu.ShortTempDir(t), "lk.sock")}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	s.l = l
	t.Cleanup(func() { l.Close(); s.closeAll() })
	s.add("memlogd", "memlogd started")
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepted++
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				continue
			}
			s.mu.Lock()
			switch b[0] {
			case 0, 2:
				for _, line := range s.ring {
					c.Write(line)
				}
				if b[0] == 0 {
					c.Close()
				} else {
					s.followers = append(s.followers, c)
				}
			case 1:
				s.followers = append(s.followers, c)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *lkServer) add(source, msg string) {
	line, _ := json.Marshal(struct {
		Time   time.Time `json:"time"`
		Source string    `json:"source"`
		Msg    string    `json:"msg"`
	}{time.Now(), source, msg})
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring = append(s.ring, line)
	for _, c := range s.followers {
		c.Write(line)
	}
}

func (s *lkServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// closeAll is LinuxKit's memlogd going away.
func (s *lkServer) closeAll() {
	s.l.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// startLogread starts logread in the background.
func startLogread(t *testing.T, args ...string) (*exec.Cmd, *tu.Buffer, *tu.Buffer, chan struct{}) {
	cmd := exec.Command(tu.LogreadBin(), args...)
	var out, errb tu.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd, &out, &errb, done
}

// TestLinuxKitFollowNoLoss: logread -f against LinuxKit's memlogd prints
// every entry that arrives from the moment it starts, also while it finds
// out which protocol the server speaks, and none from before.
func TestLinuxKitFollowNoLoss(t *testing.T) {
	lk := startLK(t)
	for i := range 10 {
		lk.add("app", fmt.Sprintf("old %d", i))
	}
	_, out, errb, _ := startLogread(t, "-socket", lk.path, "-f")
	if !tu.Eventually(30*time.Second, func() bool { return lk.connections() > 0 }) {
		t.Fatal("logread did not connect")
	}
	const n = 200
	for i := range n {
		lk.add("app", fmt.Sprintf("new %d", i))
		time.Sleep(5 * time.Millisecond) // spread over the detection
	}
	if !tu.Eventually(30*time.Second, func() bool { return strings.Contains(out.String(), fmt.Sprintf(";app;new %d\n", n-1)) }) {
		t.Fatalf("logread -f did not print the last entry; stdout %q, stderr %q", out.String(), errb.String())
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if s, m := parseText(t, l); s == "app" {
			got = append(got, m)
		}
	}
	numbered(t, "logread -f against LinuxKit's memlogd", got, "new ", 0, n)

	// memlogd going away is said, with exit status 1.
	_, _, errb2, done := startLogread(t, "-socket", lk.path, "-f")
	lk.add("app", "one more")
	if !tu.Eventually(30*time.Second, func() bool { return lk.connections() >= 4 }) {
		t.Fatal("second logread did not connect")
	}
	lk.closeAll()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("logread -f did not exit within 30 s of memlogd closing the connection")
	}
	if !strings.Contains(errb2.String(), "memlogd closed the connection: it was stopped or restarted") {
		t.Errorf("stderr %q does not say memlogd went away", errb2.String())
	}
}

// TestLinuxKitDumpQuick: a dump against LinuxKit's memlogd no longer waits
// out the whole hello timeout.
func TestLinuxKitDumpQuick(t *testing.T) {
	lk := startLK(t)
	lk.add("a;b", "x\x1by")
	start := time.Now()
	out, errOut, code := runLogread(t, "-socket", lk.path)
	took := time.Since(start)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || errOut != "" || len(lines) != 2 || !strings.HasSuffix(lines[1], `;a\;b;x\x1by`) {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	if took >= logclient.HelloTimeout {
		t.Errorf("dump took %v, not less than the hello timeout %v", took, logclient.HelloTimeout)
	}
	t.Logf("dump against LinuxKit's memlogd took %v", took)
}

// TestVanishedMemlogd: a follower whose memlogd dies says so and exits 1,
// in both protocols.
func TestVanishedMemlogd(t *testing.T) {
	for _, args := range [][]string{{"-f"}, {"-F", "-json"}, {"-f", "-legacy"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			d := tu.Start(t)
			w := d.Socketpair("v")
			cmd, out, errb, done := startLogread(t, append([]string{"-socket", d.Query}, args...)...)
			if !tu.Eventually(30*time.Second, func() bool {
				w.Write([]byte("ping\n"))
				return strings.Contains(out.String(), "ping")
			}) {
				t.Fatalf("logread %q printed nothing: %q", args, errb.String())
			}
			d.Cmd.Process.Signal(syscall.SIGKILL)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("logread did not exit within 30 s of memlogd's death")
			}
			if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(errb.String(), "memlogd closed the connection: it was stopped or restarted") {
				t.Errorf("exit %d, stderr %q", code, errb.String())
			}
		})
	}
}

// TestLinuxKitDumpFollow: logread -F against LinuxKit's memlogd prints
// what is held, then what arrives, each once.
func TestLinuxKitDumpFollow(t *testing.T) {
	lk := startLK(t)
	for i := range 10 {
		lk.add("app", fmt.Sprintf("n %d", i))
	}
	_, out, errb, _ := startLogread(t, "-socket", lk.path, "-F")
	if !tu.Eventually(30*time.Second, func() bool { return lk.connections() > 0 }) {
		t.Fatal("logread did not connect")
	}
	const n = 50
	for i := 10; i < n; i++ {
		lk.add("app", fmt.Sprintf("n %d", i))
		time.Sleep(10 * time.Millisecond) // spread over the detection
	}
	if !tu.Eventually(30*time.Second, func() bool { return strings.Contains(out.String(), fmt.Sprintf(";app;n %d\n", n-1)) }) {
		t.Fatalf("logread -F did not print the last entry; stdout %q, stderr %q", out.String(), errb.String())
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if s, m := parseText(t, l); s == "app" {
			got = append(got, m)
		}
	}
	numbered(t, "logread -F against LinuxKit's memlogd", got, "n ", 0, n)
}
