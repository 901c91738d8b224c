package logwrite

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/fdpass"
	"github.com/lklog/lklog/internal/logfile"
	"github.com/lklog/lklog/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.Run(m)) }

// build compiles memlogd and logwrite (once per test binary).
func build(t testing.TB) (memlogd, logwrite string) {
	t.Helper()
	dir := testutil.Build(t, "memlogd", "logwrite")
	return filepath.Join(dir, "memlogd"), filepath.Join(dir, "logwrite")
}

// proc is a started binary (its stdout and stderr collected).
type proc struct{ *testutil.Proc }

func start(t testing.TB, bin string, args ...string) *proc {
	t.Helper()
	return &proc{testutil.StartProc(t, bin, args...)}
}

// stop sends SIGTERM and waits up to 10 s.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	if !p.SignalWait(syscall.SIGTERM, 10*time.Second) {
		t.Fatalf("%s did not stop within 10 s after SIGTERM", p.Cmd.Path)
	}
}

// cpu returns the process's CPU time so far: the sum of its threads'
// run times in nanoseconds (/proc/PID/task/*/schedstat), or, where that
// is missing, user+system time in clock ticks (10 ms steps, too coarse
// for a benchmark of 0.1 s).
func (p *proc) cpu(t testing.TB) time.Duration {
	t.Helper()
	pid := p.Cmd.Process.Pid
	if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
		var sum time.Duration
		ok := true
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
			if err != nil {
				ok = false
				break
			}
			ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
			if err != nil {
				ok = false
				break
			}
			sum += time.Duration(ns)
		}
		if ok {
			return sum
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// env is one memlogd with its sockets in a temporary directory.
type env struct {
	t       testing.TB
	sockDir string
	logDir  string
	memlogd *proc
	lw      string
}

func newEnv(t testing.TB, maxLines int, extra ...string) *env {
	t.Helper()
	_, lw := build(t)
	e := &env{t: t, sockDir: t.TempDir(), logDir: filepath.Join(t.TempDir(), "log"), lw: lw}
	e.startMemlogd(maxLines, extra...)
	return e
}

func (e *env) logSock() string   { return filepath.Join(e.sockDir, "log.sock") }
func (e *env) querySock() string { return filepath.Join(e.sockDir, "q.sock") }

func (e *env) startMemlogd(maxLines int, extra ...string) {
	e.t.Helper()
	ml, _ := build(e.t)
	os.Remove(e.logSock())
	os.Remove(e.querySock())
	args := append([]string{"-socket-log", e.logSock(), "-socket-query", e.querySock(), "-socket-syslog", "", "-console=false", "-max-lines", strconv.Itoa(maxLines)}, extra...)
	e.memlogd = start(e.t, ml, args...)
	waitFor(e.t, 10*time.Second, "memlogd's sockets", func() bool {
		_, err1 := os.Stat(e.querySock())
		_, err2 := os.Stat(e.logSock())
		return err1 == nil && err2 == nil
	})
}

func (e *env) logwrite(args ...string) *proc {
	e.t.Helper()
	return start(e.t, e.lw, append([]string{"-socket", e.querySock(), "-log-dir", e.logDir}, args...)...)
}

// source passes one end of a new stream socket pair to memlogd under name
// and returns the other end for writing lines.
func (e *env) source(name string) *os.File {
	e.t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := fdpass.Send(e.logSock(), name, fds[1]); err != nil {
		e.t.Fatal(err)
	}
	unix.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), name)
	e.t.Cleanup(func() { f.Close() })
	return f
}

// writeNumbers writes lines "<prefix> <i>" for i in [from, to] to w.
func writeNumbers(t testing.TB, w io.Writer, prefix string, from, to int) {
	t.Helper()
	bw := bufio.NewWriterSize(w, 64<<10)
	for i := from; i <= to; i++ {
		fmt.Fprintf(bw, "%s %d\n", prefix, i)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sourceLines returns the lines of a source's files, oldest file first
// (x.log.<N-1>[.gz] ... x.log.0, x.log), decompressing .gz files.
func sourceLines(t testing.TB, dir, source string) []string {
	t.Helper()
	lines, err := trySourceLines(dir, source)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// trySourceLines is sourceLines returning errors (a file may be renamed
// while it is read).
func trySourceLines(dir, source string) ([]string, error) {
	name := logfile.FileName(source)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type rf struct {
		idx  int
		path string
	}
	var files []rf
	for _, e := range ents {
		n := strings.TrimSuffix(e.Name(), logfile.GzSuffix)
		if n == name {
			files = append(files, rf{-1, e.Name()})
			continue
		}
		if strings.HasPrefix(n, name+".") {
			if idx, ok := logfile.IsRotated(e.Name()); ok && logfile.Rotated(name, idx) == n {
				files = append(files, rf{idx, e.Name()})
			}
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].idx > files[j].idx })
	var lines []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.path))
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(f.path, logfile.GzSuffix) {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("%s: %v", f.path, err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				return nil, fmt.Errorf("%s: %v", f.path, err)
			}
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			return nil, fmt.Errorf("%s ends with a partial line: %q", f.path, b[max(0, len(b)-80):])
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines, nil
}

// numbers parses "<time> <source> <prefix> <n>" lines; gap lines are
// counted separately.
func numbers(t testing.TB, lines []string, source, prefix string) (nums []int, lost int) {
	t.Helper()
	for _, l := range lines {
		f := strings.SplitN(l, " ", 3)
		if len(f) != 3 || f[1] != source {
			t.Fatalf("malformed line %q", l)
		}
		if _, err := time.Parse(time.RFC3339, f[0]); err != nil {
			t.Fatalf("line %q: time: %v", l, err)
		}
		if rest, ok := strings.CutPrefix(f[2], "logwrite: "); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				t.Fatalf("gap line %q", l)
			}
			lost += n
			continue
		}
		numStr, ok := strings.CutPrefix(f[2], prefix+" ")
		if !ok {
			t.Fatalf("unexpected line %q", l)
		}
		n, err := strconv.Atoi(numStr)
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		nums = append(nums, n)
	}
	return nums, lost
}

// exactlyOnce checks that nums is from..to, each once, in order.
func exactlyOnce(t testing.TB, nums []int, from, to int) {
	t.Helper()
	if len(nums) == to-from+1 {
		ok := true
		for i, n := range nums {
			if n != from+i {
				ok = false
				break
			}
		}
		if ok {
			return
		}
	}
	seen := map[int]int{}
	for _, n := range nums {
		seen[n]++
	}
	var dup, missing []int
	for n, c := range seen {
		if c > 1 {
			dup = append(dup, n)
		}
	}
	for n := from; n <= to; n++ {
		if seen[n] == 0 {
			missing = append(missing, n)
		}
	}
	sort.Ints(dup)
	t.Fatalf("%d lines for %d..%d: %d duplicated (first %v), %d missing (first %v)", len(nums), from, to, len(dup), dup[:min(len(dup), 10)], len(missing), missing[:min(len(missing), 10)])
}

// countLines returns how many number lines of source are in dir so far.
func countLines(t testing.TB, dir, source string) int {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		return 0
	}
	lines, err := trySourceLines(dir, source)
	if err != nil {
		return -1 // in the middle of a rotation, or a line being written
	}
	n := 0
	for _, l := range lines {
		if !strings.Contains(l, " logwrite: ") {
			n++
		}
	}
	return n
}
