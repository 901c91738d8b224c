// Package logread is the logread command: it prints memlogd's entries as
// LinuxKit's logread does, plus the options users of busybox and OpenWrt
// logread and of journalctl expect.
package logread

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logproto"
)

type options struct {
	socket     string
	follow     bool
	dumpFollow bool
	tail       int
	sources    multi
	exclude    multi
	severity   string
	json       bool
	after      string
	cursorFile string
	legacy     bool
}

type multi []string

func (m *multi) String() string { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*m = append(*m, p)
		}
	}
	return nil
}

// ParseCursor parses a cursor as logread prints it: INSTANCE:SEQ.
func ParseCursor(s string) (logproto.Cursor, error) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return logproto.Cursor{}, fmt.Errorf("cursor %q: want INSTANCE:SEQ", s)
	}
	seq, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil {
		return logproto.Cursor{}, fmt.Errorf("cursor %q: bad sequence number: %w", s, err)
	}
	return logproto.Cursor{Instance: s[:i], Seq: seq}, nil
}

// FormatCursor formats a cursor for ParseCursor.
func FormatCursor(c logproto.Cursor) string { return c.Instance + ":" + strconv.FormatUint(c.Seq, 10) }

// Main runs logread and returns its exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("logread", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.socket, "socket", logclient.DefaultSocket, "memlogd's query socket")
	fs.BoolVar(&o.follow, "f", false, "follow: print new entries as they arrive")
	fs.BoolVar(&o.dumpFollow, "F", false, "print the entries held, then follow")
	fs.IntVar(&o.tail, "n", 0, "start with the last N entries (that match the filters)")
	fs.Var(&o.sources, "source", "only sources matching this glob (repeatable, or comma-separated)")
	fs.Var(&o.exclude, "exclude", "skip sources matching this glob (repeatable, or comma-separated)")
	fs.StringVar(&o.severity, "severity", "", "only entries at least this severe: 0-7 or emerg, alert, crit, err, warning, notice, info, debug")
	fs.BoolVar(&o.json, "json", false, "print memlogd's JSON records as they arrive, one per line (the hello record first, then entries and gaps)")
	fs.StringVar(&o.after, "after-cursor", "", "start after this cursor: INSTANCE:SEQ (the instance of -json's hello record, the seq of an entry), as -cursor-file stores it")
	fs.StringVar(&o.cursorFile, "cursor-file", "", "start after the cursor in this file if it exists, and store the last cursor in it on exit")
	fs.BoolVar(&o.legacy, "legacy", false, "use only LinuxKit's one-byte requests (for LinuxKit's own memlogd)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "logread: unexpected arguments %q\n", fs.Args())
		return 2
	}
	req, err := o.request()
	if err != nil {
		fmt.Fprintln(stderr, "logread:", err)
		return 2
	}
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, o, req, stdout) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		// A write to a stdout nobody reads (a full pipe, a terminal in
		// flow control) may block forever: stop anyway, leaving the
		// cursor file as it was (the next run repeats, never skips).
		t := time.NewTimer(stopWait)
		defer t.Stop()
		select {
		case err = <-errc:
		case <-t.C:
			return 0
		}
	}
	switch {
	case err == nil, errors.Is(err, syscall.EPIPE), ctx.Err() != nil:
		return 0
	}
	fmt.Fprintln(stderr, "logread:", err)
	return 1
}

// stopWait bounds how long logread, told to stop, waits for its output.
const stopWait = time.Second

// extendedOnly reports whether an option needs the extended protocol.
func (o *options) extendedOnly() bool {
	return o.tail > 0 || len(o.sources) > 0 || len(o.exclude) > 0 || o.severity != "" || o.after != "" || o.cursorFile != ""
}

func (o *options) request() (logproto.Request, error) {
	req := logproto.Request{Mode: logproto.ModeDump, Tail: o.tail, Sources: o.sources, Exclude: o.exclude}
	switch {
	case o.dumpFollow:
		req.Mode = logproto.ModeDumpFollow
	case o.follow && (o.tail > 0 || o.after != "" || o.cursorFile != ""):
		// -f with a starting point: print from there, then follow.
		req.Mode = logproto.ModeDumpFollow
	case o.follow:
		req.Mode = logproto.ModeFollow
	}
	if o.severity != "" {
		n, err := logproto.ParseSeverity(o.severity)
		if err != nil {
			return req, err
		}
		req.Severity = &n
	}
	if o.after != "" {
		c, err := ParseCursor(o.after)
		if err != nil {
			return req, err
		}
		req.After = &c
	} else if o.cursorFile != "" {
		b, err := os.ReadFile(o.cursorFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return req, fmt.Errorf("reading cursor file: %w", err)
		default:
			c, err := ParseCursor(strings.TrimSpace(string(b)))
			if err != nil {
				return req, fmt.Errorf("cursor file %s: %w", o.cursorFile, err)
			}
			req.After = &c
		}
	}
	if o.legacy {
		if o.extendedOnly() {
			return req, errors.New("-legacy cannot be combined with -n, -source, -exclude, -severity or cursors")
		}
		req.Legacy = true
	}
	return req, req.Validate()
}

