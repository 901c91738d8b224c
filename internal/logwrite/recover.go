package logwrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logfile"
	"github.com/lklog/lklog/internal/logproto"
)

// Recovery after a crash (kill -9, power loss with -sync none).
//
// The state file holds a cursor C and each file's size at that
// checkpoint; the lines past those sizes (a file's "tail") are entries
// after C, each file's in the order memlogd sent them, that logwrite wrote
// before it died: entries C+1 .. X, where X, the last one written, is
// not recorded. Asked for the entries after C, memlogd sends those it
// still holds: from some F >= C+1 on (F > C+1 when it evicted entries
// while logwrite was down). So a tail is a run of lines of entries older
// than F (memlogd cannot send them again: they stay) followed by lines
// of entries F, F+1, ... of that source (memlogd sends them again: they
// are cut). The split is found by comparing the tail's lines with the
// lines the entries memlogd sends would make: the longest end of the tail
// that equals the start of that source's entries from F on is cut, the
// rest stays. What is exact and what is not:
//
//   - no line is removed unless memlogd sends its entry again, and no
//     entry is written twice, with one exception: identical lines (the
//     same source and message within the same second) on both sides of F
//     cannot be told apart, and are taken as sent again;
//   - the number of entries lost (evicted before logwrite wrote them) is
//     exact only when it is zero: when some file's tail reaches F or
//     beyond, nothing before F was lost (logwrite writes in order); else
//     up to F-1-C less the lines kept were lost (entries of sources
//     logwrite skips count in that bound too). That bound is written,
//     as "N entries lost here at most", into every file the state lists
//     (those being written when logwrite stopped), since which sources
//     lost entries is unknown.
//
// To compare, the start of the reply is held in memory until every tail
// is matched; then the files are cut, the gap written and the held
// entries written as usual.

// maxTail bounds the tail of a file read for recovery; a longer one is
// kept whole (it cannot come from one checkpoint interval of logwrite).
const maxTail = 64 << 20

// tail is one file's lines written after the checkpoint.
type tail struct {
	fs    FileState
	lines [][]byte // each with its newline
	// partial is an incomplete last line (no newline): always cut.
	partial int
	// want are the lines the entries of this file's source sent after
	// the cursor make, up to len(lines).
	want [][]byte
}

// readTail reads the lines of fs's file beyond its checkpointed size; nil
// if there are none or the file was replaced, shortened or is too long.
// A file marked Rotating that is another inode now replaced the rotated
// one after the checkpoint: all its lines are a tail (the returned tail's
// fs has its inode and size 0).
func readTail(dir string, fs FileState) (*tail, error) {
	f, err := os.OpenFile(filepath.Join(dir, fs.Name), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if ok && sys.Ino != fs.Ino && fs.Rotating {
		fs.Ino, fs.Size, fs.Rotating = sys.Ino, 0, false
	}
	if ok && sys.Ino == fs.Ino && st.Size() < fs.Size {
		return nil, &shortError{name: fs.Name, have: st.Size(), want: fs.Size}
	}
	if !ok || sys.Ino != fs.Ino || st.Size() <= fs.Size || st.Size()-fs.Size > maxTail {
		return nil, nil
	}
	b := make([]byte, st.Size()-fs.Size)
	if _, err := f.ReadAt(b, fs.Size); err != nil {
		return nil, err
	}
	t := &tail{fs: fs}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			t.partial = len(b)
			break
		}
		t.lines = append(t.lines, b[:i+1])
		b = b[i+1:]
	}
	return t, nil
}

// shortError: a file is shorter than the state says. logwrite never cuts
// a file below a checkpointed size, so the disk lost bytes that were
// written (an I/O error on writeback, a volume that dropped and came
// back) while memlogd kept running: their lines are not written again,
// since memlogd sends only the entries after the state's cursor.
type shortError struct {
	name       string
	have, want int64
}

func (e *shortError) Error() string {
	return fmt.Sprintf("%s has %d bytes, the state file says %d: the disk lost %d bytes of lines counted as written, which are not written again", e.name, e.have, e.want, e.want-e.have)
}

