package memlogd_test

// The daemon's own behaviour: /dev/log, sockets, signals, -daemonize, the
// console, hostile inputs on the log socket, line handling.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	tu "github.com/lklog/lklog/internal/testutil"
)

func findEntry(t testing.TB, recs []tu.Record, source string) tu.Record {
	t.Helper()
	for _, r := range recs {
		if r.Source == source {
			return r
		}
	}
	t.Fatalf("no entry from %q", source)
	return tu.Record{}
}

func intp(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

func TestSyslog(t *testing.T) {
	d := tu.StartWith(t, tu.Options{Syslog: true})
	sendSyslog(t, d.Syslog, "<30>Nov 22 04:00:00 myprog[123]: hello from glibc")
	sendSyslog(t, d.Syslog, `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 77 ID47 [exampleSDID@32473 iut="3"] An application event`)
	sendSyslog(t, d.Syslog, "no priority here \x01 at all")
	sendSyslog(t, d.Syslog, "<999>\xff\xfe binary junk")
	sendSyslog(t, d.Syslog, "<13>last")
	recs := tu.WaitMsg(t, d.Query, "syslog", "last", 10*time.Second)

	r := findEntry(t, recs, "myprog")
	if r.Msg != "hello from glibc" || intp(r.Facility) != 3 || intp(r.Severity) != 6 || intp(r.PID) != 123 || r.Raw {
		t.Errorf("RFC 3164 entry: %s", r.Line)
	}
	if ts, err := time.Parse(time.RFC3339Nano, r.TS); err != nil || ts.Month() != time.November || ts.Day() != 22 {
		t.Errorf("RFC 3164 entry: sender's timestamp %q (%v)", r.TS, err)
	}
	r = findEntry(t, recs, "evntslog")
	if r.Msg != "An application event" || intp(r.Facility) != 20 || intp(r.Severity) != 5 || intp(r.PID) != 77 ||
		r.SD != `[exampleSDID@32473 iut="3"]` || r.Raw {
		t.Errorf("RFC 5424 entry: %s", r.Line)
	}
	if ts, err := time.Parse(time.RFC3339Nano, r.TS); err != nil || !ts.Equal(time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC)) {
		t.Errorf("RFC 5424 entry: sender's timestamp %q (%v)", r.TS, err)
	}
	var raws []tu.Record
	for _, r := range recs {
		if r.Source == "syslog" && r.Raw {
			raws = append(raws, r)
		}
	}
	if len(raws) != 2 {
		t.Fatalf("garbage datagrams: %d raw entries, want 2: %v", len(raws), raws)
	}
	if raws[0].Msg != "no priority here \x01 at all" {
		t.Errorf("garbage kept as %q", raws[0].Msg)
	}
	if !strings.Contains(raws[1].Msg, "binary junk") {
		t.Errorf("binary garbage kept as %q", raws[1].Msg)
	}
	// logread -json shows the same fields.
	out, errOut, code := runLogread(t, "-socket", d.Query, "-json", "-source", "myprog,evntslog")
	if code != 0 {
		t.Fatalf("logread -json: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The hello record comes first (it names the instance of cursors).
	if len(lines) != 3 || tu.Decode(t, []byte(lines[0])).Type != "hello" {
		t.Fatalf("logread -json -source myprog,evntslog: %q", out)
	}
	for _, l := range lines[1:] {
		r := tu.Decode(t, []byte(l))
		if r.Seq == 0 || r.PID == nil || r.Facility == nil {
			t.Errorf("logread -json line without seq, pid or facility: %s", l)
		}
	}
}

func mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s is not a socket: %v", path, st.Mode())
	}
	return st.Mode().Perm()
}

func TestSocketModes(t *testing.T) {
	old := syscall.Umask(0o077) // must not matter
	syscall.Umask(old)
	d := tu.StartWith(t, tu.Options{Syslog: true})
	if m := mode(t, d.Log); m != 0o600 {
		t.Errorf("log socket mode %#o, want 0600", m)
	}
	if m := mode(t, d.Query); m != 0o600 {
		t.Errorf("query socket mode %#o, want 0600", m)
	}
	if m := mode(t, d.Syslog); m != 0o666 {
		t.Errorf("syslog socket mode %#o, want 0666", m)
	}
	d2 := tu.StartWith(t, tu.Options{Syslog: true, Args: []string{"-socket-mode", "0660"}})
	if m := mode(t, d2.Log); m != 0o660 {
		t.Errorf("-socket-mode 0660: log socket mode %#o", m)
	}
	if m := mode(t, d2.Query); m != 0o660 {
		t.Errorf("-socket-mode 0660: query socket mode %#o", m)
	}
	if m := mode(t, d2.Syslog); m != 0o666 {
		t.Errorf("-socket-mode 0660: syslog socket mode %#o, want 0666", m)
	}
}

