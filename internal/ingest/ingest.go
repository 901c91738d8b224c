// Package ingest turns a container's output stream (a FIFO or a socket that
// LinuxKit's init passed to memlogd) into ring entries, one per line.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

// Sink receives entries; *ring.Ring is one.
type Sink interface {
	Append(...ring.Entry) uint64
}

// Config says how lines become entries.
type Config struct {
	// MaxLineLen cuts longer lines; the rest of such a line is dropped
	// and the entry is marked truncated.
	MaxLineLen int
	// Facility and Severity every entry of the stream gets.
	Facility, Severity uint8
	// Now returns the receive time in Unix nanoseconds.
	Now func() int64
}

// Stats counts what one stream delivered.
type Stats struct {
	Lines     uint64
	Bytes     uint64
	Truncated uint64
}

// Check returns an error saying why fd cannot be read as a log stream:
// only FIFOs and stream sockets opened for reading are accepted.
func Check(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO:
	case unix.S_IFSOCK:
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			return fmt.Errorf("getsockopt SO_TYPE: %w", err)
		}
		if typ != unix.SOCK_STREAM && typ != unix.SOCK_SEQPACKET {
			return fmt.Errorf("socket of type %d is not a stream socket", typ)
		}
	default:
		return fmt.Errorf("not a FIFO or stream socket (%s)", fileType(st.Mode))
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("fcntl F_GETFL: %w", err)
	}
	if fl&unix.O_ACCMODE == unix.O_WRONLY {
		return errors.New("opened write-only")
	}
	return nil
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFLNK:
		return "symlink"
	}
	return fmt.Sprintf("mode %#o", mode&unix.S_IFMT)
}

// Open checks fd and wraps it in a file that reads through Go's poller,
// so that a blocked read holds no thread. It takes ownership of fd: on
// error fd is closed.
func Open(fd int, name string) (*os.File, error) {
	if err := Check(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("setting non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

const readSize = 64 << 10

// Read reads lines from r until EOF, an error, or ctx is done (then r is
// closed to stop the read, if it is an io.Closer), appending them to sink
// with source name. A last line without a newline is kept and marked
// partial; "\r\n" line ends lose their "\r". It returns nil at EOF.
func Read(ctx context.Context, r io.Reader, name []byte, sink Sink, c Config) (Stats, error) {
	if c.MaxLineLen < 1 {
		return Stats{}, fmt.Errorf("max line length %d: must be at least 1", c.MaxLineLen)
	}
	if cl, ok := r.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { cl.Close() })
		defer stop()
	}
	s := splitter{name: name, c: c}
	bufSize := readSize
	if bufSize < 2*c.MaxLineLen+2 {
		bufSize = 2*c.MaxLineLen + 2
	}
	buf := make([]byte, bufSize)
	start, end := 0, 0
	for {
		if start > 0 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		n, err := r.Read(buf[end:])
		end += n
		if n > 0 {
			start = s.split(buf[:end], s.c.Now())
			s.flush(sink)
		}
		if err != nil {
			if start < end && !s.skipping {
				s.add(buf[start:end], ring.FlagPartial, s.c.Now())
				s.flush(sink)
			}
			if errors.Is(err, io.EOF) {
				return s.stats, nil
			}
			if ctx.Err() != nil {
				return s.stats, ctx.Err()
			}
			return s.stats, fmt.Errorf("reading %q: %w", name, err)
		}
	}
}

type splitter struct {
	name     []byte
	c        Config
	entries  []ring.Entry
	skipping bool // dropping the rest of a line that was too long
	stats    Stats
}

// split turns the complete lines of b into pending entries and returns
// the offset of the unconsumed rest.
func (s *splitter) split(b []byte, now int64) int {
	i := 0
	for {
		// One pass finds the end of a plain line (a newline is not
		// plain) and tells that it needs no escaping in any output.
		j := i + logproto.PlainLen(b[i:])
		var flags uint8
		switch {
		case j == len(b):
			j = -1
		case b[j] == '\n':
			flags = ring.FlagPlain
		case b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n':
			j, flags = j+1, ring.FlagPlain // add drops the '\r'
		default:
			if k := bytes.IndexByte(b[j:], '\n'); k >= 0 {
				j += k
			} else {
				j = -1
			}
		}
		if j < 0 {
			break
		}
		if s.skipping {
			s.skipping = false
		} else {
			s.add(b[i:j], flags, now)
		}
		i = j + 1
	}
	rest := len(b) - i
	switch {
	case s.skipping:
		return len(b)
	case rest > s.c.MaxLineLen+1: // +1: the line may still end in "\r\n"
		s.add(b[i:i+s.c.MaxLineLen], ring.FlagTruncated, now)
		s.skipping = true
		return len(b)
	}
	return i
}

// add makes an entry of line. A line already cut (FlagTruncated) keeps a
// last '\r': it is not the end of the line.
func (s *splitter) add(line []byte, flags uint8, now int64) {
	if n := len(line); n > 0 && line[n-1] == '\r' && flags&ring.FlagTruncated == 0 {
		line = line[:n-1]
	}
	if len(line) > s.c.MaxLineLen {
		line = line[:s.c.MaxLineLen]
		flags |= ring.FlagTruncated
	}
	if flags&ring.FlagTruncated != 0 {
		s.stats.Truncated++
	}
	s.stats.Lines++
	s.stats.Bytes += uint64(len(line))
	// Field by field: a composite literal would be built on the stack
	// and copied in 16-byte moves that stall on the stores just made.
	if len(s.entries) < cap(s.entries) {
		s.entries = s.entries[:len(s.entries)+1]
	} else {
		s.entries = append(s.entries, ring.Entry{})
	}
	e := &s.entries[len(s.entries)-1]
	e.Seq, e.Time, e.OrigTime = 0, now, 0
	e.Source, e.Msg, e.SD = s.name, line, nil
	e.PID, e.Facility, e.Severity, e.Flags = 0, s.c.Facility, s.c.Severity, flags
}

func (s *splitter) flush(sink Sink) {
	if len(s.entries) > 0 {
		sink.Append(s.entries...)
		clear(s.entries)
		s.entries = s.entries[:0]
	}
}
