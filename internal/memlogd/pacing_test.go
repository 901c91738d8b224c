package memlogd_test

// Pacing against real reader processes.

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	tu "github.com/lklog/lklog/internal/testutil"
)

// TestPacingStoppedLogread: a real `logread -f` stopped with SIGSTOP holds
// the writers up only for a bounded time (memlogd sees it is stopped);
// continued, it reports exactly where it lost entries and goes on.
func TestPacingStoppedLogread(t *testing.T) {
	d := tu.Start(t, "-max-lines", "1000", "-pace-wait", "300ms")
	lr := tu.StartProc(t, tu.LogreadBin(), "-socket", d.Query, "-f", "-source", "stop")
	w := d.Socketpair("stop")
	// logread follows once it prints what is written now.
	k := 0
	if !tu.Eventually(30*time.Second, func() bool {
		fmt.Fprintf(w, "probe %d\n", k)
		k++
		return strings.Contains(lr.Output(), ";stop;probe ")
	}) {
		t.Fatalf("logread printed no probe line in 30 s: %q", lr.Output())
	}
	if err := lr.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer lr.Cmd.Process.Signal(syscall.SIGCONT)

	const total = 50000 // 5 MB: far more than the ring and socket buffers
	start := time.Now()
	writePadded(t, w, "stop ", 0, total, 100)
	waitLast(t, d, "stop", "stop ", total-1, 60*time.Second)
	t.Logf("%d lines ingested in %v with a stopped logread -f", total, time.Since(start))

	lr.Cmd.Process.Signal(syscall.SIGCONT)
	fmt.Fprintln(w, "after the stop")
	if !tu.Eventually(60*time.Second, func() bool { return strings.Contains(lr.Output(), ";stop;after the stop\n") }) {
		t.Fatalf("continued logread did not catch up in 60 s; it printed %d bytes", len(lr.Output()))
	}
	out := lr.Output()
	if !strings.Contains(out, ";memlogd;memlogd: ") || !strings.Contains(out, " entries lost here") {
		t.Errorf("the stopped logread was not told what it lost")
	}
	if !strings.Contains(out, fmt.Sprintf(";stop;stop %d ", total-1)) {
		t.Errorf("the continued logread lacks the last line")
	}
	// memlogd says why it stopped waiting for it.
	r := tu.WaitMsgContaining(t, d.Query, "memlogd", fmt.Sprintf("writers stopped waiting for the reader with pid %d: ", lr.Cmd.Process.Pid), 30*time.Second)
	if !strings.Contains(r.Msg, "client stopped") {
		t.Errorf("memlogd's reason: %q", r.Msg)
	}
}
