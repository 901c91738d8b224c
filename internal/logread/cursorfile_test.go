package logread_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tu "github.com/lklog/lklog/internal/testutil"
)

// TestCursorFileStoresWhatWasRead: `logread -cursor-file F | head -1`
// stores the cursor of the one entry head read, not of the last entry
// logread got from memlogd, so the next run continues right after it.
func TestCursorFileStoresWhatWasRead(t *testing.T) {
	d := setup(t)
	w := d.Socketpair("cur")
	const total = 3000 // about 200 KB of output: more than a pipe holds
	writeLines(t, w, "cur "+strings.Repeat("x", 40)+" ", 0, total)
	tu.WaitMsg(t, d.Query, "cur", fmt.Sprintf("cur %s %d", strings.Repeat("x", 40), total-1), 10*time.Second)
	hello, recs := tu.Dump(t, d.Query, `"sources":["cur"]`)
	cf := filepath.Join(t.TempDir(), "cursor")

	for run := 0; run < 3; run++ {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(tu.LogreadBin(), "-socket", d.Query, "-cursor-file", cf, "-source", "cur")
		cmd.Stdout = pw
		var stderr tu.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		// Read one line, as head -1 does, and go away.
		pr.SetReadDeadline(time.Now().Add(30 * time.Second))
		var line []byte
		b := make([]byte, 1)
		for {
			if _, err := pr.Read(b); err != nil {
				t.Fatalf("run %d: reading logread's first line: %v", run, err)
			}
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		pr.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("run %d: logread still running 30 s after its reader went away", run)
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("run %d: exit %d, stderr %q", run, code, stderr.String())
		}
		want := recs[run]
		if !strings.HasSuffix(string(line), ";cur;"+want.Msg) {
			t.Fatalf("run %d printed %q, want entry %d (%q)", run, line, want.Seq, want.Msg)
		}
		got, err := os.ReadFile(cf)
		if err != nil {
			t.Fatalf("run %d: cursor file: %v", run, err)
		}
		if w := fmt.Sprintf("%s:%d\n", hello.Instance, want.Seq); string(got) != w {
			t.Fatalf("run %d: cursor file %q, want %q (the entry printed)", run, got, w)
		}
	}
}

// TestSIGTERMWithBlockedStdout: logread -f stops on SIGTERM even while
// its write to a stdout nobody reads blocks.
func TestSIGTERMWithBlockedStdout(t *testing.T) {
	d := setup(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close() // open, never read
	cmd := exec.Command(tu.LogreadBin(), "-socket", d.Query, "-F")
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() {
		cmd.Process.Kill()
		<-done
	}()
	w := d.Socketpair("flood")
	writeLines(t, w, strings.Repeat("x", 100)+" ", 0, 3000) // 300 KB: the pipe holds 64 KiB
	// Some thread of logread sleeps in pipe_write.
	blocked := func() bool {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", cmd.Process.Pid))
		for _, p := range tasks {
			if b, _ := os.ReadFile(p); strings.HasSuffix(string(b), "pipe_write") {
				return true
			}
		}
		return false
	}
	if !tu.Eventually(30*time.Second, blocked) {
		t.Fatal("logread never blocked writing to the pipe")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("logread still running 10 s after SIGTERM with its output blocked")
	}
}
