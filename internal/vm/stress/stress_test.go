package stress

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/procstate"
)

func TestStartUsesCPUAndStopEnds(t *testing.T) {
	l, err := Start(2)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	pids := l.PIDs()
	if len(pids) != 2 {
		t.Fatalf("%d processes, want 2", len(pids))
	}
	for _, pid := range pids {
		s0, err := procstate.Read("/proc", pid)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, err := procstate.Read("/proc", pid)
			if err != nil {
				t.Fatal(err)
			}
			if s.CPU >= s0.CPU+50*time.Millisecond {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d used %v of CPU in 30 s", pid, s.CPU-s0.CPU)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("pid %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	if err := l.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := Start(-1); err == nil {
		t.Error("Start(-1) accepted")
	}
}

// TestLoadDiesWithItsParent: if the process that started the load is
// killed (it cannot clean up), the load goes with it.
func TestLoadDiesWithItsParent(t *testing.T) {
	if os.Getenv("STRESS_TEST_CHILD") == "1" {
		l, err := Start(1)
		if err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString(strconv.Itoa(l.PIDs()[0]) + "\n")
		time.Sleep(time.Hour)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadDiesWithItsParent$")
	cmd.Env = append(os.Environ(), "STRESS_TEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("child printed %q", buf[:n])
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) != syscall.ESRCH {
		// It is reparented and reaped by init (or a subreaper) once dead.
		if s, err := procstate.Read("/proc", pid); err != nil {
			break // a zombie or gone: not using the CPU any more
		} else if time.Now().After(deadline) {
			t.Fatalf("load process %d still alive 30 s after its parent was killed (%+v)", pid, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
