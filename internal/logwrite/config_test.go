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
