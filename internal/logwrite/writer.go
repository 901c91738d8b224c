package logwrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sync"
	"time"

	"github.com/lklog/lklog/internal/logfile"
	"github.com/lklog/lklog/internal/logproto"
)

// Limits of the writer.
const (
	// flushAt is the pending size at which a file is written before the
	// end of a batch.
	flushAt = 64 << 10
	// maxOpen is the number of files kept open; past it every file is
	// checkpointed and closed.
	maxOpen = 256
	// rotateRetry is how long a failed rotation waits before the next try.
	rotateRetry = time.Second
	// retryMin and retryMax bound the wait between attempts of a write
	// that failed.
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
	// gapSource is the source whose file receives gap lines when no file
	// is open (the source memlogd uses for its own messages).
	gapSource = "memlogd"
	// maxUnsynced is the number of rotated files kept open until the next
	// synced checkpoint; a rotation past it makes a synced checkpoint.
	maxUnsynced = 64
)

// Stats counts what the writer did.
type Stats struct {
	Lines       uint64 // entry lines appended
	Bytes       uint64 // bytes of those lines
	Lost        uint64 // entries memlogd reported lost (gap lines)
	Checkpoints uint64
	// Synced counts the checkpoints that waited for the disk (with -sync
	// none, for the state file only); the others are quick ones
	// (writer.mark).
	Synced uint64
	// CheckpointTime is the time logwrite waited for checkpoints (mostly
	// for the disk with -sync checkpoint or always); a checkpoint in the
	// background is waited for only by the next synced one.
	CheckpointTime time.Duration
	Rotations      uint64
	WriteErrors    uint64 // failed attempts to write, open or checkpoint
	RotateErrors   uint64
	Skipped        uint64 // legacy mode: own or already written entries
}

type openFile struct {
	source  string
	f       *logfile.File
	retryAt time.Time // a failed rotation is retried after this
}

// writer turns records into lines in the files and keeps the state file.
type writer struct {
	cfg    Config
	rep    *reporter
	stderr io.Writer
	now    func() time.Time

	files map[string]*openFile // by source
	// last is the file of the last entry written (nil after any file
	// was closed): consecutive entries of one source skip the map.
	last *openFile
	// rotated holds the sources whose file was rotated, with a state
	// marking it so, and not opened again since.
	rotated map[string]bool
	// unsynced are rotated files with lines not yet synced, or that a
	// checkpoint in the background may be syncing: the next synced
	// checkpoint syncs and closes them.
	unsynced []*logfile.File
	// bg is the checkpoint waiting for the disk in the background, if any.
	bg *background
	// states numbers the states written; placed (under placing) is the
	// number of the one in place, which only a later one may replace.
	states  uint64
	placing sync.Mutex
	placed  uint64
	// syncHook, if set, runs before a background checkpoint syncs (tests).
	syncHook func()
	cursor   logproto.Cursor // last entry (or gap) whose line is appended
	saved    logproto.Cursor // cursor in the state file
	// durable is the cursor of the last synced checkpoint.
	durable logproto.Cursor
	legacy  bool
	resets  int // connections reset before the hello, in a row
	// dirChanged is set when files were created, renamed or deleted
	// since the directory was last synced.
	dirChanged     bool
	lastCheckpoint time.Time
	// rotating is the file the next checkpoint marks as rotated right
	// after it (FileState.Rotating).
	rotating *openFile
	// dumpEnd is the sequence number of the newest entry memlogd held
	// when this session's request reached it (the hello's next - 1): once
	// the cursor reaches it logwrite has caught up, and checkpoints at
	// once rather than at the next tick. Zero when there is nothing to
	// catch up on (or in legacy mode).
	dumpEnd uint64
	stats   Stats
	text    logproto.TextFormatter

	// Legacy mode: entries up to this receive time were written; on a
	// reconnect the dump repeats them.
	legacyLast      time.Time
	legacyLastCount int
	legacySkipEqual int
	legacySkipping  bool
}

func newWriter(cfg Config, stderr io.Writer) *writer {
	return &writer{
		cfg: cfg, stderr: stderr, rep: newReporter(stderr, cfg.ReportInterval), now: time.Now,
		files: map[string]*openFile{}, rotated: map[string]bool{},
	}
}

