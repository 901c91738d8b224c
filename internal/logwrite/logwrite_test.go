package logwrite

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logfile"
	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/testutil"
)

// LinuxKit's own test: with -max-log-size 1024 the file is rotated to
// fill-the-logs.out.log.0.
func TestLinuxKitRotationExpectation(t *testing.T) {
	e := newEnv(t, 10000)
	lw := e.logwrite("-max-log-size", "1024")
	src := e.source("fill-the-logs.out")
	writeNumbers(t, src, "fill", 1, 400)
	waitFor(t, 10*time.Second, "the last line", func() bool {
		l, _ := trySourceLines(e.logDir, "fill-the-logs.out")
		return len(l) > 0 && strings.HasSuffix(l[len(l)-1], " fill 400")
	})
	lw.stop(t)
	if _, err := os.Stat(filepath.Join(e.logDir, "fill-the-logs.out.log.0")); err != nil {
		t.Fatal(err)
	}
	nums, lost := numbers(t, sourceLines(t, e.logDir, "fill-the-logs.out"), "fill-the-logs.out", "fill")
	if lost != 0 {
		t.Fatalf("%d lost", lost)
	}
	// 10 files of about 1 KiB hold the last lines.
	if len(nums) == 0 || nums[len(nums)-1] != 400 {
		t.Fatalf("last line %v", nums[len(nums)-5:])
	}
	exactlyOnce(t, nums, nums[0], 400)
	for _, n := range []string{"fill-the-logs.out.log.9", "fill-the-logs.out.log.10"} {
		_, err := os.Stat(filepath.Join(e.logDir, n))
		if want := n == "fill-the-logs.out.log.9"; (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", n, err == nil, want)
		}
	}
}

// kill -9 in the middle of a stream, several times: every line once.
// With -sync checkpoint the synced checkpoints wait for the disk in the
// background and rotated files are compressed while kept open for them.
func TestKillNineExactlyOnce(t *testing.T) {
	for _, sync := range []string{SyncNone, SyncCheckpoint} {
		t.Run("sync="+sync, func(t *testing.T) {
			args := []string{"-max-log-size", "65536", "-max-log-files", "1000", "-sync", sync, "-checkpoint-interval", "50ms"}
			if sync == SyncCheckpoint {
				args = append(args, "-compress")
			}
			killNineExactlyOnce(t, args)
		})
	}
}

