package logwrite

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/testutil"
)

const nsEnv = "LKLOG_LOGWRITE_TEST_NS"

// inNamespace runs the calling test again in a child process with a
// private mount namespace (we run as root; the test is skipped where
// unshare is not permitted). It returns true in the child, where the test
// body runs, and false in the parent, which only reports the child's
// result.
func inNamespace(t *testing.T) bool {
	t.Helper()
	if os.Getenv(nsEnv) == t.Name() {
		return true
	}
	dir := testutil.Build(t, "memlogd", "logwrite") // the child reuses the binaries
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), nsEnv+"="+t.Name(), testutil.BinEnv+"="+dir)
	// Go makes the child's mounts private after unshare(CLONE_NEWNS).
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL)) {
		t.Skipf("cannot create a private mount namespace (unshare CLONE_NEWNS: %v); run as root where unshare is permitted", err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skipf("child skipped:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("in a private mount namespace: %v\n%s", err, out)
	}
	t.Logf("in a private mount namespace:\n%s", out)
	return false
}

func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Skipf("mounting tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// A tiny file system fills up: logwrite keeps running, reports the trouble
// once per interval, holds the lines (memlogd keeps them) and writes them
// exactly once when space is freed.
func TestDiskFull(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	e := newEnv(t, 100000)
	mountTmpfs(t, e.logDir, "512k")
	lw := e.logwrite("-report-interval", "1s", "-checkpoint-interval", "100ms")
	src := e.source("svc")
	writeNumbers(t, src, "n", 1, 1000)
	waitFor(t, 10*time.Second, "the first lines", func() bool { return countLines(t, e.logDir, "svc") == 1000 })

	// Fill the file system.
	filler := filepath.Join(e.logDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	writeNumbers(t, src, "n", 1001, 4000)
	waitFor(t, 10*time.Second, "a report of the full disk", func() bool {
		return strings.Contains(lw.Output(), "no space left on device")
	})
	time.Sleep(2500 * time.Millisecond)
	if n := strings.Count(lw.Output(), "no space left on device"); n > 4 {
		t.Errorf("%d reports in about 3 s with -report-interval 1s:\n%s", n, lw.Output())
	}
	select {
	case <-lw.Done():
		t.Fatalf("logwrite exited on a full disk: %s", lw.Output())
	default:
	}
	if n := countLines(t, e.logDir, "svc"); n >= 4000 {
		t.Fatalf("all %d lines written on a full file system?", n)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logwrite's stderr:\n%s", lw.Output())
		}
	})
	waitFor(t, 20*time.Second, "every line after space was freed", func() bool { return countLines(t, e.logDir, "svc") >= 4000 })
	time.Sleep(300 * time.Millisecond)
	lw.stop(t)
	nums, lost := numbers(t, sourceLines(t, e.logDir, "svc"), "svc", "n")
	if lost != 0 {
		t.Errorf("%d lost", lost)
	}
	exactlyOnce(t, nums, 1, 4000)
	if !strings.Contains(lw.Output(), "working again") {
		t.Errorf("recovery not reported:\n%s", lw.Output())
	}
	t.Logf("logwrite's stderr:\n%s", lw.Output())
}

// -wait-mount: nothing is written while the log directory is on the root
// file system; once a file system is mounted there the entries memlogd
// kept are written to it.
func TestWaitMount(t *testing.T) {
	if !inNamespace(t) {
		return
	}
	e := newEnv(t, 10000)
	if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if point, _, err := mountOf(e.logDir); err != nil || point != "/" {
		t.Skipf("the temporary directory is on %q (%v), not on /", point, err)
	}
	lw := e.logwrite("-wait-mount", "-wait-mount-timeout", "30s")
	src := e.source("early")
	writeNumbers(t, src, "n", 1, 500)
	waitFor(t, 5*time.Second, "the waiting message", func() bool { return strings.Contains(lw.Output(), "not on a mounted disk yet") })
	time.Sleep(500 * time.Millisecond)
	if ents, _ := os.ReadDir(e.logDir); len(ents) != 0 {
		t.Fatalf("wrote to the root file system: %v", ents)
	}
	mountTmpfs(t, e.logDir, "16m")
	waitFor(t, 10*time.Second, "the lines on the mounted file system", func() bool { return countLines(t, e.logDir, "early") == 500 })
	lw.stop(t)
	nums, _ := numbers(t, sourceLines(t, e.logDir, "early"), "early", "n")
	exactlyOnce(t, nums, 1, 500)
	if !strings.Contains(lw.Output(), "is now on") {
		t.Errorf("stderr: %s", lw.Output())
	}
}

// -wait-mount gives up after its timeout with a clear message.
func TestWaitMountTimeout(t *testing.T) {
	_, lwBin := build(t)
	dir := filepath.Join(t.TempDir(), "log")
	if point, _, err := mountOf(dir); err != nil || point != "/" {
		t.Skipf("the temporary directory is on %q (%v), not on /", point, err)
	}
	cmd := exec.Command(lwBin, "-socket", filepath.Join(t.TempDir(), "none.sock"), "-log-dir", dir, "-wait-mount", "-wait-mount-timeout", "500ms")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	if el := time.Since(start); el < 400*time.Millisecond || el > 5*time.Second {
		t.Errorf("gave up after %v", el)
	}
	if !strings.Contains(string(out), "still on the root file system") {
		t.Errorf("message: %s", out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("created the log directory on the root file system")
	}
}
