package logwrite

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logfile"
	"github.com/lklog/lklog/internal/logproto"
)

// Main runs logwrite with command-line arguments args (without the program
// name) and returns the exit status.
func Main(args []string, stderr io.Writer) int {
	cfg, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "logwrite:", err)
		return 2
	}
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, cfg, stderr); err != nil {
		fmt.Fprintln(stderr, "logwrite:", err)
		return 1
	}
	return 0
}

// batchMax is the most records handed from the reading goroutine at once;
// batchesAhead is how many batches it may decode ahead of the writing,
// so that it keeps reading and decoding while a checkpoint waits for the
// disk (about 0.3 MB per batch of 100-byte lines).
const (
	batchMax     = 1024
	batchesAhead = 8
)

type batch struct {
	recs []logproto.Record
	err  error // the stream ended after recs
	// idle: nothing more from memlogd was waiting when the batch ended.
	idle bool
}

// Run writes memlogd's entries to the log directory until ctx ends, then
// checkpoints and returns nil. It returns an error only when it cannot
// start (log directory, -wait-mount).
func Run(ctx context.Context, cfg Config, stderr io.Writer) error {
	if cfg.rootMount == "" {
		cfg.rootMount = "/"
	}
	if cfg.WaitMount {
		if err := waitMount(ctx, cfg.LogDir, cfg.rootMount, cfg.WaitMountTimeout, 250*time.Millisecond, stderr); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	if err := ensureDir(cfg.LogDir); err != nil {
		return err
	}
	if err := logfile.RemoveTemps(cfg.LogDir, StateName); err != nil {
		fmt.Fprintf(stderr, "logwrite: %v\n", err)
	}
	st, err := LoadState(cfg.LogDir)
	if err != nil {
		// A damaged state cannot be trusted: start as if there was none
		// (the ring is written again; duplicates are possible).
		fmt.Fprintf(stderr, "logwrite: %v; starting without a cursor\n", err)
		st = State{}
	}
	w := newWriter(cfg, stderr)
	w.cursor, w.saved = st.Cursor, st.Cursor
	defer w.closeAll()
	w.quota()

	first := true
	backoff := retryMin
	for {
		progressed, err := w.session(ctx, &st, &first)
		if ctx.Err() != nil {
			if first {
				// Never connected: the state file is still the one
				// recovery needs.
				return nil
			}
			if cerr := w.checkpoint(); cerr != nil {
				fmt.Fprintf(stderr, "logwrite: final checkpoint: %v\n", cerr)
			}
			st := w.stats
			fmt.Fprintf(stderr, "logwrite: stopping: wrote %d lines (%d bytes), %d entries lost to gaps, %d rotations (%d failed attempts), %d checkpoints (%v), %d of them synced, %d failed writes\n",
				st.Lines, st.Bytes, st.Lost, st.Rotations, st.RotateErrors, st.Checkpoints, st.CheckpointTime.Round(time.Microsecond), st.Synced, st.WriteErrors)
			return nil
		}
		if progressed {
			backoff = retryMin
		}
		w.rep.report("memlogd", "%v; reconnecting (backoff up to %v)", err, cfg.MaxBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(backoff*2, cfg.MaxBackoff)
	}
}

// request builds the query for the current cursor.
func (w *writer) request() logproto.Request {
	if w.legacy {
		return logproto.Request{Legacy: true, Mode: logproto.ModeDumpFollow}
	}
	req := logproto.Request{Mode: logproto.ModeDumpFollow, Exclude: append([]string{ownSources}, w.cfg.Exclude...)}
	if w.cursor.Instance != "" {
		c := w.cursor
		req.After = &c
	}
	return req
}

// session connects once and writes entries until the stream ends. It
// reports whether any entry arrived.
func (w *writer) session(ctx context.Context, st *State, first *bool) (bool, error) {
	if *first && !w.legacy && w.cursor.Instance != "" {
		recovered, err := w.recoverFromDump(ctx, *st)
		if recovered {
			*first = false
			st.Files = nil
		}
		if err != nil {
			return recovered, err
		}
	}
	var s *logclient.Stream
	var err error
	if w.legacy {
		s, err = logclient.Open(ctx, w.cfg.Socket, w.request())
	} else {
		// LinuxKit's mode 2 goes out at once on a second connection: if
		// memlogd is LinuxKit's, that stream has the whole ring, with
		// nothing lost to waiting for an answer that never comes.
		s, err = logclient.OpenProbe(ctx, w.cfg.Socket, w.request(), logproto.Request{Mode: logproto.ModeDumpFollow})
	}
	// LinuxKit's memlogd reads one byte of the request and either never
	// answers or closes the connection with the rest unread (a reset).
	// A memlogd dying at that moment closes it too, so a closed
	// connection counts only when it happens twice in a row.
	reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, logclient.ErrProbeClosed)
	if reset {
		w.resets++
	} else {
		w.resets = 0
	}
	fallback := err == nil && s.Legacy() && !w.legacy
	if fallback || errors.Is(err, logclient.ErrNotExtended) && (!reset || w.resets >= 2) && !w.legacy {
		why := "memlogd answered only LinuxKit's request"
		if err != nil {
			why = err.Error()
		}
		fmt.Fprintf(w.stderr, "logwrite: %s: falling back to LinuxKit's mode 2 (dump then follow). Exactly-once is impossible in this mode: without sequence numbers a restart writes the ring again (a reconnect skips entries by receive time, which is a guess), and lost entries are not reported\n", why)
		w.legacy = true
		w.legacySkipping = false
		if !fallback {
			s, err = logclient.Open(ctx, w.cfg.Socket, w.request())
		}
	}
	// Only a refusal of the cursor itself resets it; a busy memlogd (too
	// many readers) or any other refusal is retried with the cursor kept,
	// or the ring would be written again.
	var serr *logclient.ServerError
	if errors.As(err, &serr) && serr.CursorRefused() && w.cursor.Instance != "" {
		fmt.Fprintf(w.stderr, "logwrite: memlogd refused the cursor %s:%d (%v); starting from its oldest entry\n", w.cursor.Instance, w.cursor.Seq, err)
		w.cursor = logproto.Cursor{}
		s, err = logclient.Open(ctx, w.cfg.Socket, w.request())
	}
	if err != nil {
		return false, err
	}
	defer s.Close()
	w.rep.clear("memlogd", "connected to memlogd at %s", w.cfg.Socket)
	w.dumpEnd = 0
	if w.legacy {
		if !*first {
			w.legacySkipping = true
			w.legacySkipEqual = w.legacyLastCount
		}
		*first = false
	} else if err := w.hello(ctx, s.Hello, st, first); err != nil {
		return false, err
	}

	ch := make(chan batch, batchesAhead)
	free := make(chan []logproto.Record, batchesAhead+2)
	done := make(chan struct{})
	defer close(done)
	go read(s, ch, free, done, w.stderr)

	// The timer fires -checkpoint-interval after the last synced
	// checkpoint, whatever made it (the interval, catching up), so that
	// none follows another sooner than that for lack of entries; the
	// quick ones of rotations and new files do not count (writer.mark).
	tick := time.NewTimer(w.cfg.CheckpointInterval)
	defer tick.Stop()
	progressed := false
	// caughtUpLater: the batch that caught up came while a checkpoint
	// was under way; its own is made when that one ends.
	caughtUpLater := false
	for {
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case <-tick.C:
			if err := w.retryRotations(ctx); err != nil {
				return progressed, err
			}
			if wait := untilDue(w.lastCheckpoint, w.now(), w.cfg.CheckpointInterval); wait > 0 {
				tick.Reset(wait)
				continue
			}
			if w.needsSync() {
				if err := w.retry(ctx, "disk trouble", w.checkpointLater); err != nil {
					return progressed, err
				}
			}
			tick.Reset(w.cfg.CheckpointInterval)
		case <-w.bgDone():
			// A checkpoint that failed in the background is made again
			// here, retried until it works (nothing is read meanwhile).
			if err := w.settle(); err != nil {
				w.stats.WriteErrors++
				w.rep.report("disk trouble", "disk trouble: %v; checkpointing again", err)
				if err := w.retry(ctx, "disk trouble", w.checkpoint); err != nil {
					return progressed, err
				}
				w.rep.clear("disk trouble", "disk trouble: the checkpoint worked when made again")
			} else if caughtUpLater {
				// Caught up while it was under way (below).
				if err := w.retry(ctx, "disk trouble", w.checkpointLater); err != nil {
					return progressed, err
				}
			}
			caughtUpLater = false
		case b := <-ch:
			if len(b.recs) > 0 {
				progressed = true
			}
			if !w.legacy {
				if err := w.openAll(ctx, b.recs); err != nil {
					return progressed, err
				}
			}
			for i := range b.recs {
				if err := w.record(ctx, &b.recs[i]); err != nil {
					return progressed, err
				}
			}
			// One write per file for everything read so far: when the
			// next batch is already waiting, it joins this one (the files
			// are flushed at 64 KiB each, and always before a checkpoint).
			if len(ch) == 0 || b.err != nil {
				if err := w.retry(ctx, "disk trouble", w.flushAll); err != nil {
					return progressed, err
				}
			}
			// Having caught up on what memlogd held at the request is
			// a moment worth a checkpoint at once: a restart after a
			// burst need not write it again, and the state file says
			// "all written" without waiting for the next tick.
			caughtUp := w.dumpEnd > 0 && w.cursor.Seq >= w.dumpEnd
			if caughtUp {
				w.dumpEnd = 0
			}
			// memlogd's newest entry may be one it filters out for
			// logwrite (its own lines, -exclude): then nothing more
			// waiting from memlogd is as good as having reached it. But
			// memlogd may only be slow to send the rest: so the end to
			// reach is kept, and such a checkpoint is made only when
			// none is under way, or when the one under way ends.
			if !caughtUp && w.dumpEnd > 0 && b.idle && len(ch) == 0 && w.needsSync() {
				if w.bg == nil {
					caughtUp = true
				} else {
					caughtUpLater = true
				}
			}
			// With -sync always the lines of a batch are on the disk
			// before the next is written; else the disk is waited for in
			// the background while the next batches are written.
			switch {
			case w.cfg.Sync == SyncAlways:
				if err := w.retry(ctx, "disk trouble", w.checkpoint); err != nil {
					return progressed, err
				}
			case caughtUp || w.now().Sub(w.lastCheckpoint) >= w.cfg.CheckpointInterval:
				if err := w.retry(ctx, "disk trouble", w.checkpointLater); err != nil {
					return progressed, err
				}
			}
			select {
			case free <- b.recs[:0]:
			default:
			}
			if b.err != nil {
				if errors.Is(b.err, io.EOF) {
					b.err = errors.New("memlogd closed the stream")
				}
				return progressed, b.err
			}
		}
	}
}

