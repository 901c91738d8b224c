// Package procstate tells, from /proc, whether a process had the chance to
// run: whether it is stopped, whether one of its threads is runnable
// (running or waiting for a CPU), and how much CPU time it has used.
// memlogd's pacing uses it to tell a reader that does not read from one
// that cannot run because the machine is short of CPU.
package procstate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// State is a snapshot of a process.
type State struct {
	// CPU is the CPU time its threads have used (scheduler run time when
	// the kernel has schedstats, else user+system ticks).
	CPU time.Duration
	// Runnable: at least one thread is running or waiting for a CPU.
	Runnable bool
	// Stopped: every thread is stopped (SIGSTOP, or traced).
	Stopped bool
}

// ErrBadStat is wrapped by ParseStat's errors.
var ErrBadStat = errors.New("malformed stat line")

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture).
const userHZ = 100

// Stat is what Read uses of one /proc/PID/stat or /proc/PID/task/TID/stat
// line.
type Stat struct {
	State byte   // R, S, D, T, t, Z, ...
	Ticks uint64 // utime + stime, in 1/100 s
}

// ParseStat parses a stat line: "pid (comm) state ppid ...", where comm
// may hold spaces and parentheses (the last ')' ends it).
func ParseStat(b []byte) (Stat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 || bytes.IndexByte(b, '(') < 0 || bytes.IndexByte(b, '(') > end {
		return Stat{}, fmt.Errorf("%w: no (comm)", ErrBadStat)
	}
	f := bytes.Fields(b[end+1:])
	// After comm: state(3) ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime(14) stime(15).
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("%w: %d fields after comm, want at least 13", ErrBadStat, len(f))
	}
	if len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("%w: state %q", ErrBadStat, f[0])
	}
	ut, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("%w: utime: %v", ErrBadStat, err)
	}
	st, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("%w: stime: %v", ErrBadStat, err)
	}
	if ut+st < ut {
		return Stat{}, fmt.Errorf("%w: utime+stime overflows", ErrBadStat)
	}
	return Stat{State: f[0][0], Ticks: ut + st}, nil
}

// ParseSchedstat returns the first field of /proc/PID/schedstat: time
// spent on a CPU, in nanoseconds.
func ParseSchedstat(b []byte) (time.Duration, error) {
	f := bytes.Fields(b)
	if len(f) < 1 {
		return 0, fmt.Errorf("%w: empty schedstat", ErrBadStat)
	}
	n, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: schedstat run time %q", ErrBadStat, f[0])
	}
	return time.Duration(n), nil
}

// Read returns the state of process pid under procDir (normally /proc).
func Read(procDir string, pid int) (State, error) {
	if pid <= 0 {
		return State{}, fmt.Errorf("procstate: pid %d: not a process", pid)
	}
	dir := filepath.Join(procDir, strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return State{}, fmt.Errorf("procstate: %w", err)
	}
	ps, err := ParseStat(b)
	if err != nil {
		return State{}, fmt.Errorf("procstate: %s: %w", dir, err)
	}
	if ps.State == 'Z' || ps.State == 'X' {
		return State{}, fmt.Errorf("procstate: pid %d has exited", pid)
	}
	tasks, err := os.ReadDir(filepath.Join(dir, "task"))
	if err != nil {
		return State{}, fmt.Errorf("procstate: %w", err)
	}
	s := State{Stopped: true}
	var run time.Duration
	schedOK := true
	seen := 0
	for _, t := range tasks {
		tdir := filepath.Join(dir, "task", t.Name())
		b, err := os.ReadFile(filepath.Join(tdir, "stat"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		ts, err := ParseStat(b)
		if err != nil {
			return State{}, fmt.Errorf("procstate: %s: %w", tdir, err)
		}
		seen++
		switch ts.State {
		case 'R':
			s.Runnable = true
			s.Stopped = false
		case 'T', 't', 'Z', 'X':
		default:
			s.Stopped = false
		}
		if schedOK {
			b, err := os.ReadFile(filepath.Join(tdir, "schedstat"))
			if err == nil {
				var d time.Duration
				if d, err = ParseSchedstat(b); err == nil {
					run += d
				}
			}
			schedOK = err == nil
		}
	}
	if seen == 0 {
		return State{}, fmt.Errorf("procstate: pid %d has no threads left", pid)
	}
	if schedOK {
		s.CPU = run
	} else {
		s.CPU = time.Duration(ps.Ticks) * (time.Second / userHZ)
	}
	return s, nil
}
