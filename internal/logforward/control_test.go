package logforward

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

func cli(t *testing.T, f *fwd, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testutil.Bin(t, "logforward"), append([]string{"-control", f.control}, args...)...).CombinedOutput()
	return string(out), err
}

// Drains are added and removed at run time through the control socket;
// added drains survive a restart; the socket is 0600; a password never
// shows.
func TestControlDrains(t *testing.T) {
	r1 := startRsyslog(t, "tcp", "", tcpInput, `input(type="imtcp" address="127.0.0.1" port="%PORT%" ruleset="r")`)
	r2 := startRsyslog(t, "relp", "", `module(load="imrelp")`, relpInput)
	d := testutil.StartWith(t, testutil.Options{Syslog: true})
	state := t.TempDir()
	f := startForward(t, d, state)
	if st, err := os.Stat(f.control); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", st.Mode(), err)
	}
	out, err := cli(t, f, "drains", "add", fmt.Sprintf("syslog+tcp://127.0.0.1:%d", r1.Port), "-source", "a*", "-id", "one")
	if err != nil || strings.TrimSpace(out) != "one" {
		t.Fatalf("add: %v %s", err, out)
	}
	out, err = cli(t, f, "drains", "add", fmt.Sprintf("relp://user:hunter2@127.0.0.1:%d", r2.Port), "-severity", "warning", "-id", "two")
	if err != nil {
		t.Fatalf("add: %v %s", err, out)
	}
	if out, err := cli(t, f, "drains", "add", "ftp://x"); err == nil || !strings.Contains(out, "scheme") {
		t.Fatalf("bad URL accepted: %s", out)
	}
	if out, err := cli(t, f, "drains", "add", fmt.Sprintf("syslog+tcp://127.0.0.1:%d", r1.Port), "-source", "a*", "-id", "one"); err == nil || !strings.Contains(out, "exists") {
		t.Fatalf("duplicate id accepted: %s", out)
	}
	w := d.Socketpair("app")
	writeLines(t, w, "app", 0, 50)
	c, err := net.Dial("unixgram", d.Syslog)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("<12>1 - - warner - - - disk almost full"))
	c.Close()
	r1.waitFor(30*time.Second, func(ms []received) bool { return len(ms) >= 50 })
	if dist, _, _ := tally(r1.messages()); dist["app"] != 50 {
		t.Fatalf("drain one got %v", dist)
	}
	list, err := cli(t, f, "drains", "list")
	if err != nil || !strings.Contains(list, "one") || !strings.Contains(list, "two") || strings.Contains(list, "hunter2") || !strings.Contains(list, "connected") {
		t.Fatalf("list: %v\n%s", err, list)
	}
	stOut, err := cli(t, f, "status")
	if err != nil || strings.Contains(stOut, "hunter2") || !strings.Contains(stOut, "hostname vm1, 2 drains") {
		t.Fatalf("status: %v\n%s", err, stOut)
	}
	// Severity route: only warnings and worse reach drain two.
	ms := r2.waitFor(30*time.Second, func(ms []received) bool {
		for _, m := range ms {
			if m.App == "warner" {
				return true
			}
		}
		return false
	})
	for _, m := range ms {
		if m.App == "app" {
			t.Fatalf("info line reached the warning drain: %+v", m)
		}
	}
	if len(ms) == 0 || ms[len(ms)-1].Msg != "disk almost full" {
		t.Fatalf("warning drain got %+v", ms)
	}
	// Restart: both drains come back, drain one resumes without
	// duplicates.
	if !f.SignalWait(syscall.SIGTERM, 30*time.Second) {
		t.Fatal("logforward did not stop")
	}
	if strings.Contains(f.Output(), "hunter2") {
		t.Fatalf("password in the log:\n%s", f.Output())
	}
	f = startForward(t, d, state)
	writeLines(t, w, "app", 50, 50)
	r1.waitFor(30*time.Second, func(ms []received) bool { return len(ms) >= 100 })
	if dist, dups, ooo := tally(r1.messages()); dist["app"] != 100 || dups != 0 || len(ooo) != 0 {
		t.Fatalf("after restart: %v %d %q", dist, dups, ooo)
	}
	list, _ = cli(t, f, "drains", "list")
	if !strings.Contains(list, "one") || !strings.Contains(list, "two") {
		t.Fatalf("after restart:\n%s", list)
	}
	if out, err := cli(t, f, "drains", "rm", "one"); err != nil {
		t.Fatalf("rm: %v %s", err, out)
	}
	if out, err := cli(t, f, "drains", "rm", "one"); err == nil {
		t.Fatalf("rm twice: %s", out)
	}
	if _, err := os.Stat(state + "/drains/one"); !os.IsNotExist(err) {
		t.Fatalf("spool of a removed drain: %v", err)
	}
	list, _ = cli(t, f, "drains", "list")
	if strings.Contains(list, "one") || !strings.Contains(list, "two") {
		t.Fatalf("after rm:\n%s", list)
	}
	b, _ := os.ReadFile(state + "/drains.json")
	if strings.Contains(string(b), `"one"`) {
		t.Fatalf("removed drain still saved: %s", b)
	}
}