// untilDue is how long after now a checkpoint is due, the last one
// having been at last: zero if it is due now.
func untilDue(last, now time.Time, interval time.Duration) time.Duration {
	return max(0, interval-now.Sub(last))
}

// hello handles the start of an extended reply: a new memlogd instance.
func (w *writer) hello(ctx context.Context, h logproto.Record, st *State, first *bool) error {
	*first = false
	// On the first connection a resumed cursor was recovered from a dump
	// before (recoverFromDump); a resumed reply here continues it.
	switch {
	case h.Resumed:
	case w.cursor.Instance != "":
		fmt.Fprintf(w.stderr, "logwrite: memlogd is a new instance (%s, was %s: a reboot or a memlogd restart); writing its ring from the start, the old instance's lines stay as they are\n", h.Instance, w.cursor.Instance)
	}
	if !h.Resumed {
		w.cursor = logproto.Cursor{Instance: h.Instance}
		if h.First > 1 {
			// The ring wrapped before this reader got there.
			if err := w.gap(ctx, h.First-1); err != nil {
				return err
			}
			w.cursor.Seq = h.First - 1
		}
	}
	w.dumpEnd = 0
	if h.Next > 1 && h.Next-1 > w.cursor.Seq {
		w.dumpEnd = h.Next - 1
	}
	st.Files = nil
	return nil
}