func run(ctx context.Context, o options, req logproto.Request, stdout io.Writer) error {
	var s *logclient.Stream
	var err error
	if o.extendedOnly() {
		s, err = logclient.Open(ctx, o.socket, req)
	} else {
		// Against LinuxKit's memlogd this falls back to its protocol
		// quickly and without losing what arrives meanwhile.
		s, err = logclient.OpenAuto(ctx, o.socket, req)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (is memlogd running?)", err)
		}
		return err
	}
	defer s.Close()
	out := newOutput(stdout)
	if o.json && s.HelloLine != nil {
		// The hello record names the instance that cursors refer to.
		out.add(s.HelloLine, 0)
	}
	err = copyRecords(s, out, o.json) // never nil: it ends with io.EOF at best
	if ferr := out.flush(); errors.Is(err, io.EOF) {
		err = ferr
	}
	if o.cursorFile != "" {
		// The cursor of the last entry that reached the reader of stdout:
		// not of what was read from memlogd, nor of what is still in a
		// pipe when its reader went away.
		if seq := out.delivered(); seq != 0 {
			c := logproto.Cursor{Instance: s.Hello.Instance, Seq: seq}
			if werr := renameio.WriteFile(o.cursorFile, []byte(FormatCursor(c)+"\n"), 0o644); werr != nil && err == nil {
				err = fmt.Errorf("writing cursor file: %w", werr)
			}
		}
	}
	return err
}

// writeError marks a failure to write to stdout.
type writeError struct{ err error }

func (e *writeError) Error() string { return "writing output: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func copyRecords(s *logclient.Stream, out *output, raw bool) error {
	var text logproto.TextFormatter
	var rec logproto.Record
	for {
		if raw {
			// Entries are printed as memlogd sent them.
			line, err := s.NextRaw()
			if err != nil {
				return err
			}
			out.add(line, s.Cursor().Seq)
		} else {
			if err := s.NextView(&rec); err != nil {
				return err
			}
			// A record type of a newer memlogd is not an entry: not
			// printed (-json passes it on).
			if rec.Type == "" || rec.Type == logproto.TypeGap {
				out.buf = appendRecord(out.buf, &text, &rec)
				out.mark(s.Cursor().Seq)
			}
		}
		if !s.Buffered() || len(out.buf) >= outputFlushAt {
			if err := out.flush(); err != nil {
				return err
			}
		}
	}
}

// outputFlushAt is the output buffered while more reply bytes wait.
const outputFlushAt = 64 << 10

// output buffers stdout and keeps, for the bytes written recently, the
// cursor each record ended at, so that it can tell which entries reached
// the reader of stdout.
type output struct {
	w   io.Writer
	buf []byte
	// ends and seqs: for each record in buf or written in the last
	// keepMarks bytes, its end as an offset in the whole output and the
	// sequence number of the last entry up to it (0: none yet; all are of
	// the stream's one instance).
	ends []int64
	seqs []uint64
	base int64 // output offset of buf[0]
	// old is the seq of the last record whose mark was dropped: it has
	// been read for sure.
	old    uint64
	failed bool
	// consumed is how far the reader got: every byte written, less what
	// a pipe still held when a write failed.
	consumed int64
}

// keepMarks bounds the marks kept for written bytes: a pipe holds at most
// this much (Linux's default pipe-max-size).
const keepMarks = 1 << 20

func newOutput(w io.Writer) *output { return &output{w: w} }

// add appends a line (without its newline) and marks its end.
func (o *output) add(line []byte, seq uint64) {
	o.buf = append(o.buf, line...)
	o.buf = append(o.buf, '\n')
	o.mark(seq)
}

// mark records that the bytes so far end a record, after which the last
// entry's sequence number is seq.
func (o *output) mark(seq uint64) {
	o.ends = append(o.ends, o.base+int64(len(o.buf)))
	o.seqs = append(o.seqs, seq)
}

// flush writes buf. After a failed write nothing more is written.
func (o *output) flush() error {
	if o.failed {
		return nil
	}
	n, err := o.w.Write(o.buf)
	o.base += int64(n)
	o.buf = o.buf[:copy(o.buf, o.buf[n:])]
	o.consumed = o.base
	if err != nil {
		o.failed = true
		o.consumed -= pipeUnread(o.w)
		return &writeError{err}
	}
	// Forget marks of bytes no pipe can still hold, once they are at
	// least half of the marks (so that each mark is moved O(1) times).
	i := sort.Search(len(o.ends), func(i int) bool { return o.ends[i] > o.base-keepMarks })
	if i > 0 && 2*i >= len(o.ends) {
		o.old = o.seqs[i-1]
		o.ends = o.ends[:copy(o.ends, o.ends[i:])]
		o.seqs = o.seqs[:copy(o.seqs, o.seqs[i:])]
	}
	return nil
}

// delivered returns the sequence number of the last entry whose bytes
// all reached the reader (0 if none).
func (o *output) delivered() uint64 {
	seq := o.old
	for i, end := range o.ends {
		if end > o.consumed {
			break
		}
		seq = max(seq, o.seqs[i])
	}
	return seq
}

// pipeUnread returns how many bytes written to w, if it is a pipe, its
// reader has not read (0 if unknown).
func pipeUnread(w io.Writer) int64 {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	st, err := f.Stat()
	if err != nil || st.Mode().Type() != fs.ModeNamedPipe {
		return 0
	}
	var n int
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	rc.Control(func(fd uintptr) {
		n, err = unix.IoctlGetInt(int(fd), unix.TIOCINQ) // FIONREAD
	})
	if err != nil || n < 0 {
		return 0
	}
	return int64(n)
}

// appendRecord formats a record as LinuxKit's logread does, with the text
// escaping of logproto.AppendEscaped; a gap reads as the entry memlogd
// gives legacy readers.
func appendRecord(dst []byte, f *logproto.TextFormatter, r *logproto.Record) []byte {
	if r.Type == logproto.TypeGap {
		return f.Append(dst, time.Now(), "memlogd", logproto.GapMessage(r.Lost))
	}
	return f.Append(dst, r.Time, r.Source, r.Msg)
}