// retry runs op until it succeeds or ctx ends. Failures are reported once
// per report interval under kind; the first success after a failure says
// so. While it waits nothing is read from memlogd, which keeps the entries.
func (w *writer) retry(ctx context.Context, kind string, op func() error) error {
	wait := retryMin
	var since time.Time
	failures := 0
	for {
		err := op()
		if err == nil {
			if failures > 0 {
				w.rep.clear(kind, "%s: working again after %v and %d failed attempts", kind, w.now().Sub(since).Round(time.Millisecond), failures)
			}
			return nil
		}
		w.stats.WriteErrors++
		if failures == 0 {
			since = w.now()
		}
		failures++
		w.rep.report(kind, "%s: %v; holding %d bytes not yet written, retrying (memlogd keeps the entries meanwhile; %d entries lost so far)", kind, err, w.pending(), w.stats.Lost)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (gave up: %v)", kind, err, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, retryMax)
	}
}

func (w *writer) pending() int {
	n := 0
	for _, of := range w.files {
		n += of.f.Pending()
	}
	return n
}

// flushAll writes every file's pending bytes.
func (w *writer) flushAll() error {
	var first error
	for _, of := range w.files {
		if err := of.f.Flush(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", of.f.Name, err)
		}
	}
	return first
}

// checkpoint writes everything pending, syncs per policy and saves the
// cursor with every open file's size. With -sync checkpoint or always,
// every line up to the cursor is on stable storage when it returns,
// those of files rotated since the last one included.
func (w *writer) checkpoint() error { return w.save(true, false) }

// checkpointLater is checkpoint with the waiting for the disk done in
// another goroutine (see background), so that lines keep being written
// meanwhile; the session's loop takes its end (background.done).
func (w *writer) checkpointLater() error { return w.save(true, true) }

// mark is the quick checkpoint a rotation or a new file needs: it saves
// the cursor and the files' sizes without waiting for the disk, so that a
// logwrite killed (kill -9, a crash) and restarted against the same
// memlogd finds the state it needs to write every entry exactly once: the
// page cache survives a process, so nothing needs to be synced for that.
// What syncing adds is only that lines survive a power loss or a kernel
// crash, and those also end memlogd (its ring is in memory): the
// restarted logwrite meets a new memlogd instance, whose ring it writes
// from the start whatever the state file says, so a quick checkpoint the
// disk did not keep costs nothing there either. The synced checkpoints
// (every -checkpoint-interval, on catching up, at exit) still sync every
// line written before them. The case this leaves: a disk that loses
// written bytes while memlogd keeps running (an I/O error on writeback, a
// volume that drops and comes back); a mark may then name lines the disk
// lost, which recovery reports (shortError) but cannot write again. With
// -sync always every checkpoint is a synced one.
func (w *writer) mark() error { return w.save(false, false) }

// save is checkpoint (synced), checkpointLater (synced, later) or mark
// (not synced); with -sync always, all are checkpoints. A synced checkpoint first waits for the one in the
// background, if any; a mark does not (see place).
func (w *writer) save(synced, later bool) error {
	if w.cfg.Sync == SyncAlways {
		// Every state names only lines on the disk.
		synced, later = true, false
	}
	start := w.now()
	defer func() { w.stats.CheckpointTime += w.now().Sub(start) }()
	if synced {
		if err := w.settle(); err != nil {
			return err
		}
	}
	if err := w.flushAll(); err != nil {
		return err
	}
	syncing := synced && w.cfg.Sync != SyncNone
	if w.legacy {
		// No state: LinuxKit's memlogd has no cursor to give.
		if syncing {
			if err := w.syncAll(nil); err != nil {
				return err
			}
		}
		if synced {
			w.lastCheckpoint = w.now()
		}
		return nil
	}
	st := State{Cursor: w.cursor}
	for _, of := range w.files {
		st.Files = append(st.Files, FileState{Name: of.f.Name, Source: of.source, Ino: of.f.Ino(), Size: of.f.Size(), Rotating: of == w.rotating})
	}
	if synced && later {
		w.startBackground(st, syncing)
		return nil
	}
	// The new state is written (and synced, for a synced checkpoint)
	// under a temporary name while the files are synced; it replaces the
	// state file only after them.
	var pending *pendingState
	save := func() error {
		var err error
		pending, err = writePending(w.cfg.LogDir, st, synced)
		return err
	}
	var err error
	if syncing {
		err = w.syncAll(save)
	} else {
		err = save()
	}
	if err != nil {
		if pending != nil {
			pending.discard()
		}
		return err
	}
	if synced {
		// The interval counts from the last checkpoint that synced: quick
		// ones (a rotation every few milliseconds) do not put it off.
		w.lastCheckpoint = w.now()
	}
	if _, err := w.place(pending, w.nextState()); err != nil {
		return err
	}
	if syncing {
		if err := logfile.SyncDir(w.cfg.LogDir); err != nil {
			return err
		}
	}
	w.saved = w.cursor
	// The files opened from now on are listed by the next checkpoint.
	clear(w.rotated)
	w.stats.Checkpoints++
	if synced {
		w.durable = w.cursor
		w.stats.Synced++
	}
	return nil
}