func TestSIGTERMRemovesSockets(t *testing.T) {
	d := tu.StartWith(t, tu.Options{Syslog: true})
	w := d.Socketpair("app")
	w.Write([]byte("hi\n"))
	tu.WaitMsg(t, d.Query, "app", "hi", 10*time.Second)
	follower := tu.Request(t, d.Query, `{"mode":"follow"}`) // must not hold up the exit
	follower.Next(5 * time.Second)
	if code := d.Stop(); code != 0 {
		t.Errorf("exit status %d after SIGTERM; stderr:\n%s", code, d.Stderr)
	}
	for _, p := range []string{d.Log, d.Query, d.Syslog} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after SIGTERM (%v)", p, err)
		}
	}
}

// findProcess returns the pid of a process whose command line contains
// every one of parts.
func findProcess(parts ...string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		ok := true
		for _, p := range parts {
			ok = ok && bytes.Contains(b, []byte(p))
		}
		if ok {
			return pid
		}
	}
	return 0
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func TestDaemonize(t *testing.T) {
	dir := tu.ShortTempDir(t)
	logS, q, sys := filepath.Join(dir, "log.sock"), filepath.Join(dir, "q.sock"), filepath.Join(dir, "syslog.sock")
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(tu.MemlogdBin(), "-daemonize", "-socket-log", logS, "-socket-query", q, "-socket-syslog", sys, "-console=false")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("memlogd -daemonize: %v; output:\n%s", err, b)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("memlogd -daemonize did not return within 10 s")
	}
	// Right after it returns, both sockets exist and answer.
	for _, p := range []string{logS, q, sys} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("after -daemonize returned: %v", err)
		}
	}
	pid := findProcess(q, "-fd-query=4")
	if pid == 0 {
		t.Fatalf("no background memlogd serving %s", q)
	}
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	c := tu.Request(t, q, `{"mode":"dump"}`)
	if h := c.Next(5 * time.Second); h.Type != "hello" {
		t.Fatalf("query socket right after -daemonize: %s", h.Line)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tu.SendFDs(t, logS, []byte("daemonized.out"), fds[0])
	defer unix.Close(fds[0])
	w := os.NewFile(uintptr(fds[1]), "w")
	w.Write([]byte("served by the background copy\n"))
	w.Close()
	sendSyslog(t, sys, "<14>tagged: via syslog")
	tu.WaitMsg(t, q, "daemonized.out", "served by the background copy", 10*time.Second)
	tu.WaitMsg(t, q, "tagged", "via syslog", 10*time.Second)

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !tu.Eventually(10*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("background memlogd %d still running 10 s after SIGTERM", pid)
	}
	for _, p := range []string{logS, q, sys} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after SIGTERM to the background copy (%v)", p, err)
		}
	}
}

func TestRegularFileAtSocketPath(t *testing.T) {
	for _, which := range []string{"log", "query", "syslog"} {
		t.Run(which, func(t *testing.T) {
			dir := tu.ShortTempDir(t)
			paths := map[string]string{"log": filepath.Join(dir, "log.sock"), "query": filepath.Join(dir, "q.sock"), "syslog": filepath.Join(dir, "syslog.sock")}
			victim := paths[which]
			if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tu.MemlogdBin(), "-socket-log", paths["log"], "-socket-query", paths["query"], "-socket-syslog", paths["syslog"], "-console=false")
			var stderr tu.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("memlogd exited 0 with a regular file at %s", victim)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("memlogd kept running with a regular file at %s", victim)
			}
			if !strings.Contains(stderr.String(), victim) || !strings.Contains(stderr.String(), "not a socket") {
				t.Errorf("stderr does not say what is wrong: %q", stderr.String())
			}
			if b, err := os.ReadFile(victim); err != nil || string(b) != "precious\n" {
				t.Errorf("the regular file was removed or changed: %q, %v", b, err)
			}
			for name, p := range paths {
				if name != which {
					if _, err := os.Lstat(p); !os.IsNotExist(err) {
						t.Errorf("%s left behind after the failed start (%v)", p, err)
					}
				}
			}
		})
	}
}

func TestConsoleEcho(t *testing.T) {
	d := tu.StartWith(t, tu.Options{Args: []string{"-console=true"}})
	w := d.Socketpair("con;sole")
	w.Write([]byte("hello console\n"))
	if !tu.Eventually(10*time.Second, func() bool { return strings.Contains(d.Stdout.String(), `;con\;sole;hello console`+"\n") }) {
		t.Fatalf("console output %q lacks the entry", d.Stdout.String())
	}
	for _, l := range strings.Split(strings.TrimSuffix(d.Stdout.String(), "\n"), "\n") {
		parseText(t, l)
	}
}

