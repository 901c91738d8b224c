package memlogd_test

import (
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	tu "github.com/lklog/lklog/internal/testutil"
)

// TestSIGTERMWithBlockedConsole: memlogd exits promptly on SIGTERM even
// when its stdout is a pipe nobody reads, so the console's write blocks.
func TestSIGTERMWithBlockedConsole(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close() // open, never read, until memlogd has exited
	d := tu.StartWith(t, tu.Options{Stdout: pw, Args: []string{"-console=true", "-max-lines", "1000"}})
	pw.Close()
	w := d.Socketpair("flood")
	writePadded(t, w, "flood ", 0, 5000, 100) // 500 KB: the pipe holds 64 KiB
	waitLast(t, d, "flood", "flood ", 4999, 30*time.Second)
	start := time.Now()
	if code := d.Stop(); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start))
	for _, p := range []string{d.Query, d.Log} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s not removed at exit (%v)", p, err)
		}
	}
}

// TestOlderMemlogdKeepsNewerSockets: a memlogd whose socket files were
// replaced by a newer memlogd's leaves those alone when it stops.
func TestOlderMemlogdKeepsNewerSockets(t *testing.T) {
	old := tu.Start(t)
	for _, p := range []string{old.Log, old.Query} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	newer := tu.StartProc(t, tu.MemlogdBin(), "-socket-log", old.Log, "-socket-query", old.Query, "-socket-syslog=", "-console=false")
	defer newer.Stop(t, syscall.SIGTERM)
	if !tu.Eventually(30*time.Second, func() bool {
		c, err := net.Dial("unix", old.Query)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("the newer memlogd did not start: %s", newer.Output())
	}
	if code := old.Stop(); code != 0 {
		t.Errorf("older memlogd: exit %d", code)
	}
	for _, p := range []string{old.Log, old.Query} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("the newer memlogd's %s was removed by the older one: %v", p, err)
		}
	}
	if _, recs := tu.Dump(t, old.Query, ""); len(recs) == 0 {
		t.Error("the newer memlogd does not answer")
	}
}
