package query

import (
	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/procstate"
	"github.com/lklog/lklog/internal/ring"
)

// procDir is where the client processes are examined.
const procDir = "/proc"

// probe returns how pacing examines this connection's client process
// (the one that connected, from SO_PEERCRED), or nil when its pid is not
// known (another PID namespace).
func (r *reader) probe() ring.Probe {
	rc, err := r.c.SyscallConn()
	if err != nil {
		return nil
	}
	pid := 0
	rc.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	if pid <= 0 {
		return nil
	}
	return func() (ring.ProcState, bool) {
		s, err := procstate.Read(procDir, pid)
		if err != nil {
			return ring.ProcState{}, false
		}
		return ring.ProcState{CPU: s.CPU, Runnable: s.Runnable, Stopped: s.Stopped}, true
	}
}