// record handles one entry or gap.
func (w *writer) record(ctx context.Context, rec *logproto.Record) error {
	switch rec.Type {
	case "":
		return w.entry(ctx, rec)
	case logproto.TypeGap:
		if err := w.gap(ctx, rec.Lost); err != nil {
			return err
		}
		if rec.Seq > 0 {
			w.cursor.Seq = rec.Seq - 1
		}
	}
	return nil
}

// read reads records from s and hands them over in batches: as many as
// have already arrived, up to batchMax. Lines that do not decode are
// reported and skipped. It ends after handing over the stream's error, or
// when done is closed. Batch slices come back through free for reuse.
func read(s *logclient.Stream, ch chan<- batch, free <-chan []logproto.Record, done <-chan struct{}, stderr io.Writer) {
	bad := 0
	var dec logproto.Decoder
	for {
		var b batch
		select {
		case b.recs = <-free:
		default:
			b.recs = make([]logproto.Record, 0, batchMax)
		}
		for len(b.recs) < batchMax {
			line, err := s.NextRaw()
			if err != nil {
				b.err = err
				break
			}
			n := len(b.recs)
			b.recs = b.recs[:n+1]
			if err := dec.Decode(line, &b.recs[n]); err != nil {
				b.recs = b.recs[:n]
				bad++
				if bad == 1 || bad%1000 == 0 {
					fmt.Fprintf(stderr, "logwrite: skipped %d reply lines that do not decode; last: %v: %.100q\n", bad, err, line)
				}
				continue
			}
			if !s.Buffered() {
				b.idle = s.Idle()
				break
			}
		}
		select {
		case ch <- b:
		case <-done:
			return
		}
		if b.err != nil {
			return
		}
	}
}
