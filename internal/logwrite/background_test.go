package logwrite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logproto"
)

// gate holds a background checkpoint before it syncs until released.
type gate struct {
	started chan struct{}
	release chan struct{}
}

func newGate(w *writer) *gate {
	g := &gate{started: make(chan struct{}, 1), release: make(chan struct{})}
	w.syncHook = func() {
		g.started <- struct{}{}
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
