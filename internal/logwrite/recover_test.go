package logwrite

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logfile"
	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/testutil"
)

// TestRecoveryKeepsLinesMemlogdEvicted: after kill -9, lines written past
// the last checkpoint are cut back only when memlogd sends their entries
// again. Entries it evicted while logwrite was down stay on disk, and the
// loss is marked in the source's own file; entries it still holds are
// written again exactly once.
func TestRecoveryKeepsLinesMemlogdEvicted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		upTo   int  // lines written while logwrite is down: 51..upTo
		gapped bool // the ring (100 entries) lost some lines before logwrite saw them
	}{
		{"ring wrapped past the lines written", 300, true},
		{"ring wrapped into the lines written", 120, false},
		{"ring still holds everything", 90, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 100, "-pace-wait", "0")
			args := []string{"-checkpoint-interval", "1h", "-sync", "none"}
			lw := e.logwrite(args...)
			src := e.source("svc")
			writeNumbers(t, src, "n", 1, 50)
			waitFor(t, 30*time.Second, "lines 1-50", func() bool { return countLines(t, e.logDir, "svc") == 50 })
			lw.Kill()
			<-lw.Done()
			writeNumbers(t, src, "n", 51, tc.upTo)
			// The ring holds the last line before logwrite comes back.
			waitFor(t, 30*time.Second, "memlogd to hold the lines", func() bool {
				_, recs := testutil.Dump(t, e.querySock(), `"sources":["svc"]`)
				return len(recs) > 0 && recs[len(recs)-1].Msg == "n "+strconv.Itoa(tc.upTo)
			})
			lw = e.logwrite(args...)
			waitFor(t, 30*time.Second, "the last line", func() bool {
				lines, err := trySourceLines(e.logDir, "svc")
				return err == nil && len(lines) > 0 && strings.HasSuffix(lines[len(lines)-1], " n "+strconv.Itoa(tc.upTo))
			})
			lw.stop(t)
			lines := sourceLines(t, e.logDir, "svc")
			nums, lost := numbers(t, lines, "svc", "n")
			if len(nums) < 50 {
				t.Fatalf("%d lines: %q", len(nums), lines)
			}
			exactlyOnce(t, nums[:50], 1, 50) // every line on disk before the crash stays
			if !tc.gapped {
				exactlyOnce(t, nums, 1, tc.upTo)
				if lost != 0 {
					t.Errorf("%d entries reported lost where none was", lost)
				}
				return
			}
			rest := nums[50:]
			if len(rest) == 0 || rest[len(rest)-1] != tc.upTo {
				t.Fatalf("lines after the crash: %v", rest)
			}
			exactlyOnce(t, rest, rest[0], tc.upTo)
			missing := rest[0] - 51
			if missing <= 0 || lost < missing {
				t.Errorf("lines 51..%d missing, gap lines say %d lost", rest[0]-1, lost)
			}
			gapAt := -1
			for i, l := range lines {
				if strings.Contains(l, " logwrite: ") {
					if gapAt >= 0 {
						t.Errorf("more than one gap line: %q", lines)
					}
					gapAt = i
				}
			}
			if gapAt != 50 {
				t.Errorf("gap line at line %d, want right after line 50: %q", gapAt, lines[max(gapAt, 0)])
			}
			if strings.Contains(lw.Output(), "memlogd sends those entries again") && strings.Contains(lw.Output(), "removed") {
				t.Errorf("logwrite says it removed lines memlogd no longer holds:\n%s", lw.Output())
			}
		})
	}
}

