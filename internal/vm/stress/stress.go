// Package stress loads the host with CPU-bound processes, to run the VM
// test cases on a machine as busy as CI machines and laptops often are.
package stress

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Load is a set of running CPU-bound processes.
type Load struct {
	cmds []*exec.Cmd
}

// Start starts n processes that each keep a CPU busy (a shell loop, so
// they show in ps as what they are). They die with the process that
// started them (PR_SET_PDEATHSIG) and with Ctrl-C at a terminal (same
// process group); Stop ends them in any case.
func Start(n int) (*Load, error) {
	if n < 0 {
		return nil, fmt.Errorf("stress: %d processes: must not be negative", n)
	}
	l := &Load{}
	for i := 0; i < n; i++ {
		cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			l.Stop()
			return nil, fmt.Errorf("stress: starting process %d of %d: %w", i+1, n, err)
		}
		l.cmds = append(l.cmds, cmd)
	}
	return l, nil
}

// PIDs returns the processes' ids.
func (l *Load) PIDs() []int {
	var pids []int
	for _, c := range l.cmds {
		pids = append(pids, c.Process.Pid)
	}
	return pids
}

// Stop kills the processes and waits for them; it may be called more than
// once.
func (l *Load) Stop() error {
	var errs []error
	for _, c := range l.cmds {
		if err := c.Process.Kill(); err != nil && !errors.Is(err, syscall.ESRCH) && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("stress: killing %d: %w", c.Process.Pid, err))
		}
		c.Wait()
	}
	l.cmds = nil
	return errors.Join(errs...)
}
