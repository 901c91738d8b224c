package logwrite

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logproto"
)

// benchRing is the number of entries in memlogd's ring for the benchmarks
// (about the byte size of the default ring with these lines).
const benchRing = 100000

// fillRing makes memlogd hold lines of about 100 bytes from 4 sources, and
// waits until it holds them all.
func fillRing(b *testing.B, e *env, n int) int64 {
	b.Helper()
	pad := strings.Repeat("x", 80)
	var bytes int64
	srcs := make([]*os.File, 4)
	for i := range srcs {
		srcs[i] = e.source(fmt.Sprintf("bench%d.out", i))
	}
	// Chunks of 64 KiB go to the sources in turn, so that each source
	// has a quarter of the lines (i%4 at the end of 1 MiB chunks gave
	// them nearly all to one source).
	buf := make([]byte, 0, 64<<10)
	chunk := 0
	for i := 1; i <= n; i++ {
		buf = fmt.Appendf(buf, "n %d %s\n", i, pad)
		if len(buf) > 64<<10-200 || i == n {
			chunk++
			if _, err := srcs[chunk%4].Write(buf); err != nil {
				b.Fatal(err)
			}
			bytes += int64(len(buf))
			buf = buf[:0]
		}
	}
	for _, s := range srcs {
		s.Close()
	}
	return bytes
}

// catchUp measures logwrite writing a full ring: lines/s, MB/s of payload,
// CPU per million lines.
func catchUp(b *testing.B, args ...string) {
	for range b.N {
		b.StopTimer()
		e := newEnv(b, benchRing+100, "-pace-wait", "0", "-max-bytes", "67108864")
		payload := fillRing(b, e, benchRing)
		var last uint64
		waitFor(b, 10*time.Second, "memlogd to hold the lines", func() bool { last = lastSeq(b, e); return last >= benchRing })
		w := watchState(b, e)
		b.StartTimer()
		start := time.Now()
		lw := e.logwrite(args...)
		end := w.until(b, 120*time.Second, "the ring written", last)
		el := end.Sub(start)
		cpu := lw.cpu(b)
		b.StopTimer()
		lw.stop(b)
		reportCheckpoints(b, lw)
		b.ReportMetric(float64(benchRing)/el.Seconds(), "lines/s")
		b.ReportMetric(float64(payload)/el.Seconds()/1e6, "MB/s")
		b.ReportMetric(cpu.Seconds()*1e6/float64(benchRing), "cpu-s/Mlines")
		b.ReportMetric(el.Seconds(), "catchup-s")
	}
}