// TestConsoleBlocked: a console nobody reads does not hold up ingestion or
// readers; once it drains, memlogd says how many entries it skipped.
func TestConsoleBlocked(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	d := tu.StartWith(t, tu.Options{Stdout: pw, Args: []string{"-console=true", "-max-lines", "1000"}})
	pw.Close()
	w := d.Socketpair("flood")
	const total = 20000
	start := time.Now()
	writePadded(t, w, "flood ", 0, total, 100) // 2 MB: the pipe holds 64 KiB
	waitLast(t, d, "flood", "flood ", total-1, 20*time.Second)
	t.Logf("%d lines ingested in %v with a blocked console", total, time.Since(start))
	_, recs := tu.Dump(t, d.Query, `"sources":["flood"]`)
	if len(recs) != 1000 {
		t.Errorf("dump with a blocked console: %d entries, want 1000", len(recs))
	}
	for i, r := range recs {
		if n := lineNumber(t, r.Msg, "flood "); n != total-1000+i {
			t.Fatalf("dump entry %d is line %d", i, n)
		}
	}
	lastSeq := recs[len(recs)-1].Seq

	// Drain the console until the last line.
	type result struct {
		entries, skipped int
		reports          []string
		err              error
	}
	resc := make(chan result, 1)
	go func() {
		var res result
		br := bufio.NewReader(pr)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				res.err = err
				break
			}
			if i := strings.Index(line, ";memlogd;console too slow: "); i >= 0 {
				var n int
				fmt.Sscanf(line[i+len(";memlogd;console too slow: "):], "%d", &n)
				res.skipped += n
				res.reports = append(res.reports, strings.TrimSpace(line))
				continue
			}
			res.entries++
			if strings.Contains(line, fmt.Sprintf(";flood;flood %d ", total-1)) {
				break
			}
		}
		resc <- res
	}()
	var res result
	select {
	case res = <-resc:
	case <-time.After(20 * time.Second):
		t.Fatalf("console did not echo the last line within 20 s of being drained")
	}
	if res.err != nil {
		t.Fatalf("reading the console: %v", res.err)
	}
	if len(res.reports) == 0 {
		t.Fatalf("console skipped entries but said nothing (echoed %d entries)", res.entries)
	}
	t.Logf("console: %d entries echoed, %d skipped: %q", res.entries, res.skipped, res.reports)
	if uint64(res.entries+res.skipped) != lastSeq {
		t.Errorf("console echoed %d + skipped %d = %d entries, want %d (the last line's seq)", res.entries, res.skipped, res.entries+res.skipped, lastSeq)
	}
}

