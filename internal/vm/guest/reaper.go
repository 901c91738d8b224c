package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper collects the exit status of every child, including orphans that
// are re-parented to PID 1 (such as the parent of a daemonized memlogd).
// Processes started through it must be waited for with Child.Wait, never
// with exec.Cmd.Wait.
type Reaper struct {
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
	exited  map[int]unix.WaitStatus // reaped before anyone asked
}

// NewReaper returns a Reaper; Run must be running for Wait to return.
func NewReaper() *Reaper {
	return &Reaper{waiting: map[int]chan unix.WaitStatus{}, exited: map[int]unix.WaitStatus{}}
}

// Run reaps children until ctx ends: on each SIGCHLD, and every 250 ms in
// case a signal was coalesced.
func (r *Reaper) Run(ctx context.Context) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		r.reap()
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-tick.C:
		}
	}
}

func (r *Reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		if ch, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			ch <- ws
		} else {
			r.exited[pid] = ws
		}
		r.mu.Unlock()
	}
}

// Child is a process started through the Reaper.
type Child struct {
	Name string
	Cmd  *exec.Cmd
	done chan unix.WaitStatus
	mu   sync.Mutex
	ws   *unix.WaitStatus
}

// Start starts cmd. Its Stdin, Stdout and Stderr must be nil or *os.File
// (no copying goroutines: they would need exec.Cmd.Wait).
func (r *Reaper) Start(name string, cmd *exec.Cmd) (*Child, error) {
	for _, s := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		if _, ok := s.(*os.File); s != nil && !ok {
			return nil, fmt.Errorf("start %s: stdio must be *os.File", name)
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &Child{Name: name, Cmd: cmd, done: make(chan unix.WaitStatus, 1)}
	pid := cmd.Process.Pid
	r.mu.Lock()
	if ws, ok := r.exited[pid]; ok {
		delete(r.exited, pid)
		c.done <- ws
	} else {
		r.waiting[pid] = c.done
	}
	r.mu.Unlock()
	return c, nil
}

// ErrTimeout is returned by Wait when the child is still running.
var ErrTimeout = errors.New("timed out")

// Wait waits up to timeout for the child to exit and returns its status.
func (c *Child) Wait(timeout time.Duration) (unix.WaitStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws != nil {
		return *c.ws, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ws := <-c.done:
		c.ws = &ws
		_ = c.Cmd.Process.Release()
		return ws, nil
	case <-t.C:
		return 0, fmt.Errorf("%s: %w after %v", c.Name, ErrTimeout, timeout)
	}
}

// Signal sends sig to the child unless it has been reaped.
func (c *Child) Signal(sig os.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws == nil {
		_ = c.Cmd.Process.Signal(sig)
	}
}

// Describe renders a wait status for messages.
func Describe(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("killed by %v", ws.Signal())
	default:
		return fmt.Sprintf("status %#x", int(ws))
	}
}
