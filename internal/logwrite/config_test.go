package logwrite

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestBadExcludeExits: a malformed -exclude glob stops logwrite at once
// with status 2 and the reason, instead of every request to memlogd
// being refused forever.
func TestBadExcludeExits(t *testing.T) {
	if _, err := ParseFlags([]string{"-exclude", "ok*,bad["}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `"bad["`) {
		t.Errorf("ParseFlags accepted a bad glob: %v", err)
	}
	_, logwrite := build(t)
	dir := t.TempDir()
	cmd := exec.Command(logwrite, "-socket", dir+"/none.sock", "-log-dir", dir, "-exclude", "bad[")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("logwrite still running 30 s after a bad -exclude; stderr: %s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "bad[") {
		t.Errorf("exit %d, stderr %q; want 2 and the pattern", code, stderr.String())
	}
}

// The checkpoint timer counts from the last checkpoint, whatever made it
// (a rotation, a new file): a rotation 5 ms before the timer fires puts
// the next timed checkpoint an interval after the rotation, not at once.
func TestUntilDue(t *testing.T) {
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ago, want time.Duration
	}{
		{5 * time.Millisecond, 15 * time.Millisecond},
		{20 * time.Millisecond, 0},
		{time.Hour, 0},
		{0, 20 * time.Millisecond},
	} {
		if got := untilDue(now.Add(-c.ago), now, 20*time.Millisecond); got != c.want {
			t.Errorf("last checkpoint %v ago: due in %v, want %v", c.ago, got, c.want)
		}
	}
	// Never checkpointed: due at once.
	if got := untilDue(time.Time{}, now, time.Second); got != 0 {
		t.Errorf("no checkpoint yet: due in %v, want 0", got)
	}
}