func killNineExactlyOnce(t *testing.T, args []string) {
	const total = 60000
	e := newEnv(t, 200000)
	lw := e.logwrite(args...)
	src := e.source("numbers.out")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= total; i += 500 {
			writeNumbers(t, src, "n", i, i+499)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for kills < 8 {
		time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
		lw.Kill()
		kills++
		lw = e.logwrite(args...)
	}
	<-done
	waitFor(t, 30*time.Second, "all lines", func() bool { return countLines(t, e.logDir, "numbers.out") >= total })
	time.Sleep(200 * time.Millisecond)
	lw.stop(t)
	nums, lost := numbers(t, sourceLines(t, e.logDir, "numbers.out"), "numbers.out", "n")
	if lost != 0 {
		t.Fatalf("%d lost", lost)
	}
	exactlyOnce(t, nums, 1, total)
}

// kill -9 after a rotation with no checkpoint since: the file that
// replaced the rotated one is not in the state (a rotation checkpoints
// once, before it), yet its lines are cut back and written again once.
func TestKillNineAfterRotation(t *testing.T) {
	e := newEnv(t, 1000)
	args := []string{"-max-log-size", "1024", "-max-log-files", "1000", "-sync", "none", "-checkpoint-interval", "1h"}
	// Once logwrite has caught up on what memlogd held (its own start
	// message) and checkpointed, only a rotation makes a checkpoint.
	held := lastSeq(t, e)
	lw := e.logwrite(args...)
	waitFor(t, 30*time.Second, "logwrite to catch up", func() bool { return written(e, held) })
	src := e.source("rot")
	writeNumbers(t, src, "n", 1, 100)
	waitFor(t, 30*time.Second, "lines 1-100", func() bool { return countLines(t, e.logDir, "rot") == 100 })
	lw.Kill()
	<-lw.Done()
	st, err := LoadState(e.logDir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(e.logDir, "rot.log"))
	if err != nil {
		t.Fatal(err)
	}
	var rot FileState
	for _, f := range st.Files {
		if f.Name == "rot.log" {
			rot = f
		}
	}
	if !rot.Rotating || rot.Ino == fi.Sys().(*syscall.Stat_t).Ino || fi.Size() == 0 {
		t.Fatalf("not the case under test: state %+v, rot.log %d bytes", st, fi.Size())
	}
	lw = e.logwrite(args...)
	writeNumbers(t, src, "n", 101, 150)
	waitFor(t, 30*time.Second, "lines up to 150", func() bool {
		lines, err := trySourceLines(e.logDir, "rot")
		return err == nil && len(lines) > 0 && strings.HasSuffix(lines[len(lines)-1], " n 150")
	})
	lw.stop(t)
	nums, lost := numbers(t, sourceLines(t, e.logDir, "rot"), "rot", "n")
	if lost != 0 {
		t.Errorf("%d reported lost", lost)
	}
	exactlyOnce(t, nums, 1, 150)
}

// kill -9 with -sync always and small files (a rotation at nearly every
// batch): the crash lands between rotations and checkpoints too.
func TestKillNineDuringRotations(t *testing.T) {
	const total = 20000
	e := newEnv(t, 100000)
	args := []string{"-max-log-size", "4096", "-max-log-files", "9999", "-sync", "always", "-compress"}
	lw := e.logwrite(args...)
	src := e.source("rot")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= total; i += 200 {
			writeNumbers(t, src, "n", i, i+199)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for k := 0; k < 6; k++ {
		time.Sleep(time.Duration(80+k*37) * time.Millisecond)
		lw.Kill()
		lw = e.logwrite(args...)
	}
	<-done
	waitFor(t, 60*time.Second, "all lines", func() bool { return countLines(t, e.logDir, "rot") >= total })
	lw.stop(t)
	nums, _ := numbers(t, sourceLines(t, e.logDir, "rot"), "rot", "n")
	exactlyOnce(t, nums, 1, total)
}

// A new memlogd instance (a reboot): the old lines stay, the new ring is
// written from its start, nothing twice.
func TestNewInstance(t *testing.T) {
	e := newEnv(t, 10000)
	lw := e.logwrite()
	src := e.source("svc")
	writeNumbers(t, src, "n", 1, 1000)
	waitFor(t, 10*time.Second, "first boot's lines", func() bool { return countLines(t, e.logDir, "svc") == 1000 })
	// Killed right away: the lines after the last checkpoint must not be
	// cut, as the new instance cannot send them again.
	lw.Kill()
	e.memlogd.Kill()
	e.startMemlogd(10000)
	src = e.source("svc")
	writeNumbers(t, src, "n", 1001, 2000)
	lw = e.logwrite()
	waitFor(t, 10*time.Second, "second boot's lines", func() bool { return countLines(t, e.logDir, "svc") >= 2000 })
	time.Sleep(300 * time.Millisecond)
	lw.stop(t)
	nums, lost := numbers(t, sourceLines(t, e.logDir, "svc"), "svc", "n")
	if lost != 0 {
		t.Fatalf("lost %d", lost)
	}
	exactlyOnce(t, nums, 1, 2000)
	if !strings.Contains(lw.Output(), "new instance") {
		t.Errorf("no word about the new instance: %s", lw.Output())
	}
}

// memlogd goes away and comes back while logwrite runs: it reconnects with
// backoff (little CPU meanwhile) and writes the new instance's lines.
func TestReconnect(t *testing.T) {
	e := newEnv(t, 10000)
	lw := e.logwrite("-max-backoff", "500ms")
	src := e.source("svc")
	writeNumbers(t, src, "n", 1, 100)
	waitFor(t, 10*time.Second, "lines", func() bool { return countLines(t, e.logDir, "svc") == 100 })
	e.memlogd.Kill()
	os.Remove(e.querySock())
	cpu0 := lw.cpu(t)
	time.Sleep(2 * time.Second)
	if used := lw.cpu(t) - cpu0; used > 200*time.Millisecond {
		t.Errorf("logwrite used %v of CPU in 2 s without memlogd: a busy loop", used)
	}
	e.startMemlogd(10000)
	src = e.source("svc")
	writeNumbers(t, src, "n", 101, 200)
	waitFor(t, 10*time.Second, "lines after the restart", func() bool { return countLines(t, e.logDir, "svc") >= 200 })
	time.Sleep(200 * time.Millisecond)
	lw.stop(t)
	nums, _ := numbers(t, sourceLines(t, e.logDir, "svc"), "svc", "n")
	exactlyOnce(t, nums, 1, 200)
	if !strings.Contains(lw.Output(), "reconnecting") {
		t.Errorf("no reconnect reported: %s", lw.Output())
	}
}

// Entries evicted before logwrite read them show up as one gap line with
// the number lost.
func TestGapLine(t *testing.T) {
	e := newEnv(t, 100, "-pace-wait", "0")
	src := e.source("svc")
	writeNumbers(t, src, "n", 1, 1000)
	// memlogd's own "started" entry is evicted too.
	waitFor(t, 5*time.Second, "memlogd to hold the lines", func() bool { return true })
	time.Sleep(300 * time.Millisecond)
	lw := e.logwrite()
	waitFor(t, 10*time.Second, "lines", func() bool { return countLines(t, e.logDir, "svc") >= 100 })
	lw.stop(t)
	all := append(sourceLines(t, e.logDir, "memlogd"), sourceLines(t, e.logDir, "svc")...)
	var gapLines []string
	for _, l := range all {
		if strings.Contains(l, " logwrite: ") {
			gapLines = append(gapLines, l)
		}
	}
	if len(gapLines) != 1 || !strings.Contains(gapLines[0], " entries lost here") {
		t.Fatalf("gap lines: %q", gapLines)
	}
	nums, _ := numbers(t, sourceLines(t, e.logDir, "svc"), "svc", "n")
	exactlyOnce(t, nums, 901, 1000)
}

// Hostile source names stay inside the directory, each in its own file.
func TestHostileNames(t *testing.T) {
	e := newEnv(t, 10000)
	outside := filepath.Dir(e.logDir)
	names := []string{"../escape", "../../etc/passwd", "a/b", ".", "..", "ctl\x01\x1b[2J", strings.Repeat("L", 250),
		strings.Repeat("L", 250) + "2", "x", "x.log", "x.log.0", "%2E", "sp ace", "logwrite-not-me", "ok"}
	lw := e.logwrite("-max-log-size", "100000")
	for _, n := range names {
		f := e.source(n)
		f.WriteString("hello from " + strings.ReplaceAll(n, "\n", "") + "\n")
		f.Close()
	}
	want := len(names) - 1 // logwrite* is skipped
	waitFor(t, 10*time.Second, "a file per name", func() bool {
		n := 0
		for _, name := range names {
			if _, err := os.Stat(filepath.Join(e.logDir, logfile.FileName(name))); err == nil {
				n++
			}
		}
		return n >= want
	})
	time.Sleep(300 * time.Millisecond)
	lw.stop(t)
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		var ns []string
		for _, e := range ents {
			ns = append(ns, e.Name())
		}
		t.Fatalf("files outside the log directory: %q", ns)
	}
	ents, _ = os.ReadDir(e.logDir)
	for _, en := range ents {
		if en.IsDir() || strings.HasPrefix(en.Name(), ".") {
			t.Errorf("unexpected entry %q", en.Name())
		}
	}
	for _, n := range names {
		p := filepath.Join(e.logDir, logfile.FileName(n))
		b, err := os.ReadFile(p)
		if strings.HasPrefix(n, "logwrite") {
			if err == nil {
				t.Errorf("own source %q written", n)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", n, err)
			continue
		}
		if lines := strings.Count(string(b), "\n"); lines != 1 || !strings.Contains(string(b), " "+string(logproto.AppendEscaped(nil, n, false))+" hello from") {
			t.Errorf("%q: file %s holds %q", n, p, b)
		}
	}
}

// -compress and -max-total-size: every rotated file decompresses to its
// lines, the directory stays under the quota and the newest lines are
// kept.
func TestCompressAndQuota(t *testing.T) {
	e := newEnv(t, 100000)
	const quota = 30000
	lw := e.logwrite("-max-log-size", "8192", "-max-log-files", "100", "-compress", "-max-total-size", "30000")
	src := e.source("big")
	const total = 20000
	writeNumbers(t, src, "n", 1, total)
	waitFor(t, 20*time.Second, "the last line", func() bool {
		l, _ := trySourceLines(e.logDir, "big")
		return len(l) > 0 && strings.HasSuffix(l[len(l)-1], " n 20000")
	})
	time.Sleep(200 * time.Millisecond)
	lw.stop(t)
	var size int64
	ents, _ := os.ReadDir(e.logDir)
	gz := 0
	for _, en := range ents {
		info, _ := en.Info()
		size += info.Size()
		if strings.HasSuffix(en.Name(), ".gz") {
			gz++
		}
	}
	if size > quota+8192+200 {
		t.Errorf("directory holds %d bytes, quota %d", size, quota)
	}
	if gz < 2 {
		t.Errorf("%d compressed files", gz)
	}
	nums, _ := numbers(t, sourceLines(t, e.logDir, "big"), "big", "n")
	if len(nums) < 1000 {
		t.Fatalf("only %d lines kept", len(nums))
	}
	// The oldest were deleted; what is kept is contiguous up to the end.
	exactlyOnce(t, nums, nums[0], total)
	if nums[0] == 1 {
		t.Error("the quota deleted nothing")
	}
}

// LinuxKit's memlogd answers an extended request by closing the
// connection: logwrite falls back to mode 2, says exactly-once is
// impossible, and still writes the lines.
func TestLegacyFallback(t *testing.T) {
	_, lwBin := build(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "q.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	modes := make(chan byte, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				b := make([]byte, 1)
				if _, err := c.Read(b); err != nil {
					return
				}
				modes <- b[0]
				if b[0] != 2 {
					return // what LinuxKit's memlogd does with '{'
				}
				w := bufio.NewWriter(c)
				w.WriteString(`{"time":"2024-01-02T03:04:05.123456789Z","source":"app","msg":"one"}` + "\n")
				w.WriteString(`{"time":"2024-01-02T03:04:06Z","source":"logwrite","msg":"own"}` + "\n")
				w.WriteString(`{"time":"2024-01-02T03:04:07Z","source":"app","msg":"two"}` + "\n")
				w.Flush()
				time.Sleep(10 * time.Second)
			}(c)
		}
	}()
	logDir := filepath.Join(dir, "log")
	lw := start(t, lwBin, "-socket", sock, "-log-dir", logDir)
	waitFor(t, 10*time.Second, "app.log", func() bool {
		b, _ := os.ReadFile(filepath.Join(logDir, "app.log"))
		return strings.Count(string(b), "\n") == 2
	})
	lw.stop(t)
	b, _ := os.ReadFile(filepath.Join(logDir, "app.log"))
	if want := "2024-01-02T03:04:05Z app one\n2024-01-02T03:04:07Z app two\n"; string(b) != want {
		t.Errorf("app.log = %q, want %q", b, want)
	}
	// Twice the extended request closed (a reset) with mode 2 beside it,
	// then mode 2 alone.
	var got []byte
	for len(got) < 5 {
		got = append(got, <-modes)
	}
	if bytes.Count(got[:4], []byte("{")) != 2 || bytes.Count(got[:4], []byte{2}) != 2 || got[4] != 2 {
		t.Errorf("requests %q", got)
	}
	if !strings.Contains(lw.Output(), "Exactly-once is impossible") {
		t.Errorf("stderr: %s", lw.Output())
	}
	if _, err := os.Stat(filepath.Join(logDir, "logwrite.log")); err == nil {
		t.Error("own output written")
	}
}