// Without a writable state directory the spool is in memory, and
// logforward says so.
func TestMemorySpool(t *testing.T) {
	r := startRsyslog(t, "tcp", "", tcpInput, `input(type="imtcp" address="127.0.0.1" port="%PORT%" ruleset="r")`)
	d := testutil.Start(t)
	ro := t.TempDir()
	os.Chmod(ro, 0o500)
	state := ro + "/sub"
	if os.Getuid() == 0 {
		// root writes anywhere: use a path under a regular file.
		os.WriteFile(ro+"/file", nil, 0o600)
		state = ro + "/file/sub"
	}
	f := startForward(t, d, state, "-memory-spool-bytes", "1M", "-drain", fmt.Sprintf("syslog://127.0.0.1:%d", r.Port))
	waitReading(t, f)
	writeLines(t, d.Socketpair("app"), "app", 0, 100)
	r.waitFor(30*time.Second, func(ms []received) bool { return len(ms) >= 100 })
	if dist, _, _ := tally(r.messages()); dist["app"] != 100 {
		t.Fatalf("got %v", dist)
	}
	if !strings.Contains(f.Output(), "spools are in memory") {
		t.Fatalf("log:\n%s", f.Output())
	}
	if st := status(t, f); !st.Drains[0].MemorySpool {
		t.Fatalf("status %+v", st)
	}
}

// TCP: the receiver stops (having read what it was sent) and lines go on
// being written; the first of them go into the dead connection, whose
// reset empties the send queue. Once the receiver is back every line
// arrives, none twice: only what the peer's TCP acknowledged counts as
// taken. (A receiver that stops with unread data in its socket loses
// that data, which TCP had acknowledged: see the README.)
func TestOutageTCP(t *testing.T) {
	r := startRsyslog(t, "tcp", "", tcpInput, `input(type="imtcp" address="127.0.0.1" port="%PORT%" ruleset="r")`)
	d := testutil.Start(t, "-max-lines", "5000")
	f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf("syslog+tcp://127.0.0.1:%d?sources=app", r.Port))
	waitReading(t, f)
	w := d.Socketpair("app")
	const n = 20000
	writeLines(t, w, "app", 0, n)
	r.waitFor(60*time.Second, func(ms []received) bool { return len(ms) >= n })
	r.stop()
	for i := n; i < 2*n; i += 1000 {
		writeLines(t, w, "app", i, 1000)
	}
	if !testutil.Eventually(30*time.Second, func() bool { st := status(t, f); return st.Drains[0].State != "connected" }) {
		t.Fatalf("the broken connection was not noticed: %+v", status(t, f))
	}
	r.start()
	ms := r.waitFor(120*time.Second, func(ms []received) bool {
		dist, _, _ := tally(ms)
		return dist["app"] >= 2*n
	})
	distinct, dups, ooo := tally(ms)
	if distinct["app"] != 2*n || dups != 0 || len(ooo) != 0 {
		t.Fatalf("%d of %d lines, %d duplicates, out of order %q; log:\n%s", distinct["app"], 2*n, dups, ooo, f.Output())
	}
}

// -wait-mount: a state directory on the root file system is not used
// (spools go to memory, and logforward says so); one on another mount is.
func TestWaitMount(t *testing.T) {
	d := testutil.Start(t)
	state := t.TempDir()
	point, err := mountPoint(state)
	if err != nil {
		t.Fatal(err)
	}
	f := startForward(t, d, state, "-wait-mount", "-wait-mount-timeout", "500ms", "-drain", "syslog://127.0.0.1:9")
	st := status(t, f)
	if point == "/" {
		if !st.Drains[0].MemorySpool || !strings.Contains(f.Output(), "still on the root file system") {
			t.Fatalf("on /: %+v\n%s", st.Drains[0], f.Output())
		}
		return
	}
	if st.Drains[0].MemorySpool {
		t.Fatalf("%s is on %s, yet the spool is in memory:\n%s", state, point, f.Output())
	}
}

// The control socket belongs to the logforward that bound it: a second
// one started on the same path is refused while the first serves, and a
// logforward that exits leaves alone a newer socket at its path.
func TestControlSocketOwnership(t *testing.T) {
	d := testutil.Start(t)
	f := startForward(t, d, t.TempDir(), "-drain", "syslog+udp://127.0.0.1:9")
	second := testutil.StartProc(t, testutil.Bin(t, "logforward"), "-socket", d.Query, "-state-dir", t.TempDir(), "-control", f.control, "-drain", "syslog+udp://127.0.0.1:9")
	select {
	case <-second.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("a second logforward on a live control socket kept running:\n%s", second.Output())
	}
	if !strings.Contains(second.Output(), "in use") {
		t.Errorf("second logforward's message: %s", second.Output())
	}
	if _, err := os.Stat(f.control); err != nil {
		t.Fatalf("the first one's socket is gone: %v", err)
	}
	// A newer socket takes the path; the old logforward exits.
	if err := os.Remove(f.control); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", f.control)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f.Stop(t, syscall.SIGTERM)
	if _, err := os.Stat(f.control); err != nil {
		t.Fatalf("the exiting logforward removed a newer socket: %v", err)
	}
}