// FuzzTailSplit: split keeps the shortest start of a tail whose rest is
// the start of what memlogd sends again, and readTail's line splitting
// loses no byte.
func FuzzTailSplit(f *testing.F) {
	f.Add("a\nb\nc\n", "b\nc\nd\n")
	f.Add("a\na\na\n", "a\na\n")
	f.Add("x\ny", "y\n")
	f.Add("", "a\n")
	f.Fuzz(func(t *testing.T, tailText, wantText string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "f.log"), []byte("head\n"+tailText), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, "f.log"))
		if err != nil {
			t.Fatal(err)
		}
		tl, err := readTail(dir, FileState{Name: "f.log", Ino: st.Sys().(*syscall.Stat_t).Ino, Size: 5})
		if err != nil {
			t.Fatal(err)
		}
		if tailText == "" {
			if tl != nil {
				t.Fatalf("empty tail read as %+v", tl)
			}
			return
		}
		var joined []byte
		for _, l := range tl.lines {
			if len(l) == 0 || l[len(l)-1] != '\n' || bytes.IndexByte(l[:len(l)-1], '\n') >= 0 {
				t.Fatalf("line %q", l)
			}
			joined = append(joined, l...)
		}
		if len(joined)+tl.partial != len(tailText) || string(joined) != tailText[:len(joined)] {
			t.Fatalf("lines %q + %d partial bytes for %q", joined, tl.partial, tailText)
		}
		for _, l := range strings.SplitAfter(wantText, "\n") {
			if l != "" && len(tl.want) < len(tl.lines) {
				tl.want = append(tl.want, []byte(l))
			}
		}
		p := tl.split()
		n := len(tl.lines)
		matches := func(p int) bool {
			if n-p > len(tl.want) {
				return false
			}
			for i := p; i < n; i++ {
				if !bytes.Equal(tl.lines[i], tl.want[i-p]) {
					return false
				}
			}
			return true
		}
		if p < 0 || p > n || !matches(p) {
			t.Fatalf("split %d of %q against %q", p, tl.lines, tl.want)
		}
		for q := 0; q < p; q++ {
			if matches(q) {
				t.Fatalf("split %d, but %d matches too", p, q)
			}
		}
	})
}

// TestGapWhileStoppedInSourceFile: entries memlogd evicted while logwrite
// was stopped are marked in the file of the source being written, not
// only in memlogd's.
func TestGapWhileStoppedInSourceFile(t *testing.T) {
	e := newEnv(t, 100, "-pace-wait", "0")
	lw := e.logwrite()
	src := e.source("svc")
	writeNumbers(t, src, "n", 1, 50)
	waitFor(t, 30*time.Second, "lines 1-50", func() bool { return countLines(t, e.logDir, "svc") == 50 })
	lw.stop(t) // checkpoints: nothing past the checkpoint
	writeNumbers(t, src, "n", 51, 300)
	waitFor(t, 30*time.Second, "memlogd to hold the lines", func() bool {
		_, recs := testutil.Dump(t, e.querySock(), `"sources":["svc"]`)
		return len(recs) > 0 && recs[len(recs)-1].Msg == "n 300"
	})
	lw = e.logwrite()
	waitFor(t, 30*time.Second, "the last line", func() bool {
		lines, err := trySourceLines(e.logDir, "svc")
		return err == nil && len(lines) > 0 && strings.HasSuffix(lines[len(lines)-1], " n 300")
	})
	lw.stop(t)
	lines := sourceLines(t, e.logDir, "svc")
	nums, lost := numbers(t, lines, "svc", "n")
	exactlyOnce(t, nums[:50], 1, 50)
	rest := nums[50:]
	exactlyOnce(t, rest, rest[0], 300)
	if missing := rest[0] - 51; missing <= 0 || lost < missing {
		t.Errorf("lines 51..%d missing, svc's gap lines say %d lost", rest[0]-1, lost)
	}
	if len(lines) < 51 || !strings.Contains(lines[50], " logwrite: ") {
		t.Errorf("no gap line after line 50 in svc's file: %q", lines[min(len(lines), 49):min(len(lines), 52)])
	}
}

// TestRestartAfterSkippedEntriesNoGap: entries logwrite skips (its own,
// -exclude) that arrived while it was stopped are not mistaken for lost
// ones.
func TestRestartAfterSkippedEntriesNoGap(t *testing.T) {
	for _, crash := range []bool{false, true} {
		e := newEnv(t, 1000)
		args := []string{"-exclude", "noise", "-sync", "none"}
		if crash {
			args = append(args, "-checkpoint-interval", "1h")
		}
		lw := e.logwrite(args...)
		src, noise := e.source("svc"), e.source("noise")
		writeNumbers(t, src, "n", 1, 50)
		waitFor(t, 30*time.Second, "lines 1-50", func() bool { return countLines(t, e.logDir, "svc") == 50 })
		if crash {
			lw.Kill()
			<-lw.Done()
		} else {
			lw.stop(t)
		}
		writeNumbers(t, noise, "x", 1, 20)
		waitFor(t, 30*time.Second, "memlogd to hold the skipped lines", func() bool {
			_, recs := testutil.Dump(t, e.querySock(), `"sources":["noise"]`)
			return len(recs) == 20
		})
		lw = e.logwrite(args...)
		writeNumbers(t, src, "n", 51, 60)
		waitFor(t, 30*time.Second, "lines 51-60", func() bool { return countLines(t, e.logDir, "svc") >= 60 })
		lw.stop(t)
		nums, lost := numbers(t, sourceLines(t, e.logDir, "svc"), "svc", "n")
		exactlyOnce(t, nums, 1, 60)
		if lost != 0 {
			t.Errorf("crash %v: %d entries reported lost; only skipped ones arrived meanwhile", crash, lost)
		}
	}
}