// A LinuxKit memlogd that never answers the extended request (it reads
// one byte and waits) is recognised well within the hello timeout, from
// the mode 2 request sent beside it, and that stream is written: nothing
// it held is lost to waiting, even when its ring wraps right after.
func TestLegacySilentQuickNoLoss(t *testing.T) {
	_, lwBin := build(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "q.sock")
	const n = 1000
	firstConn := sync.OnceValue(time.Now)
	testutil.ServeUnix(t, sock, func(c net.Conn) {
		began := firstConn()
		b := make([]byte, 1)
		if _, err := c.Read(b); err != nil || b[0] != 2 {
			return // never answered, never closed
		}
		// The ring wraps 2 s after the first connection: the
		// first half of the lines is gone for a later request.
		from := 1
		if time.Since(began) > 2*time.Second {
			from = n/2 + 1
		}
		w := bufio.NewWriter(c)
		for i := from; i <= n; i++ {
			fmt.Fprintf(w, `{"time":"2024-01-02T03:04:05Z","source":"app","msg":"n %d"}`+"\n", i)
		}
		w.Flush()
	})
	logDir := filepath.Join(dir, "log")
	began := time.Now()
	lw := start(t, lwBin, "-socket", sock, "-log-dir", logDir)
	waitFor(t, 30*time.Second, "app.log", func() bool { return countLines(t, logDir, "app") == n })
	took := time.Since(began)
	lw.stop(t)
	nums, _ := numbers(t, sourceLines(t, logDir, "app"), "app", "n")
	exactlyOnce(t, nums, 1, n)
	if took >= logclient.HelloTimeout {
		t.Errorf("took %v: as long as the hello timeout", took)
	}
	if !strings.Contains(lw.Output(), "falling back to LinuxKit's mode 2") {
		t.Errorf("stderr: %s", lw.Output())
	}
}

