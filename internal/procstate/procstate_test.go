package procstate

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		in    string
		state byte
		ticks uint64
	}{
		{"1234 (logread) S 1 1234 1234 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 100 0 0\n", 'S', 10},
		// comm with spaces and parentheses: the last ')' ends it.
		{"42 (a) b (c)) R 1 42 42 0 -1 0 0 0 0 0 250 50 0 0 20 0 5 0 1 0 0", 'R', 300},
		{"7 () T 1 7 7 0 -1 0 0 0 0 0 0 0 0 0", 'T', 0},
	} {
		s, err := ParseStat([]byte(c.in))
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if s.State != c.state || s.Ticks != c.ticks {
			t.Errorf("%q: got %c %d, want %c %d", c.in, s.State, s.Ticks, c.state, c.ticks)
		}
	}
	for _, bad := range []string{
		"", "1 logread S 1", "1 (x) S 1 2 3", "1 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12",
		"1 (x) S 1 2 3 4 5 6 7 8 9 10 x 12", "1 (x) S 1 2 3 4 5 6 7 8 9 10 18446744073709551615 1",
		") 1 (x S 1 2 3 4 5 6 7 8 9 10 11 12",
	} {
		if _, err := ParseStat([]byte(bad)); !errors.Is(err, ErrBadStat) {
			t.Errorf("%q: err %v, want ErrBadStat", bad, err)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	d, err := ParseSchedstat([]byte("123456789 1000 12\n"))
	if err != nil || d != 123456789 {
		t.Errorf("got %v, %v", d, err)
	}
	for _, bad := range []string{"", "\n", "-5 1 1", "x 1 1"} {
		if _, err := ParseSchedstat([]byte(bad)); !errors.Is(err, ErrBadStat) {
			t.Errorf("%q: err %v, want ErrBadStat", bad, err)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (logread) S 1 1234 1234 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 100 0 0\n"))
	f.Add([]byte("42 (a) b (c)) R 1 42 42 0 -1 0 0 0 0 0 250 50"))
	f.Add([]byte("1 (x) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStat(b)
		if err != nil {
			if !errors.Is(err, ErrBadStat) {
				t.Fatalf("error %v does not wrap ErrBadStat", err)
			}
			return
		}
		if s.State == ' ' || s.State == '\n' {
			t.Fatalf("blank state from %q", b)
		}
		ParseSchedstat(b)
	})
}

// start runs a command for the test and returns its pid.
func start(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// waitState polls pid until ok(state) or 30 s pass.
func waitState(t *testing.T, pid int, what string, ok func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := Read("/proc", pid)
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: not %s within 30 s (last %+v, %v)", pid, what, s, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadRealProcesses(t *testing.T) {
	sleeper := start(t, "sleep", "600")
	pid := sleeper.Process.Pid
	waitState(t, pid, "sleeping", func(s State) bool { return !s.Runnable && !s.Stopped })

	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitState(t, pid, "stopped", func(s State) bool { return s.Stopped && !s.Runnable })
	syscall.Kill(pid, syscall.SIGCONT)
	waitState(t, pid, "continued", func(s State) bool { return !s.Stopped })

	busy := start(t, "sh", "-c", "while :; do :; done")
	s0 := waitState(t, busy.Process.Pid, "runnable", func(s State) bool { return s.Runnable })
	waitState(t, busy.Process.Pid, "using CPU", func(s State) bool { return s.CPU > s0.CPU })

	// This process is running while it reads itself.
	if s, err := Read("/proc", os.Getpid()); err != nil || !s.Runnable || s.Stopped || s.CPU <= 0 {
		t.Errorf("self: %+v, %v", s, err)
	}
}

func TestReadGoneProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, err := Read("/proc", cmd.Process.Pid); err == nil {
		t.Errorf("no error for a process that has exited and been reaped")
	}
	if _, err := Read("/proc", 0); err == nil {
		t.Errorf("no error for pid 0")
	}
	if _, err := Read(t.TempDir(), 1); err == nil {
		t.Errorf("no error without /proc")
	}
}
