package logwrite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/testutil"
)

// gate holds a background checkpoint before it syncs until released.
type gate struct {
	started chan struct{}
	release chan struct{}
}

func newGate(w *writer) *gate {
	g := &gate{started: make(chan struct{}, 1), release: make(chan struct{})}
	w.syncHook = func() {
		select {
		case g.started <- struct{}{}:
		default:
		}
		<-g.release
	}
	return g
}

func waitChan(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A synced checkpoint waits for the disk in the background: lines keep
// being written meanwhile, the state file stays the previous one until
// the syncs are done, then names the cursor and sizes the checkpoint
// began with. A mark made meanwhile (a rotation's, a new file's)
// replaces the state at once, and the older checkpoint's state does not
// come back over it when it ends.
func TestCheckpointInBackground(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(Config{LogDir: dir, Sync: SyncCheckpoint, CheckpointInterval: time.Hour, ReportInterval: time.Hour, MaxLogSize: 1 << 30, MaxLogFiles: 10}, io.Discard)
	defer w.closeAll()
	w.cursor = logproto.Cursor{Instance: "i"}
	ctx := context.Background()
	add := func(from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			rec := logproto.Record{Seq: uint64(i), Source: "a", Msg: fmt.Sprintf("n %d", i), Time: time.Unix(1700000000, 0)}
			if err := w.record(ctx, &rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.flushAll(); err != nil {
			t.Fatal(err)
		}
	}
	state := func() State {
		t.Helper()
		st, err := LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, "a.log"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}

	add(1, 10)
	at10 := size()
	g := newGate(w)
	if err := w.checkpointLater(); err != nil {
		t.Fatal(err)
	}
	waitChan(t, g.started, "the checkpoint to start syncing")
	add(11, 20)
	if n := len(sourceLines(t, dir, "a")); n != 20 {
		t.Fatalf("%d lines in the file while the checkpoint waits, want 20", n)
	}
	if st := state(); st.Cursor.Seq != 0 {
		t.Fatalf("the state names entry %d before its checkpoint has synced, want 0 (the new file's mark)", st.Cursor.Seq)
	}
	close(g.release)
	waitChan(t, w.bgDone(), "the checkpoint to end")
	if err := w.settle(); err != nil {
		t.Fatal(err)
	}
	st := state()
	if st.Cursor.Seq != 10 || len(st.Files) != 1 || st.Files[0].Size != at10 {
		t.Fatalf("state after the checkpoint: %+v, want cursor 10 and a.log at %d bytes", st, at10)
	}
	if w.stats.Synced != 1 {
		t.Errorf("%d synced checkpoints counted, want 1", w.stats.Synced)
	}

	g = newGate(w)
	if err := w.checkpointLater(); err != nil {
		t.Fatal(err)
	}
	waitChan(t, g.started, "the second checkpoint to start syncing")
	add(21, 30)
	if err := w.mark(); err != nil {
		t.Fatal(err)
	}
	if st := state(); st.Cursor.Seq != 30 {
		t.Fatalf("a mark made while a checkpoint waits left the state at entry %d, want 30", st.Cursor.Seq)
	}
	close(g.release)
	waitChan(t, w.bgDone(), "the second checkpoint to end")
	if err := w.settle(); err != nil {
		t.Fatal(err)
	}
	if st := state(); st.Cursor.Seq != 30 || st.Files[0].Size != size() {
		t.Fatalf("the older checkpoint's state came back over the mark's: %+v", st)
	}
	if w.saved.Seq != 30 {
		t.Errorf("the writer thinks the state names entry %d, want 30", w.saved.Seq)
	}
}

// A checkpoint that fails in the background (here: the log directory is
// gone while it waits, so its state cannot be written) is reported by
// settle, leaves the state file as it was and the files as not synced:
// the next checkpoint syncs them and saves the state.
func TestCheckpointInBackgroundFails(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "log")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWriter(Config{LogDir: dir, Sync: SyncCheckpoint, CheckpointInterval: time.Hour, ReportInterval: time.Hour, MaxLogSize: 1 << 30, MaxLogFiles: 10}, io.Discard)
	defer w.closeAll()
	w.cursor = logproto.Cursor{Instance: "i"}
	for i := 1; i <= 10; i++ {
		rec := logproto.Record{Seq: uint64(i), Source: "a", Msg: fmt.Sprintf("n %d", i), Time: time.Unix(1700000000, 0)}
		if err := w.record(context.Background(), &rec); err != nil {
			t.Fatal(err)
		}
	}
	g := newGate(w)
	if err := w.checkpointLater(); err != nil {
		t.Fatal(err)
	}
	waitChan(t, g.started, "the checkpoint to start syncing")
	moved := filepath.Join(parent, "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	waitChan(t, w.bgDone(), "the checkpoint to end")
	if err := w.settle(); err == nil {
		t.Fatal("a checkpoint that could not write its state reported no error")
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	if st, err := LoadState(dir); err != nil || st.Cursor.Seq != 0 {
		t.Fatalf("state after the failed checkpoint: %+v, %v; want the new file's mark (entry 0)", st, err)
	}
	if !w.files["a"].f.Dirty() {
		t.Error("the file a failed checkpoint synced counts as synced")
	}
	w.syncHook = nil
	if err := w.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if st, err := LoadState(dir); err != nil || st.Cursor.Seq != 10 {
		t.Fatalf("state after the next checkpoint: %+v, %v; want entry 10", st, err)
	}
	if w.files["a"].f.Dirty() || w.stats.Synced != 1 {
		t.Errorf("after the next checkpoint: file dirty %v, %d synced checkpoints; want clean, 1", w.files["a"].f.Dirty(), w.stats.Synced)
	}
}

// standIn is a memlogd stand-in: it answers the extended request with
// hello, then the entries 1..n/2 of source "slow", and the rest once
// half is closed, keeping the stream open; LinuxKit's request is left
// unanswered. next is the hello's next.
func standIn(t *testing.T, sock string, n int, next int, half <-chan struct{}) {
	entries := func(from, to int) []byte {
		var b []byte
		for i := from; i <= to; i++ {
			b = fmt.Appendf(b, `{"seq":%d,"time":"2026-12-02T01:00:00.000000001Z","source":"slow","msg":"n %d","facility":1,"severity":6}`+"\n", i, i)
		}
		return b
	}
	testutil.ServeUnix(t, sock, func(c net.Conn) {
		br := bufio.NewReader(c)
		if first, err := br.Peek(1); err != nil || first[0] != '{' {
			return // LinuxKit's request: left unanswered
		}
		if _, err := br.ReadString('\n'); err != nil {
			return
		}
		hello := fmt.Sprintf(`{"type":"hello","instance":"slow1","boot":"b","first":1,"next":%d}`+"\n", next)
		c.Write(append([]byte(hello), entries(1, n/2)...))
		<-half
		c.Write(entries(n/2+1, n))
	})
}

// memlogd's newest entry is one it does not send logwrite (its own last
// words), and the rest of the dump arrives while a synced checkpoint
// waits for the disk: logwrite cannot make the checkpoint of catching up
// then, and makes it when that one ends, not an interval (an hour) later.
func TestCaughtUpWhileCheckpointInBackground(t *testing.T) {
	const n = 200
	dir := t.TempDir()
	sock := filepath.Join(dir, "q.sock")
	half := make(chan struct{})
	standIn(t, sock, n, n+2, half) // entry n+1 is never sent
	logDir := filepath.Join(dir, "logs")
	if err := os.Mkdir(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := newWriter(Config{Socket: sock, LogDir: logDir, Sync: SyncCheckpoint, CheckpointInterval: time.Hour, ReportInterval: time.Hour, MaxLogSize: 1 << 30, MaxLogFiles: 10, MaxBackoff: time.Second}, io.Discard)
	g := newGate(w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		var st State
		first := true
		w.session(ctx, &st, &first)
	}()
	defer func() {
		cancel()
		<-done
		w.closeAll()
	}()
	// The first batch's checkpoint (the first since the start).
	waitChan(t, g.started, "a checkpoint in the background")
	close(half)
	waitFor(t, 30*time.Second, "all lines written", func() bool {
		lines, err := trySourceLines(logDir, "slow")
		return err == nil && len(lines) >= n
	})
	// Only the session's loop ends the checkpoint under way (settle), so
	// it is under way when the last batch is looked at, however late the
	// gate opens.
	close(g.release)
	waitFor(t, 30*time.Second, "the state file to reach the last entry", func() bool {
		st, err := LoadState(logDir)
		return err == nil && st.Cursor.Seq >= n
	})
}

// A rotation's mark saves the cursor of the entry that filled the file
// without syncing: if it is the last entry for a while, a synced
// checkpoint still has work to do (the tick makes it), and it syncs and
// closes the rotated file.
func TestMarkLeavesWorkForTheNextSync(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(Config{LogDir: dir, Sync: SyncCheckpoint, CheckpointInterval: time.Hour, ReportInterval: time.Hour, MaxLogSize: 100, MaxLogFiles: 10}, io.Discard)
	defer w.closeAll()
	w.cursor = logproto.Cursor{Instance: "i"}
	if err := w.checkpoint(); err != nil {
		t.Fatal(err)
	}
	for i := 1; w.stats.Rotations == 0; i++ {
		if i > 100 {
			t.Fatal("no rotation after 100 lines of 100-byte files")
		}
		rec := logproto.Record{Seq: uint64(i), Source: "a", Msg: fmt.Sprintf("line %d", i), Time: time.Unix(1700000000, 0)}
		if err := w.record(context.Background(), &rec); err != nil {
			t.Fatal(err)
		}
	}
	if w.saved != w.cursor || len(w.unsynced) != 1 {
		t.Fatalf("not the case under test: saved %v, cursor %v, %d rotated files waiting", w.saved, w.cursor, len(w.unsynced))
	}
	if !w.needsSync() {
		t.Fatal("after a rotation's mark, nothing for a synced checkpoint to do")
	}
	if err := w.checkpoint(); err != nil {
		t.Fatal(err)
	}
	if w.needsSync() || len(w.unsynced) != 0 {
		t.Errorf("after a synced checkpoint: needs another %v, %d rotated files waiting", w.needsSync(), len(w.unsynced))
	}
}

// With -sync always every checkpoint is a synced one, marks included:
// no state ever names a line that is not on the disk.
func TestSyncAlwaysHasNoQuickCheckpoints(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(Config{LogDir: dir, Sync: SyncAlways, CheckpointInterval: time.Hour, ReportInterval: time.Hour, MaxLogSize: 100, MaxLogFiles: 10}, io.Discard)
	defer w.closeAll()
	w.cursor = logproto.Cursor{Instance: "i"}
	for i := 1; w.stats.Rotations < 3; i++ {
		if i > 100 {
			t.Fatal("no 3 rotations after 100 lines of 100-byte files")
		}
		rec := logproto.Record{Seq: uint64(i), Source: fmt.Sprintf("s%d", i%2), Msg: fmt.Sprintf("line %d", i), Time: time.Unix(1700000000, 0)}
		if err := w.record(context.Background(), &rec); err != nil {
			t.Fatal(err)
		}
	}
	if w.stats.Checkpoints == 0 || w.stats.Synced != w.stats.Checkpoints || len(w.unsynced) != 0 {
		t.Errorf("-sync always: %d checkpoints, %d synced, %d rotated files waiting; want all synced, none waiting", w.stats.Checkpoints, w.stats.Synced, len(w.unsynced))
	}
}

// Rotated files wait for the next synced checkpoint open, but no more
// than maxUnsynced of them: the rotation past that makes a synced
// checkpoint, which syncs and closes them all.
func TestUnsyncedRotatedFilesBounded(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(Config{LogDir: dir, Sync: SyncCheckpoint, CheckpointInterval: time.Hour, ReportInterval: time.Hour, MaxLogSize: 40, MaxLogFiles: 1000}, io.Discard)
	defer w.closeAll()
	w.cursor = logproto.Cursor{Instance: "i"}
	most := 0
	for i := 1; w.stats.Rotations < 2*maxUnsynced+10; i++ {
		if i > 10*maxUnsynced {
			t.Fatalf("%d rotations after %d lines of 40-byte files", w.stats.Rotations, i)
		}
		rec := logproto.Record{Seq: uint64(i), Source: "a", Msg: fmt.Sprintf("line %d", i), Time: time.Unix(1700000000, 0)}
		if err := w.record(context.Background(), &rec); err != nil {
			t.Fatal(err)
		}
		most = max(most, len(w.unsynced))
	}
	if most > maxUnsynced {
		t.Errorf("%d rotated files waited for a sync, want at most %d", most, maxUnsynced)
	}
	if w.stats.Synced < 2 {
		t.Errorf("%d rotations made %d synced checkpoints, want 2 or more", w.stats.Rotations, w.stats.Synced)
	}
}