// split returns how many of the tail's lines stay: the smallest p such
// that lines[p:] equals the start of want.
func (t *tail) split() int {
	n := len(t.lines)
	for p := max(0, n-len(t.want)); p < n; p++ {
		ok := true
		for i := p; i < n; i++ {
			if !bytes.Equal(t.lines[i], t.want[i-p]) {
				ok = false
				break
			}
		}
		if ok {
			return p
		}
	}
	return n
}

// isGapLine reports whether a line is one of logwrite's gap lines.
func isGapLine(line []byte) bool {
	f := bytes.SplitN(line, []byte(" "), 3)
	return len(f) == 3 && bytes.HasPrefix(f[2], []byte("logwrite: ")) && bytes.Contains(f[2], []byte(" entries lost here"))
}

// recovery matches the tails against the start of memlogd's reply.
type recovery struct {
	cursor logproto.Cursor
	tails  map[string]*tail // by file name
	files  []FileState
	held   []logproto.Record
	// undecided counts tails that want more lines.
	undecided int
	text      logproto.TextFormatter
}

func newRecovery(dir string, st State, stderr io.Writer) *recovery {
	rc := &recovery{cursor: st.Cursor, tails: map[string]*tail{}}
	for _, fs := range st.Files {
		if filepath.Base(fs.Name) != fs.Name || fs.Name == "." || fs.Name == ".." {
			fmt.Fprintf(stderr, "logwrite: state file lists %q, which is not a file name; ignored\n", fs.Name)
			continue
		}
		t, err := readTail(dir, fs)
		var short *shortError
		if errors.As(err, &short) {
			rc.files = append(rc.files, fs)
			fmt.Fprintf(stderr, "logwrite: recovering: %v\n", err)
			continue
		}
		if err != nil {
			rc.files = append(rc.files, fs)
			fmt.Fprintf(stderr, "logwrite: recovering %s: %v; its lines written after the last checkpoint stay (some may appear twice)\n", fs.Name, err)
			continue
		}
		if t == nil {
			rc.files = append(rc.files, fs)
			continue
		}
		rc.files = append(rc.files, t.fs)
		rc.tails[fs.Name] = t
		if len(t.lines) > 0 {
			rc.undecided++
		}
	}
	return rc
}

// add holds one record of the reply; it reports whether every tail can
// now be matched.
func (rc *recovery) add(rec logproto.Record) bool {
	rc.held = append(rc.held, rec)
	if rec.Type == "" {
		if t := rc.tails[logfile.FileName(rec.Source)]; t != nil && len(t.want) < len(t.lines) {
			t.want = append(t.want, appendLine(nil, &rc.text, rec.OrigTime(), rec.Source, rec.Msg))
			if len(t.want) == len(t.lines) {
				rc.undecided--
			}
		}
	}
	return rc.undecided == 0
}

// recoverFromDump runs at the first connection when the state has a
// cursor: it asks memlogd for a dump after the cursor, cuts the files
// back to what memlogd sends again (see above), writes the dump and
// checkpoints, so that the session that follows continues after it. It
// reports whether it did (false: memlogd is another instance, does not
// speak the extended protocol or refused the cursor, which the session
// handles). An error before anything was changed leaves recovery to the
// next attempt.
func (w *writer) recoverFromDump(ctx context.Context, st State) (bool, error) {
	req := w.request()
	req.Mode = logproto.ModeDump
	// LinuxKit's memlogd is told quickly by a legacy request sent at the
	// same time (the session that follows then falls back).
	s, err := logclient.OpenProbe(ctx, w.cfg.Socket, req, logproto.Request{Mode: logproto.ModeDump})
	var serr *logclient.ServerError
	switch {
	case errors.Is(err, logclient.ErrNotExtended), errors.As(err, &serr) && serr.CursorRefused():
		return false, nil
	case err != nil:
		return false, err
	}
	defer s.Close()
	if s.Legacy() || !s.Hello.Resumed {
		return false, nil
	}
	rc := newRecovery(w.cfg.LogDir, st, w.stderr)
	// Resolved at the first record even without tails: the gap before it
	// goes into the files being written too.
	decided := false
	bad := 0
	var dec logproto.Decoder
	var rec logproto.Record
	for {
		line, err := s.NextRaw()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if !decided {
				return false, fmt.Errorf("recovery: %w", err)
			}
			return true, errors.Join(err, w.retry(ctx, "disk trouble", w.checkpoint))
		}
		// Decode copies what it keeps: held records stay valid.
		if err := dec.Decode(line, &rec); err != nil {
			if bad++; bad == 1 {
				fmt.Fprintf(w.stderr, "logwrite: skipped a reply line that does not decode: %v: %.100q\n", err, line)
			}
			continue
		}
		if !decided {
			if decided = rc.add(rec); decided {
				if err := w.resolve(ctx, rc); err != nil {
					return true, err
				}
			}
			continue
		}
		if err := w.record(ctx, &rec); err != nil {
			return true, err
		}
	}
	if !decided {
		if err := w.resolve(ctx, rc); err != nil {
			return true, err
		}
	}
	return true, w.retry(ctx, "disk trouble", w.checkpoint)
}

