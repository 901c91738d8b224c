package memlogd_test

import (
	"os"
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