// needsSync reports whether a synced checkpoint has anything to do:
// entries written since the last one (a mark may have saved them, but
// not synced), bytes not yet written, or not yet synced.
func (w *writer) needsSync() bool {
	if w.cursor != w.durable || len(w.unsynced) > 0 {
		return true
	}
	syncing := w.cfg.Sync != SyncNone
	if syncing && w.dirChanged {
		return true
	}
	for _, of := range w.files {
		if of.f.Pending() > 0 || syncing && of.f.Dirty() {
			return true
		}
	}
	return false
}

// background is a synced checkpoint waiting for the disk in another
// goroutine: the files, the directory and the new state under its
// temporary name are synced there, then the state file is replaced. The
// writer goes on appending to the files meanwhile (the state names the
// sizes they had: recovery treats what follows as after the checkpoint),
// and marks may replace the state file (writer.place); no file it may
// sync is closed, and no other checkpoint syncs, until it has ended
// (writer.settle).
type background struct {
	done   chan struct{} // closed when it has ended, err set
	err    error
	cursor logproto.Cursor
	// files were synced by it: if it fails, they are not.
	files []*logfile.File
	// rotated are files rotated before it, closed once it has synced them.
	rotated []*logfile.File
	dir     bool   // it syncs the directory
	gen     uint64 // its state's number
	// placed: its state replaced the state file (else a later one had).
	placed bool
}

// nextState numbers a new state.
func (w *writer) nextState() uint64 {
	w.states++
	return w.states
}

// place puts the pending state number gen in place of the state file,
// unless a later one is there already: then it is removed, and placed is
// false. A mark made while a checkpoint in the background waits for the
// disk so replaces the state file without waiting, and the checkpoint's
// older state does not come back over it. Both run in order of their
// numbers otherwise, and a later state covers more of every file.
func (w *writer) place(p *pendingState, gen uint64) (placed bool, err error) {
	w.placing.Lock()
	defer w.placing.Unlock()
	if gen < w.placed {
		p.discard()
		return false, nil
	}
	if err := p.replace(); err != nil {
		return false, err
	}
	w.placed = gen
	return true, nil
}

// startBackground starts a synced checkpoint of st in the background,
// the files synced too when syncing (else only the state).
func (w *writer) startBackground(st State, syncing bool) {
	b := &background{done: make(chan struct{}), cursor: w.cursor}
	var ops []func() error
	if syncing {
		for _, of := range w.files {
			if sync := of.f.SyncLater(); sync != nil {
				ops = append(ops, sync)
				b.files = append(b.files, of.f)
			}
		}
		for _, f := range w.unsynced {
			if sync := f.SyncLater(); sync != nil {
				ops = append(ops, sync)
				b.files = append(b.files, f)
			}
		}
		b.dir, w.dirChanged = w.dirChanged, false
	}
	b.rotated, w.unsynced = w.unsynced, nil
	b.gen = w.nextState()
	dir, hook, gen := w.cfg.LogDir, w.syncHook, b.gen
	go func() {
		defer close(b.done)
		if hook != nil {
			hook()
		}
		var pending *pendingState
		ops = append(ops, func() error {
			var err error
			pending, err = writePending(dir, st, true)
			return err
		})
		if b.dir {
			ops = append(ops, func() error { return logfile.SyncDir(dir) })
		}
		if b.err = runAll(ops); b.err != nil {
			if pending != nil {
				pending.discard()
			}
			return
		}
		b.placed, b.err = w.place(pending, gen)
		if b.err == nil && b.placed && syncing {
			b.err = logfile.SyncDir(dir)
		}
	}()
	w.bg = b
	w.lastCheckpoint = w.now()
	// The files opened from now on are listed by the next checkpoint.
	clear(w.rotated)
}

