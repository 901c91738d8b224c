package logread_test

// Integration tests of the built logread against the built memlogd (and a
// LinuxKit-like fake server), on sockets in temporary directories.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	tu "github.com/lklog/lklog/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(tu.BuildAndRun(m)) }

func runLogread(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	return runLogreadWithin(t, 20*time.Second, args...)
}

// runLogreadWithin runs logread, killing it after timeout (then its
// status is -1).
func runLogreadWithin(t testing.TB, timeout time.Duration, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(tu.LogreadBin(), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Errorf("logread %q did not finish within %v", args, timeout)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func mustLogread(t testing.TB, args ...string) []string {
	t.Helper()
	out, errOut, code := runLogread(t, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("logread %q: exit %d, stderr %q", args, code, errOut)
	}
	if out == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

func writeLines(t testing.TB, w io.Writer, prefix string, from, to int) {
	t.Helper()
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s%d\n", prefix, i)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// msgsOf returns the messages of text lines from source.
func msgsOf(lines []string, source string) []string {
	var out []string
	for _, l := range lines {
		_, rest, _ := strings.Cut(l, ";")
		src, msg, _ := strings.Cut(rest, ";")
		if src == source {
			out = append(out, msg)
		}
	}
	return out
}

func numbered(t testing.TB, what string, msgs []string, prefix string, from, to int) {
	t.Helper()
	if len(msgs) != to-from {
		t.Errorf("%s: %d lines, want %d: %q", what, len(msgs), to-from, msgs)
		return
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("%s%d", prefix, from+i); m != want {
			t.Errorf("%s: line %d is %q, want %q", what, i, m, want)
			return
		}
	}
}

func setup(t *testing.T) *tu.Daemon {
	d := tu.StartWith(t, tu.Options{Syslog: true})
	for _, name := range []string{"app.a", "app.b"} {
		w := d.Socketpair(name)
		writeLines(t, w, name+" ", 0, 50)
		w.Close()
	}
	for sev := 0; sev < 8; sev++ {
		c, err := net.Dial("unixgram", d.Syslog)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "<%d>sev: severity %d", 8+sev, sev)
		c.Close()
	}
	tu.WaitMsg(t, d.Query, "app.a", "app.a 49", 10*time.Second)
	tu.WaitMsg(t, d.Query, "app.b", "app.b 49", 10*time.Second)
	tu.WaitMsg(t, d.Query, "sev", "severity 7", 10*time.Second)
	return d
}

func textLine(r tu.Record) string {
	return r.Time.Format(time.RFC3339Nano) + ";" + strings.ReplaceAll(r.Source, ";", `\;`) + ";" + r.Msg
}

func TestOptions(t *testing.T) {
	d := setup(t)
	_, all := tu.Dump(t, d.Query, "")

	t.Run("n", func(t *testing.T) {
		got := mustLogread(t, "-socket", d.Query, "-n", "5")
		if len(got) != 5 {
			t.Fatalf("-n 5: %q", got)
		}
		for i, l := range got {
			if want := textLine(all[len(all)-5+i]); l != want {
				t.Errorf("-n 5: line %d %q, want %q", i, l, want)
			}
		}
		got = mustLogread(t, "-socket", d.Query, "-n", "3", "-source", "app.a")
		numbered(t, "-n 3 -source app.a", msgsOf(got, "app.a"), "app.a ", 47, 50)
		if len(got) != 3 {
			t.Errorf("-n 3 -source app.a: %q", got)
		}
	})
	t.Run("json", func(t *testing.T) {
		got := mustLogread(t, "-socket", d.Query, "-json")
		if len(got) != len(all)+1 {
			t.Fatalf("-json: %d lines for %d entries (+ hello)", len(got), len(all))
		}
		if h := tu.Decode(t, []byte(got[0])); h.Type != "hello" || h.Instance == "" {
			t.Errorf("-json: first line %q is not a hello record", got[0])
		}
		for i, l := range got[1:] {
			r := tu.Decode(t, []byte(l))
			if r.Type != "" || r.Seq != all[i].Seq || r.Msg != all[i].Msg || r.Source != all[i].Source {
				t.Errorf("-json line %d: %s, want entry %s", i, l, all[i].Line)
			}
		}
	})
	t.Run("source", func(t *testing.T) {
		got := mustLogread(t, "-socket", d.Query, "-source", "app.b")
		numbered(t, "-source app.b", msgsOf(got, "app.b"), "app.b ", 0, 50)
		if len(got) != 50 {
			t.Errorf("-source app.b: %d lines", len(got))
		}
		got = mustLogread(t, "-socket", d.Query, "-source", "app.*", "-exclude", "*.a")
		if len(got) != 50 || len(msgsOf(got, "app.b")) != 50 {
			t.Errorf("-source app.* -exclude *.a: %d lines", len(got))
		}
	})
	t.Run("severity", func(t *testing.T) {
		for _, c := range []struct {
			arg  string
			want int
		}{{"err", 4}, {"3", 4}, {"emerg", 1}, {"debug", 8}, {"warning", 5}} {
			got := mustLogread(t, "-socket", d.Query, "-severity", c.arg, "-source", "sev")
			numbered(t, "-severity "+c.arg, msgsOf(got, "sev"), "severity ", 0, c.want)
		}
		_, errOut, code := runLogread(t, "-socket", d.Query, "-severity", "loud")
		if code != 2 || !strings.Contains(errOut, "loud") {
			t.Errorf("-severity loud: exit %d, stderr %q", code, errOut)
		}
	})
}

func TestCursors(t *testing.T) {
	d := setup(t)
	w := d.Socketpair("cur")
	writeLines(t, w, "cur ", 0, 10)
	tu.WaitMsg(t, d.Query, "cur", "cur 9", 10*time.Second)
	cf := filepath.Join(t.TempDir(), "cursor")

	got := mustLogread(t, "-socket", d.Query, "-cursor-file", cf, "-source", "cur")
	numbered(t, "first run", msgsOf(got, "cur"), "cur ", 0, 10)
	b, err := os.ReadFile(cf)
	if err != nil {
		t.Fatalf("cursor file not written: %v", err)
	}
	hello, recs := tu.Dump(t, d.Query, `"sources":["cur"]`)
	if want := fmt.Sprintf("%s:%d\n", hello.Instance, recs[len(recs)-1].Seq); string(b) != want {
		t.Errorf("cursor file %q, want %q", b, want)
	}
	writeLines(t, w, "cur ", 10, 25)
	tu.WaitMsg(t, d.Query, "cur", "cur 24", 10*time.Second)
	got = mustLogread(t, "-socket", d.Query, "-cursor-file", cf, "-source", "cur")
	numbered(t, "second run", msgsOf(got, "cur"), "cur ", 10, 25)
	got = mustLogread(t, "-socket", d.Query, "-cursor-file", cf, "-source", "cur")
	if len(got) != 0 {
		t.Errorf("third run with nothing new printed %q", got)
	}

	// -after-cursor with the instance from -json's hello and an entry's seq.
	js := mustLogread(t, "-socket", d.Query, "-json", "-source", "cur")
	h := tu.Decode(t, []byte(js[0]))
	mid := tu.Decode(t, []byte(js[1+11])) // "cur 11"
	got = mustLogread(t, "-socket", d.Query, "-after-cursor", h.Instance+":"+strconv.FormatUint(mid.Seq, 10), "-source", "cur")
	numbered(t, "-after-cursor", msgsOf(got, "cur"), "cur ", 12, 25)

	// A follower stopped by SIGTERM stores where it got to.
	cf2 := filepath.Join(t.TempDir(), "cursor2")
	cmd := exec.Command(tu.LogreadBin(), "-socket", d.Query, "-F", "-cursor-file", cf2, "-source", "cur")
	var out tu.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	writeLines(t, w, "cur ", 25, 30)
	if !tu.Eventually(10*time.Second, func() bool { return strings.Contains(out.String(), ";cur;cur 29\n") }) {
		cmd.Process.Kill()
		t.Fatalf("logread -F did not show new lines: %q", out.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logread -F after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("logread -F did not exit within 10 s of SIGTERM")
	}
	writeLines(t, w, "cur ", 30, 33)
	tu.WaitMsg(t, d.Query, "cur", "cur 32", 10*time.Second)
	got = mustLogread(t, "-socket", d.Query, "-cursor-file", cf2, "-source", "cur")
	numbered(t, "after the follower's cursor", msgsOf(got, "cur"), "cur ", 30, 33)
}

func TestMissingMemlogd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nothing.sock")
	for _, args := range [][]string{{"-socket", path}, {"-socket", path, "-F"}, {"-socket", path, "-legacy"}} {
		out, errOut, code := runLogread(t, args...)
		if code != 1 || out != "" {
			t.Errorf("logread %q: exit %d, stdout %q", args, code, out)
		}
		if !strings.HasPrefix(errOut, "logread: ") || !strings.Contains(errOut, path) || !strings.Contains(errOut, "memlogd") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("logread %q: stderr %q: want one clear line naming the socket and memlogd", args, errOut)
		}
	}
	// A path that exists but nobody listens on.
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	out, errOut, code := runLogread(t, "-socket", path)
	if code != 1 || out != "" || !strings.Contains(errOut, "memlogd") {
		t.Errorf("stale socket: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestClosedStdout: `logread | head -1` exits 0 without an error message,
// both in a long dump and while following.
func TestClosedStdout(t *testing.T) {
	d := tu.Start(t, "-max-lines", "30000")
	w := d.Socketpair("many")
	pad := strings.Repeat("p", 100)
	var b bytes.Buffer
	for i := 0; i < 30000; i++ {
		fmt.Fprintf(&b, "many %d %s\n", i, pad)
	}
	w.Write(b.Bytes())
	var last string
	if !tu.Eventually(10*time.Second, func() bool {
		_, recs := tu.Dump(t, d.Query, `"tail":1,"sources":["many"]`)
		if len(recs) == 1 {
			last = recs[0].Msg
		}
		return strings.HasPrefix(last, "many 29999 ")
	}) {
		t.Fatalf("lines did not arrive: last %q", last)
	}
	for _, args := range [][]string{{}, {"-F"}, {"-f"}, {"-json"}, {"-legacy"}} {
		t.Run(strings.Join(append([]string{"logread"}, args...), " "), func(t *testing.T) {
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tu.LogreadBin(), append([]string{"-socket", d.Query}, args...)...)
			var stderr tu.Buffer
			cmd.Stdout, cmd.Stderr = pw, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			if len(args) > 0 && args[0] == "-f" {
				// -f prints only new lines: give it some.
				go func() {
					for i := 0; i < 50; i++ {
						select {
						case <-done:
							return
						case <-time.After(20 * time.Millisecond):
						}
						fmt.Fprintf(w, "new %d %s\n", i, pad)
					}
				}()
			}
			pr.SetReadDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil || line == "" {
				t.Fatalf("reading the first line: %q, %v", line, err)
			}
			pr.Close() // head -1 exits
			// A follower notices only when it writes again.
			for i := 0; ; i++ {
				select {
				case <-done:
				case <-time.After(20 * time.Millisecond):
					if i > 500 {
						cmd.Process.Kill()
						<-done
						t.Fatalf("logread did not exit within 10 s of its stdout closing")
					}
					fmt.Fprintf(w, "more %d\n", i)
					continue
				}
				break
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 || stderr.String() != "" {
				t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr.String())
			}
		})
	}
}

// legacyServer serves like LinuxKit's memlogd: it reads one byte; mode 0
// gets a dump of two JSON lines. Any other byte is closed at once if
// closeOthers, else left hanging as LinuxKit's memlogd does (its handler
// waits for ever on a channel nothing writes to). It returns the socket
// path and the request bytes seen so far.
func legacyServer(t *testing.T, closeOthers bool) (string, *tu.Buffer) {
	path := filepath.Join(tu.ShortTempDir(t), "lk.sock")
	var requests tu.Buffer
	tu.ServeUnix(t, path, func(c net.Conn) {
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			c.Close()
			return
		}
		fmt.Fprintf(&requests, "%02x ", b[0])
		if b[0] == 0 {
			io.WriteString(c, legacyReply)
			c.Close()
		} else if closeOthers {
			c.Close()
		}
	})
	return path, &requests
}

const legacyReply = `{"time":"2026-03-01T10:00:00.123456789Z","source":"onboot.001-x.out","msg":"hello \u003cworld\u003e"}` + "\n" +
	`{"time":"2026-03-01T10:00:01Z","source":"a;b","msg":"second"}` + "\n"

var legacyWant = []string{
	"2026-03-01T10:00:00.123456789Z;onboot.001-x.out;hello <world>",
	`2026-03-01T10:00:01Z;a\;b;second`,
}

// TestLegacyFallback: against a server that knows only LinuxKit's one-byte
// requests and closes on anything else, logread falls back to the legacy
// protocol.
func TestLegacyFallback(t *testing.T) {
	path, requests := legacyServer(t, true)
	out, errOut, code := runLogread(t, "-socket", path)
	if code != 0 || strings.TrimSuffix(out, "\n") != strings.Join(legacyWant, "\n") {
		t.Errorf("logread against a legacy server that closes on unknown requests: exit %d, stderr %q\n got %q\nwant %q", code, errOut, out, legacyWant)
	}
	// The extended request and mode 0 go on two connections at once.
	if r := requests.String(); r != "7b 00 " && r != "00 7b " {
		t.Errorf("requests seen by the server: %s; want an extended one ('{') and mode 0", r)
	}
	// Options that need the extended protocol fail clearly instead.
	out, errOut, code = runLogread(t, "-socket", path, "-n", "1")
	if code != 1 || out != "" || errOut == "" {
		t.Errorf("-n against a legacy server: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestLegacyFallbackSilentServer: LinuxKit's real memlogd neither answers
// nor closes a connection whose mode byte it does not know; logread must
// still fall back, in bounded time.
func TestLegacyFallbackSilentServer(t *testing.T) {
	path, _ := legacyServer(t, false)
	start := time.Now()
	out, errOut, code := runLogreadWithin(t, 15*time.Second, "-socket", path)
	if code != 0 || strings.TrimSuffix(out, "\n") != strings.Join(legacyWant, "\n") {
		t.Errorf("logread against LinuxKit-like memlogd: exit %d after %v, stderr %q\n got %q\nwant %q", code, time.Since(start), errOut, out, legacyWant)
	}
}
