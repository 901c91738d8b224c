package query

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/procstate"
	"github.com/lklog/lklog/internal/ring"
)

// procDir is where the client processes are examined.
const procDir = "/proc"

// logGiveUp records in memlogd's log why writers stopped waiting for this
// reader, which has just lost entries.
func (r *reader) logGiveUp(lost uint64) {
	if r.f == nil || r.s.Logf == nil {
		return
	}
	why := r.s.Ring.GiveUpReason(r.f)
	if why == "" {
		return
	}
	who := "a reader"
	if r.pid > 0 {
		who = fmt.Sprintf("the reader with pid %d", r.pid)
	}
	// Not from this goroutine: appending may wait for followers, this
	// reader among them.
	go r.s.Logf(ring.SevWarning, "query: writers stopped waiting for %s: %s; it lost %d entries", who, why, lost)
}

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
	r.pid = pid
	return func() (ring.ProcState, bool) {
		s, err := procstate.Read(procDir, pid)
		if err != nil {
			return ring.ProcState{}, false
		}
		return ring.ProcState{Runnable: s.Runnable, Stopped: s.Stopped}, true
	}
}
