// Package logread is the logread command: it prints memlogd's entries as
// LinuxKit's logread does, plus the options users of busybox and OpenWrt
// logread and of journalctl expect.
package logread

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/renameio/v2"

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

var severityNames = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

func parseSeverity(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 7 {
		return n, nil
	}
	for i, name := range severityNames {
		if strings.EqualFold(s, name) {
			return i, nil
		}
	}
	switch strings.ToLower(s) {
	case "error":
		return 3, nil
	case "warn":
		return 4, nil
	}
	return 0, fmt.Errorf("severity %q: want 0-7 or one of %s", s, strings.Join(severityNames, ", "))
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
	err = run(ctx, o, req, stdout)
	switch {
	case err == nil, errors.Is(err, syscall.EPIPE), ctx.Err() != nil:
		return 0
	}
	fmt.Fprintln(stderr, "logread:", err)
	return 1
}

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
		n, err := parseSeverity(o.severity)
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
	w := bufio.NewWriterSize(stdout, 64<<10)
	if o.json && s.HelloLine != nil {
		// The hello record names the instance that cursors refer to.
		w.Write(append(s.HelloLine, '\n'))
	}
	err = copyRecords(s, w, o.json) // never nil: it ends with io.EOF at best
	if ferr := w.Flush(); errors.Is(err, io.EOF) {
		err = ferr
	}
	if o.cursorFile != "" {
		if c := s.Cursor(); c.Instance != "" {
			if werr := renameio.WriteFile(o.cursorFile, []byte(FormatCursor(c)+"\n"), 0o644); werr != nil && err == nil {
				err = fmt.Errorf("writing cursor file: %w", werr)
			}
		}
	}
	return err
}

func copyRecords(s *logclient.Stream, w *bufio.Writer, raw bool) error {
	var out []byte
	var text logproto.TextFormatter
	var rec logproto.Record
	for {
		var err error
		if raw {
			// Entries are printed as memlogd sent them; decoding is only
			// needed to keep the cursor up to date.
			var line []byte
			line, err = s.NextRaw()
			if err == nil {
				if _, werr := w.Write(append(line, '\n')); werr != nil {
					return werr
				}
			}
		} else {
			err = s.NextView(&rec)
			if err == nil {
				out = appendRecord(out[:0], &text, &rec)
				if _, werr := w.Write(out); werr != nil {
					return werr
				}
			}
		}
		if err != nil {
			return err
		}
		if !s.Buffered() {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
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