// bgDone is closed when the checkpoint in the background has ended; nil
// (never ready) when there is none.
func (w *writer) bgDone() <-chan struct{} {
	if w.bg == nil {
		return nil
	}
	return w.bg.done
}

// settle waits for the checkpoint in the background, if any, and takes
// its result: on failure, what it was to sync is synced by the next
// synced checkpoint.
func (w *writer) settle() error {
	b := w.bg
	if b == nil {
		return nil
	}
	<-b.done
	w.bg = nil
	if b.err != nil {
		for _, f := range b.files {
			f.Unsynced()
		}
		w.unsynced = append(w.unsynced, b.rotated...)
		w.dirChanged = w.dirChanged || b.dir
		return b.err
	}
	for _, f := range b.rotated {
		f.Close()
	}
	w.placing.Lock()
	if w.placed == b.gen {
		w.saved = b.cursor // no mark came after it
	}
	w.placing.Unlock()
	w.durable = b.cursor
	w.stats.Checkpoints++
	w.stats.Synced++
	return nil
}

// runAll runs ops at once and returns their errors joined.
func runAll(ops []func() error) error {
	errs := make([]error, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops[min(1, len(ops)):] {
		wg.Go(func() { errs[i+1] = op() })
	}
	if len(ops) > 0 {
		errs[0] = ops[0]()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// syncAll flushes the files written since their last sync, and the
// directory if files were created, renamed or removed, to stable storage,
// and runs also (if not nil) meanwhile.
// The syncs run at once: the filesystem can commit them together, so a
// checkpoint costs about one sync however many files it covers.
func (w *writer) syncAll(also func() error) error {
	var todo []func() error
	if also != nil {
		todo = append(todo, also)
	}
	for _, of := range w.files {
		if of.f.Dirty() {
			todo = append(todo, of.f.Sync)
		}
	}
	for _, f := range w.unsynced {
		todo = append(todo, f.Sync)
	}
	if w.dirChanged {
		todo = append(todo, func() error { return logfile.SyncDir(w.cfg.LogDir) })
	}
	if err := runAll(todo); err != nil {
		return err
	}
	w.dirChanged = false
	w.closeUnsynced()
	return nil
}

// closeUnsynced closes the rotated files kept for the next sync.
func (w *writer) closeUnsynced() {
	for i, f := range w.unsynced {
		f.Close()
		w.unsynced[i] = nil
	}
	w.unsynced = w.unsynced[:0]
}

// fileFor returns the open file of source, opening it (and checkpointing,
// so the state lists it with the size it had before this run wrote to it)
// if needed. A file that replaces one rotated since the last checkpoint
// needs no checkpoint: the state marks the rotated one (FileState.Rotating).
func (w *writer) fileFor(ctx context.Context, source string) (*openFile, error) {
	if w.last != nil && w.last.source == source {
		return w.last, nil
	}
	if of, ok := w.files[source]; ok {
		w.last = of
		return of, nil
	}
	of, listed, err := w.open(ctx, source)
	if err != nil || listed {
		return of, err
	}
	if err := w.retry(ctx, "disk trouble", w.mark); err != nil {
		return nil, err
	}
	return of, nil
}

// openAll opens the files of the sources of recs' entries that are not
// open, up to the first gap (whose line goes into the files open at that
// moment), with one checkpoint for them all rather than one each.
func (w *writer) openAll(ctx context.Context, recs []logproto.Record) error {
	unlisted := false
	prev := ""
	for i := range recs {
		r := &recs[i]
		if r.Type == logproto.TypeGap {
			break
		}
		if r.Type != "" || i > 0 && r.Source == prev {
			continue
		}
		prev = r.Source
		if _, ok := w.files[r.Source]; ok {
			continue
		}
		if len(w.files) >= maxOpen {
			break // fileFor closes them all first
		}
		_, listed, err := w.open(ctx, r.Source)
		if err != nil {
			return err
		}
		unlisted = unlisted || !listed
	}
	if !unlisted {
		return nil
	}
	return w.retry(ctx, "disk trouble", w.mark)
}

// open opens source's file, closing every file first (after a
// checkpoint) when maxOpen are open. listed reports whether the state
// covers the file as it is (it replaces one the state marks rotated);
// otherwise the caller checkpoints before anything is written to it.
func (w *writer) open(ctx context.Context, source string) (of *openFile, listed bool, err error) {
	rotated := w.rotated[source]
	delete(w.rotated, source)
	if len(w.files) >= maxOpen {
		if err := w.retry(ctx, "checkpoint", w.checkpoint); err != nil {
			return nil, false, err
		}
		for s, of := range w.files {
			of.f.Close()
			delete(w.files, s)
		}
		w.last = nil
		clear(w.rotated)
		rotated = false
	}
	name := logfile.FileName(source)
	var f *logfile.File
	err = w.retry(ctx, "disk trouble", func() error {
		var err error
		f, err = logfile.Open(w.cfg.LogDir, name)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	of = &openFile{source: source, f: f}
	w.files[source] = of
	w.dirChanged = true
	// A file replacing one the state marks rotated holds only lines
	// after its checkpoint.
	return of, rotated, nil
}

// appendLine formats one entry line: <RFC3339 time> <source> <msg>, with
// source and message escaped as logproto.AppendEscaped does (';' kept), so
// that one entry stays one line and control bytes stay out of the file.
func appendLine(dst []byte, f *logproto.TextFormatter, t time.Time, source, msg string) []byte {
	dst = f.AppendSeconds(dst, t)
	dst = append(dst, ' ')
	dst = logproto.AppendEscaped(dst, source, false)
	dst = append(dst, ' ')
	dst = logproto.AppendEscaped(dst, msg, false)
	return append(dst, '\n')
}

// entry appends one entry's line to its source's file.
func (w *writer) entry(ctx context.Context, rec *logproto.Record) error {
	if w.legacy && w.skipLegacy(rec) {
		w.stats.Skipped++
		return nil
	}
	of, err := w.fileFor(ctx, rec.Source)
	if err != nil {
		return err
	}
	buf := of.f.Buffer()
	n := len(buf)
	buf = appendLine(buf, &w.text, rec.OrigTime(), rec.Source, rec.Msg)
	w.stats.Bytes += uint64(len(buf) - n)
	of.f.SetBuffer(buf)
	w.stats.Lines++
	if w.legacy {
		w.noteLegacy(rec)
	} else {
		w.cursor.Seq = rec.Seq
	}
	if of.f.Pending() >= flushAt {
		if err := w.retry(ctx, "disk trouble", of.f.Flush); err != nil {
			return err
		}
	}
	if of.f.Size()+int64(of.f.Pending()) >= w.cfg.MaxLogSize {
		return w.rotate(ctx, of)
	}
	return nil
}

// gap writes a line saying lost entries were dropped into every open file
// (the lost entries may have belonged to any source), or into memlogd's
// file when none is open.
func (w *writer) gap(ctx context.Context, lost uint64) error {
	w.stats.Lost += lost
	w.rep.report("gap", "memlogd dropped %d entries before logwrite could write them (%d in all); a line in the log files marks the place", lost, w.stats.Lost)
	if len(w.files) == 0 {
		if _, err := w.fileFor(ctx, gapSource); err != nil {
			return err
		}
	}
	now := w.now()
	msg := fmt.Sprintf("logwrite: %d entries lost here: memlogd dropped them before logwrite could write them", lost)
	for _, of := range w.files {
		of.f.SetBuffer(appendLine(of.f.Buffer(), &w.text, now, of.source, msg))
	}
	return nil
}

// rotate checkpoints, so that the state matches the file being rotated,
// and rotates. A failed rotation is reported and retried after
// rotateRetry; meanwhile the file grows past its limit. The checkpoint
// is a quick one (mark): the rotated file stays open until the next
// synced checkpoint syncs it, unless too many wait already.
func (w *writer) rotate(ctx context.Context, of *openFile) error {
	if w.now().Before(of.retryAt) {
		return nil
	}
	w.rotating = of
	op := w.mark
	if len(w.unsynced) >= maxUnsynced {
		op = w.checkpoint
	}
	err := w.retry(ctx, "disk trouble", op)
	w.rotating = nil
	if err != nil {
		return err
	}
	if err := logfile.Rotate(w.cfg.LogDir, of.f.Name, w.cfg.MaxLogFiles); err != nil {
		w.stats.RotateErrors++
		of.retryAt = w.now().Add(rotateRetry)
		w.rep.report("rotation", "rotation failed, retrying in %v (the file keeps growing meanwhile): %v", rotateRetry, err)
		return nil
	}
	w.rep.clear("rotation", "rotation works again (%s)", of.f.Name)
	w.stats.Rotations++
	w.dirChanged = true
	// A checkpoint in the background may be syncing it.
	if w.cfg.Sync != SyncNone && (w.bg != nil || of.f.Dirty()) {
		w.unsynced = append(w.unsynced, of.f)
	} else {
		of.f.Close()
	}
	delete(w.files, of.source)
	w.last = nil
	w.rotated[of.source] = true
	// The new file is created while the rotated one still exists, before
	// compression or the quota may remove it: so it cannot get the
	// rotated file's inode number, which the state names.
	if _, err := w.fileFor(ctx, of.source); err != nil {
		return err
	}
	w.afterRotate(of.f.Name)
	return nil
}

// afterRotate compresses and enforces the quota; failures are reported
// and retried at the next rotation.
func (w *writer) afterRotate(name string) {
	if w.cfg.Compress {
		if err := logfile.CompressRotated(w.cfg.LogDir, name, w.cfg.MaxLogFiles); err != nil {
			w.rep.report("compression", "compression failed (retried at the next rotation): %v", err)
		} else {
			w.rep.clear("compression", "")
		}
	}
	w.quota()
}

func (w *writer) quota() {
	if w.cfg.MaxTotalSize <= 0 {
		return
	}
	deleted, total, err := logfile.EnforceQuota(w.cfg.LogDir, w.cfg.MaxTotalSize)
	if len(deleted) > 0 {
		w.dirChanged = true
	}
	if err != nil {
		w.rep.report("quota", "-max-total-size %d: %v (%d bytes in %s)", w.cfg.MaxTotalSize, err, total, w.cfg.LogDir)
		return
	}
	w.rep.clear("quota", "")
}

// retryRotations retries rotations that failed, once their wait is over.
func (w *writer) retryRotations(ctx context.Context) error {
	for _, of := range w.files {
		if !of.retryAt.IsZero() && !w.now().Before(of.retryAt) && of.f.Size()+int64(of.f.Pending()) >= w.cfg.MaxLogSize {
			if err := w.rotate(ctx, of); err != nil {
				return err
			}
		}
	}
	return nil
}

// skipLegacy decides, in legacy mode after a reconnect, whether an entry
// of the repeated dump was already written: entries received before the
// last one written, and as many received at the same instant as were
// written. LinuxKit's memlogd has no sequence numbers, so this is the
// best that can be done.
func (w *writer) skipLegacy(rec *logproto.Record) bool {
	if ok, _ := path.Match(ownSources, rec.Source); ok {
		return true
	}
	for _, p := range w.cfg.Exclude {
		if ok, _ := path.Match(p, rec.Source); ok {
			return true
		}
	}
	if !w.legacySkipping {
		return false
	}
	switch {
	case rec.Time.Before(w.legacyLast):
		return true
	case rec.Time.Equal(w.legacyLast) && w.legacySkipEqual > 0:
		w.legacySkipEqual--
		return true
	}
	w.legacySkipping = false
	return false
}

func (w *writer) noteLegacy(rec *logproto.Record) {
	if rec.Time.Equal(w.legacyLast) {
		w.legacyLastCount++
		return
	}
	w.legacyLast, w.legacyLastCount = rec.Time, 1
}

// closeAll closes every file, once a checkpoint in the background has
// ended.
func (w *writer) closeAll() {
	if err := w.settle(); err != nil {
		fmt.Fprintf(w.stderr, "logwrite: checkpoint: %v\n", err)
	}
	for s, of := range w.files {
		of.f.Close()
		delete(w.files, s)
	}
	w.last = nil
	w.closeUnsynced()
}