// The sender's timestamp ("ts") is preferred over memlogd's receive time.
func TestLineFormat(t *testing.T) {
	var b []byte
	var f logproto.TextFormatter
	ts := time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	b = appendLine(b, &f, ts, "src\nx;y", "a\nb\x1b[2J\\ \xff;")
	if got, want := string(b), `2025-03-04T05:06:07Z src\nx;y a\nb\x1b[2J\\ \xff;`+"\n"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}

// Started on a ring full of lines, logwrite checkpoints the moment it has
// written what memlogd held, not a -checkpoint-interval later (an hour
// here): the state file soon says the last entry is written, with no
// rotation or exit to force a checkpoint.
func TestCheckpointWhenCaughtUp(t *testing.T) {
	e := newEnv(t, 10000)
	src := e.source("burst.out")
	writeNumbers(t, src, "n", 1, 5000)
	var last uint64
	waitFor(t, 30*time.Second, "memlogd to hold the lines", func() bool { last = lastSeq(t, e); return last >= 5000 })
	lw := e.logwrite("-checkpoint-interval", "1h")
	waitFor(t, 60*time.Second, "the state file to reach the last entry", func() bool { return written(e, last) })
	st, err := LoadState(e.logDir)
	if err != nil {
		t.Fatal(err)
	}
	lw.stop(t)
	if !regexp.MustCompile(`, \d+ checkpoints \([^)]+\),`).MatchString(lw.Output()) {
		t.Errorf("logwrite's last words do not count its checkpoints:\n%s", lw.Output())
	}
	nums, _ := numbers(t, sourceLines(t, e.logDir, "burst.out"), "burst.out", "n")
	exactlyOnce(t, nums, 1, 5000)
	// The state's size for the file covers every line.
	for _, f := range st.Files {
		if f.Source != "burst.out" {
			continue
		}
		fi, err := os.Stat(filepath.Join(e.logDir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if f.Size != fi.Size() {
			t.Errorf("state says %s has %d bytes, it has %d", f.Name, f.Size, fi.Size())
		}
		return
	}
	t.Errorf("state %+v does not list burst.out's file", st)
}

// The same when memlogd's newest entry is one logwrite does not get (its
// own lines, which memlogd filters out for it): it checkpoints once it has
// everything memlogd sent, without waiting for the interval.
func TestCheckpointWhenCaughtUpFiltered(t *testing.T) {
	e := newEnv(t, 10000)
	src := e.source("burst.out")
	writeNumbers(t, src, "n", 1, 500)
	var keep uint64
	waitFor(t, 30*time.Second, "memlogd to hold the lines", func() bool { keep = lastSeq(t, e); return keep >= 500 })
	own := e.source("logwrite")
	if _, err := own.Write([]byte("logwrite: stopping: an earlier run's last words\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "memlogd to hold logwrite's line", func() bool { return lastSeq(t, e) > keep })
	lw := e.logwrite("-checkpoint-interval", "1h")
	defer lw.stop(t)
	waitFor(t, 60*time.Second, "the state file to reach the last burst entry", func() bool { return written(e, keep) })
}

// New sources arriving together cost one checkpoint, not one each: the
// files of a batch's new sources are opened first and listed in the state
// at once.
func TestOneCheckpointForNewFiles(t *testing.T) {
	const sources = 12
	e := newEnv(t, 10000)
	for i := range sources {
		src := e.source(fmt.Sprintf("new%d", i))
		writeNumbers(t, src, "n", 1, 3)
	}
	var last uint64
	waitFor(t, 30*time.Second, "memlogd to hold the lines", func() bool { last = lastSeq(t, e); return last >= 3*sources })
	lw := e.logwrite("-checkpoint-interval", "1h")
	waitFor(t, 60*time.Second, "the state file to reach the last entry", func() bool { return written(e, last) })
	lw.stop(t)
	for i := range sources {
		src := fmt.Sprintf("new%d", i)
		nums, _ := numbers(t, sourceLines(t, e.logDir, src), src, "n")
		exactlyOnce(t, nums, 1, 3)
	}
	m := regexp.MustCompile(`, (\d+) checkpoints \([^)]+\),`).FindStringSubmatch(lw.Output())
	if m == nil {
		t.Fatalf("logwrite's last words do not count its checkpoints:\n%s", lw.Output())
	}
	// One for the new files (two if the reply came in two batches), one
	// on catching up, one at exit; one per file would be 14 or more.
	if n, _ := strconv.Atoi(m[1]); n > 5 {
		t.Errorf("%d checkpoints for %d new files", n, sources+1)
	}
}

// A rotation saves the state without waiting for the disk (a process
// that dies leaves the page cache behind; a power loss also ends memlogd):
// catching up across many rotations with -sync checkpoint costs a synced
// checkpoint on catching up and one at exit, not one per rotation. The
// rotated files are synced all the same, by the next synced checkpoint:
// when the state says everything is written, none of their pages is dirty.
func TestRotationsDoNotWaitForTheDisk(t *testing.T) {
	e := newEnv(t, 10000)
	src := e.source("burst.out")
	writeNumbers(t, src, "n", 1, 5000) // about 20 files of 4 KiB
	var last uint64
	waitFor(t, 30*time.Second, "memlogd to hold the lines", func() bool { last = lastSeq(t, e); return last >= 5000 })
	lw := e.logwrite("-sync", "checkpoint", "-checkpoint-interval", "1h", "-max-log-size", "4096", "-max-log-files", "1000")
	// The state of the checkpoint on catching up, not a rotation's mark
	// (if the last entry filled a file): no file in it is marked rotated.
	waitFor(t, 60*time.Second, "the state file to reach the last entry", func() bool {
		st, err := LoadState(e.logDir)
		if err != nil || st.Cursor.Seq < last {
			return false
		}
		for _, f := range st.Files {
			if f.Rotating {
				return false
			}
		}
		return true
	})
	rotated := 0
	ents, err := os.ReadDir(e.logDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		if _, ok := logfile.IsRotated(ent.Name()); !ok {
			continue
		}
		rotated++
		if n := dirtyPages(t, filepath.Join(e.logDir, ent.Name())); n > 0 {
			t.Errorf("%s has %d dirty pages after the checkpoint that covers it", ent.Name(), n)
		}
	}
	lw.stop(t)
	if rotated < 10 {
		t.Fatalf("%d rotated files, want 10 or more", rotated)
	}
	nums, _ := numbers(t, sourceLines(t, e.logDir, "burst.out"), "burst.out", "n")
	exactlyOnce(t, nums, 1, 5000)
	m := regexp.MustCompile(`, (\d+) rotations .*, (\d+) checkpoints \([^)]+\), (\d+) of them synced,`).FindStringSubmatch(lw.Output())
	if m == nil {
		t.Fatalf("logwrite's last words do not count rotations and synced checkpoints:\n%s", lw.Output())
	}
	// On catching up and at exit (and one more if the exit's finds
	// nothing new it still counts).
	if n, _ := strconv.Atoi(m[3]); n > 3 {
		t.Errorf("%s rotations made %d synced checkpoints, want at most 3", m[1], n)
	}
}

// dirtyPages is the number of the file's pages in the page cache that
// are not written to the disk yet; the test is skipped where that cannot
// be seen (no cachestat(2), a filesystem in memory).
func dirtyPages(t *testing.T, path string) uint64 {
	t.Helper()
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		t.Fatal(err)
	}
	if m := uint32(sfs.Type); m == unix.TMPFS_MAGIC || m == unix.RAMFS_MAGIC {
		t.Skipf("%s is in memory: nothing is ever written to a disk", path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cs unix.Cachestat_t
	err = unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{}, &cs, 0)
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("no cachestat(2) to see dirty pages")
	}
	if err != nil {
		t.Fatal(err)
	}
	return cs.Dirty
}

// memlogd may be slow to send its dump: logwrite, having written all
// that arrived, finds nothing more waiting before it has reached the end
// the hello announced. That is not the end: when the rest arrives, it
// still checkpoints on reaching it, not an interval later (an hour here).
// A stand-in memlogd sends the first half of the dump, waits until
// logwrite has written it, then sends the rest and keeps the stream open.
func TestCaughtUpAfterASlowDump(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	sock := filepath.Join(dir, "q.sock")
	half := make(chan struct{})
	standIn(t, sock, n, n+1, half)
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	_, bin := build(t)
	lw := start(t, bin, "-socket", sock, "-log-dir", logDir, "-checkpoint-interval", "1h")
	defer lw.stop(t)
	waitFor(t, 60*time.Second, "logwrite to write the first half", func() bool {
		lines, err := trySourceLines(logDir, "slow")
		return err == nil && len(lines) >= n/2
	})
	close(half)
	waitFor(t, 60*time.Second, "the state file to reach the last entry", func() bool {
		st, err := LoadState(logDir)
		return err == nil && st.Cursor.Seq >= n
	})
}