// resolve cuts every tail back to the lines memlogd sends again, records
// what was lost, checkpoints and writes the held records.
func (w *writer) resolve(ctx context.Context, rc *recovery) error {
	// F: the oldest entry after the cursor memlogd still holds. Only a
	// gap record says entries were evicted; an entry further on only
	// means those between were skipped (-exclude, logwrite's own).
	first := rc.cursor.Seq + 1
	held := rc.held
	if len(held) > 0 && held[0].Type == logproto.TypeGap {
		first = held[0].Seq
		held = held[1:] // the entries before F: handled here
	}
	var removed int64
	kept, resent := uint64(0), false
	for _, fs := range rc.files {
		t := rc.tails[fs.Name]
		if t == nil {
			continue
		}
		p := t.split()
		size := fs.Size
		for _, l := range t.lines[:p] {
			size += int64(len(l))
			if !isGapLine(l) {
				kept++
			}
		}
		if p < len(t.lines) {
			resent = true
		}
		n, replaced, _, err := logfile.Truncate(w.cfg.LogDir, fs.Name, fs.Ino, size)
		switch {
		case err != nil:
			fmt.Fprintf(w.stderr, "logwrite: %v; lines written after the last checkpoint may appear twice\n", err)
		case replaced:
			fmt.Fprintf(w.stderr, "logwrite: %s was replaced during recovery; left as it is\n", fs.Name)
		}
		removed += n
	}
	if removed > 0 {
		fmt.Fprintf(w.stderr, "logwrite: removed %d bytes written after the last checkpoint: memlogd sends those entries again\n", removed)
	}
	var lost uint64
	if first > rc.cursor.Seq+1 && !resent && first-1-rc.cursor.Seq > kept {
		lost = first - 1 - rc.cursor.Seq - kept
	}
	if kept > 0 {
		fmt.Fprintf(w.stderr, "logwrite: kept %d lines written after the last checkpoint: memlogd no longer holds their entries\n", kept)
	}
	w.cursor.Seq = first - 1
	if lost > 0 {
		if err := w.recoveryGap(ctx, rc.files, lost); err != nil {
			return err
		}
	}
	if err := w.retry(ctx, "disk trouble", w.checkpoint); err != nil {
		return err
	}
	for i := range held {
		if err := w.record(ctx, &held[i]); err != nil {
			return err
		}
	}
	rc.held = nil
	return nil
}

// recoveryGap writes a line saying up to lost entries were lost into
// every file the state lists (or memlogd's file if none).
func (w *writer) recoveryGap(ctx context.Context, files []FileState, lost uint64) error {
	w.stats.Lost += lost
	w.rep.report("gap", "memlogd dropped up to %d entries while logwrite was stopped; a line in the log files marks the place", lost)
	var sources []string
	for _, fs := range files {
		src := fs.Source
		if src == "" {
			src = strings.TrimSuffix(fs.Name, logfile.Suffix) // a state file of an earlier version
		}
		if logfile.FileName(src) == fs.Name {
			sources = append(sources, src)
		}
	}
	if len(sources) == 0 {
		sources = []string{gapSource}
	}
	now := w.now()
	msg := fmt.Sprintf("logwrite: %d entries lost here at most: memlogd dropped them while logwrite was stopped (the exact number is unknown)", lost)
	for _, src := range sources {
		of, err := w.fileFor(ctx, src)
		if err != nil {
			return err
		}
		of.f.SetBuffer(appendLine(of.f.Buffer(), &w.text, now, of.source, msg))
	}
	return nil
}