// lastSeq asks memlogd for the sequence number of its newest entry.
func lastSeq(b testing.TB, e *env) uint64 {
	b.Helper()
	s, err := logclient.Open(context.Background(), e.querySock(), logproto.Request{Mode: logproto.ModeDump, Tail: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	return s.Hello.Next - 1
}

// written reports whether logwrite's state file has reached seq.
func written(e *env, seq uint64) bool {
	st, err := LoadState(e.logDir)
	return err == nil && st.Cursor.Seq >= seq
}

// reportCheckpoints reports the checkpoints logwrite made and the time
// they took (its last words say, with the one at exit), where it says.
func reportCheckpoints(b *testing.B, lw *proc) {
	m := regexp.MustCompile(`, (\d+) checkpoints \(([^)]+)\),`).FindStringSubmatch(lw.Output())
	if m == nil {
		return // an older logwrite
	}
	n, _ := strconv.Atoi(m[1])
	b.ReportMetric(float64(n), "checkpoints")
	if d, err := time.ParseDuration(m[2]); err == nil {
		b.ReportMetric(d.Seconds(), "checkpoint-s")
	}
	if m := regexp.MustCompile(`, (\d+) of them synced,`).FindStringSubmatch(lw.Output()); m != nil {
		n, _ := strconv.Atoi(m[1])
		b.ReportMetric(float64(n), "synced")
	}
}

// stateWatch sees the state file replaced the moment it happens (inotify
// on the log directory), so that a benchmark's end is exact rather than
// the next tick of a polling loop.
type stateWatch struct {
	e  *env
	fd int
}

// watchState creates the log directory (logwrite takes an existing one)
// and watches it for the state file's rename.
func watchState(b *testing.B, e *env) *stateWatch {
	b.Helper()
	if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		b.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, e.logDir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		b.Fatal(err)
	}
	return &stateWatch{e: e, fd: fd}
}

// until returns the time at which the state file first said that the
// entry seq is written: the time of the event after which it did.
func (w *stateWatch) until(b *testing.B, limit time.Duration, what string, seq uint64) time.Time {
	b.Helper()
	deadline := time.Now().Add(limit)
	buf := make([]byte, 64<<10)
	for {
		now := time.Now()
		if written(w.e, seq) {
			return now
		}
		left := time.Until(deadline)
		if left <= 0 {
			b.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(min(left, time.Second)/time.Millisecond)+1); err != nil && err != unix.EINTR {
			b.Fatal(err)
		}
		for {
			if _, err := unix.Read(w.fd, buf); err != nil {
				break // EAGAIN: every event read
			}
		}
	}
}

// Time to catch up on a full ring after a (re)start, per sync policy.
func BenchmarkCatchUp(b *testing.B) {
	for _, sync := range []string{SyncNone, SyncCheckpoint, SyncAlways} {
		b.Run("sync="+sync, func(b *testing.B) {
			catchUp(b, "-sync", sync, "-max-log-size", "1048576", "-max-log-files", "100", "-checkpoint-interval", "20ms")
		})
	}
}

// Steady following: writers produce lines while logwrite follows. With a
// ring of 5000 lines memlogd paces the writers to logwrite (-pace-wait):
// the lines/s are logwrite's, and lost-lines says whether it kept up.
func BenchmarkFollow(b *testing.B) {
	for _, c := range []struct {
		name        string
		sync        string
		ring, lines int
	}{
		{"sync=none", SyncNone, benchRing + 100, benchRing},
		{"sync=always", SyncAlways, benchRing + 100, benchRing},
		{"ring=5000/sync=none", SyncNone, 5000, 5 * benchRing},
		{"ring=5000/sync=checkpoint", SyncCheckpoint, 5000, 5 * benchRing},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				e := newEnv(b, c.ring, "-pace-wait", "1s", "-max-bytes", "67108864")
				w := watchState(b, e)
				lw := e.logwrite("-sync", c.sync, "-max-log-size", "1048576", "-max-log-files", "1000", "-checkpoint-interval", "20ms")
				// Started: it has written memlogd's own first lines.
				w.until(b, 30*time.Second, "logwrite to start", lastSeq(b, e))
				cpu0 := lw.cpu(b)
				b.StartTimer()
				start := time.Now()
				payload := fillRing(b, e, c.lines)
				var last uint64
				waitFor(b, 60*time.Second, "memlogd to hold the lines", func() bool { last = lastSeq(b, e); return last >= uint64(c.lines) })
				end := w.until(b, 120*time.Second, "all lines written", last)
				el := end.Sub(start)
				cpu := lw.cpu(b) - cpu0
				b.StopTimer()
				lw.stop(b)
				reportCheckpoints(b, lw)
				if m := regexp.MustCompile(`(\d+) entries lost to gaps`).FindStringSubmatch(lw.Output()); m != nil {
					n, _ := strconv.Atoi(m[1])
					b.ReportMetric(float64(n), "lost-lines")
				}
				b.ReportMetric(float64(c.lines)/el.Seconds(), "lines/s")
				b.ReportMetric(float64(payload)/el.Seconds()/1e6, "MB/s")
				b.ReportMetric(cpu.Seconds()*1e6/float64(c.lines), "cpu-s/Mlines")
			}
		})
	}
}