// A checkpoint writes and syncs the new state under a temporary name while
// the log files are synced, and renames it only after them: until then
// the old state stands, and a temporary file left by a crash is one that
// logwrite removes at start.
func TestPendingState(t *testing.T) {
	dir := t.TempDir()
	old := State{Cursor: logproto.Cursor{Instance: "a", Seq: 1}}
	if err := SaveState(dir, old); err != nil {
		t.Fatal(err)
	}
	p, err := writePending(dir, State{Cursor: logproto.Cursor{Instance: "a", Seq: 2}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !logfile.IsTemp(filepath.Base(p.tmp), StateName) || filepath.Dir(p.tmp) != dir {
		t.Errorf("temporary state %s is not one logwrite removes at start", p.tmp)
	}
	if st, err := LoadState(dir); err != nil || st.Cursor.Seq != 1 {
		t.Fatalf("before the rename: %+v, %v; want the old state", st, err)
	}
	if err := p.replace(); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(dir)
	if err != nil || st.Cursor.Seq != 2 {
		t.Fatalf("after the rename: %+v, %v", st, err)
	}
	fi, err := os.Stat(filepath.Join(dir, StateName))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("state file mode %v, %v; want 0644", fi.Mode(), err)
	}
	// One left behind is removed at start; the state stays.
	p, err = writePending(dir, State{Cursor: logproto.Cursor{Instance: "a", Seq: 3}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := logfile.RemoveTemps(dir, StateName); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.tmp); !os.IsNotExist(err) {
		t.Errorf("%s still there after RemoveTemps: %v", p.tmp, err)
	}
	if st, err := LoadState(dir); err != nil || st.Cursor.Seq != 2 {
		t.Errorf("state after RemoveTemps: %+v, %v", st, err)
	}
}

// A file shorter than the state says lost bytes that were written (the
// disk lost them while memlogd kept running: an I/O error on writeback, a
// volume that dropped and came back). logwrite cannot write those lines
// again, since memlogd sends only what follows the cursor: it says so at
// its restart, and goes on with the entries after the cursor.
func TestRecoveryReportsAShortFile(t *testing.T) {
	e := newEnv(t, 1000)
	src := e.source("short")
	writeNumbers(t, src, "n", 1, 100)
	var last uint64
	waitFor(t, 30*time.Second, "memlogd to hold the lines", func() bool { last = lastSeq(t, e); return last >= 100 })
	lw := e.logwrite("-sync", "none")
	waitFor(t, 30*time.Second, "the state file to reach the last entry", func() bool { return written(e, last) })
	lw.Kill()
	<-lw.Done()
	st, err := LoadState(e.logDir)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, f := range st.Files {
		if f.Name == "short.log" {
			size = f.Size
		}
	}
	if size < 100 {
		t.Fatalf("not the case under test: the state lists short.log with %d bytes: %+v", size, st)
	}
	if err := os.Truncate(filepath.Join(e.logDir, "short.log"), size-60); err != nil {
		t.Fatal(err)
	}
	lw = e.logwrite("-sync", "none")
	writeNumbers(t, src, "n", 101, 110)
	waitFor(t, 30*time.Second, "line 110", func() bool {
		lines, err := trySourceLines(e.logDir, "short")
		return err == nil && len(lines) > 0 && strings.HasSuffix(lines[len(lines)-1], " n 110")
	})
	lw.stop(t)
	if want := "short.log has " + strconv.FormatInt(size-60, 10) + " bytes, the state file says " + strconv.FormatInt(size, 10) + ": the disk lost 60 bytes"; !strings.Contains(lw.Output(), want) {
		t.Errorf("logwrite's output does not say %q:\n%s", want, lw.Output())
	}
}