// TestHostileLogSocket sends what LinuxKit's init never sends: each case is
// reported as an entry from memlogd and holds no descriptor.
func TestHostileLogSocket(t *testing.T) {
	d := tu.Start(t)
	tu.SendFDs(t, d.Log, []byte("nofd"))
	tu.WaitMsgContaining(t, d.Query, "memlogd", `"nofd" carried no file descriptor`, 10*time.Second)

	// Several descriptors in one datagram: all get its name.
	var a, b [2]int
	var err error
	for _, p := range []*[2]int{&a, &b} {
		if *p, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			t.Fatal(err)
		}
	}
	tu.SendFDs(t, d.Log, []byte("multi"), a[0], b[0])
	unix.Close(a[0])
	unix.Close(b[0])
	unix.Write(a[1], []byte("from the first\n"))
	unix.Write(b[1], []byte("from the second\n"))
	unix.Close(a[1])
	unix.Close(b[1])
	tu.WaitMsg(t, d.Query, "multi", "from the first", 10*time.Second)
	tu.WaitMsg(t, d.Query, "multi", "from the second", 10*time.Second)

	// A name longer than 4096 bytes.
	long := strings.Repeat("n", 5000)
	if a, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		t.Fatal(err)
	}
	tu.SendFDs(t, d.Log, []byte(long), a[0])
	unix.Close(a[0])
	unix.Write(a[1], []byte("long name\n"))
	unix.Close(a[1])
	tu.WaitMsgContaining(t, d.Query, "memlogd", "name longer than", 10*time.Second)
	tu.WaitMsg(t, d.Query, long[:255], "long name", 10*time.Second)

	// A regular file, a directory, a write-only pipe end, a datagram socket.
	f, err := os.Create(filepath.Join(d.Dir, "regular"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("not a stream\n")
	tu.SendFDs(t, d.Log, []byte("regfile"), int(f.Fd()))
	f.Close()
	tu.WaitMsgContaining(t, d.Query, "memlogd", `"regfile" refused`, 10*time.Second)

	dfd, err := unix.Open(d.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tu.SendFDs(t, d.Log, []byte("dir"), dfd)
	unix.Close(dfd)
	tu.WaitMsgContaining(t, d.Query, "memlogd", `"dir" refused`, 10*time.Second)

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	tu.SendFDs(t, d.Log, []byte("wronly"), p[1])
	unix.Close(p[0])
	unix.Close(p[1])
	tu.WaitMsgContaining(t, d.Query, "memlogd", `"wronly" refused`, 10*time.Second)

	dg, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tu.SendFDs(t, d.Log, []byte("dgram"), dg)
	unix.Close(dg)
	tu.WaitMsgContaining(t, d.Query, "memlogd", `"dgram" refused`, 10*time.Second)

	if d.Exited() {
		t.Fatalf("memlogd exited: %s", d.Stderr)
	}
}

// TestNoFDLeak opens and closes 200 streams (and some refused
// descriptors); memlogd's descriptor count returns to where it was.
func TestNoFDLeak(t *testing.T) {
	d := tu.Start(t)
	// Warm up: the first stream may create lasting descriptors (epoll).
	w := d.Socketpair("warm")
	w.Write([]byte("up\n"))
	w.Close()
	tu.WaitMsg(t, d.Query, "warm", "up", 10*time.Second)
	var before int
	tu.Eventually(2*time.Second, func() bool {
		n := tu.CountFDs(t, d.PID())
		settled := n == before
		before = n
		return settled
	})
	for i := 0; i < 200; i++ {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		extra := []int{fds[0]}
		var p [2]int
		if i%10 == 0 {
			unix.Pipe2(p[:], unix.O_CLOEXEC)
			extra = append(extra, p[1]) // refused: write-only
		}
		tu.SendFDs(t, d.Log, []byte("leak"), extra...)
		for _, fd := range extra {
			unix.Close(fd)
		}
		if i%10 == 0 {
			unix.Close(p[0])
		}
		unix.Write(fds[1], []byte(fmt.Sprintf("stream %d\n", i)))
		unix.Close(fds[1])
	}
	tu.WaitMsg(t, d.Query, "leak", "stream 199", 10*time.Second)
	var after int
	if !tu.Eventually(10*time.Second, func() bool {
		after = tu.CountFDs(t, d.PID())
		return after <= before
	}) {
		t.Errorf("memlogd holds %d descriptors after 200 closed streams, %d before", after, before)
	}
	_, recs := tu.Dump(t, d.Query, `"sources":["leak"]`)
	if len(recs) != 200 {
		t.Errorf("%d of 200 streams' lines arrived", len(recs))
	}
}

func TestLines(t *testing.T) {
	d := tu.Start(t, "-max-line-len", "100")
	w := d.Socketpair("lines")
	huge := strings.Repeat("e", 200000)
	input := strings.Repeat("a", 250) + "\n" +
		"next\n" +
		"crlf\r\n" +
		"nul\x00x\n" +
		"bad\xff\xc3(\n" +
		strings.Repeat("b", 100) + "\n" +
		strings.Repeat("c", 101) + "\n" +
		strings.Repeat("d", 100) + "\r\n" +
		huge + "\n" +
		"after huge\n" +
		"partial"
	// In small pieces, so that lines cross reads.
	for i := 0; i < len(input); i += 37 {
		if _, err := w.Write([]byte(input[i:min(i+37, len(input))])); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	recs := tu.WaitMsg(t, d.Query, "lines", "partial", 10*time.Second)
	type want struct {
		msg                string
		truncated, partial bool
	}
	wants := []want{
		{strings.Repeat("a", 100), true, false},
		{"next", false, false},
		{"crlf", false, false},
		{"nul\x00x", false, false},
		{"bad\ufffd\ufffd(", false, false},
		{strings.Repeat("b", 100), false, false},
		{strings.Repeat("c", 100), true, false},
		{strings.Repeat("d", 100), false, false},
		{strings.Repeat("e", 100), true, false},
		{"after huge", false, false},
		{"partial", false, true},
	}
	var got []tu.Record
	for _, r := range recs {
		if r.Source == "lines" {
			got = append(got, r)
		}
	}
	if len(got) != len(wants) {
		var msgs []string
		for _, r := range got {
			msgs = append(msgs, fmt.Sprintf("%.30q", r.Msg))
		}
		t.Fatalf("%d entries, want %d: %v", len(got), len(wants), msgs)
	}
	for i, w := range wants {
		r := got[i]
		if r.Msg != w.msg || r.Truncated != w.truncated || r.Partial != w.partial {
			t.Errorf("entry %d: %.80s, want msg %.30q truncated %v partial %v", i, r.Line, w.msg, w.truncated, w.partial)
		}
	}
	// The legacy stream stays valid JSON, one object per line.
	c := tu.Dial(t, d.Query, []byte{0})
	c.C.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, err := io.ReadAll(c.BR)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSuffix(all, []byte("\n")), []byte("\n")) {
		if !json.Valid(l) {
			t.Errorf("legacy line is not valid JSON: %q", l)
		}
	}
}
