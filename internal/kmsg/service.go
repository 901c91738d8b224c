package kmsg

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

// Defaults of the kmsg service.
const (
	DefaultStatePath    = "/run/kmsg/state"
	DefaultSyslogSocket = "/dev/log"
	DefaultQuerySocket  = "/var/run/memlogdq.sock"
)

// ServiceConfig is the kmsg service's command line.
type ServiceConfig struct {
	Config
	// SyslogSocket is memlogd's /dev/log; when it is not a socket, the
	// service writes plain lines to its stderr instead.
	SyslogSocket string
	// QuerySocket is memlogd's query socket, asked whether memlogd reads
	// /dev/kmsg itself and which kernel record it got last; "" or a
	// missing socket skips both.
	QuerySocket string
	// QueryTimeout bounds that exchange.
	QueryTimeout time.Duration
}

// ErrDoubleLogging is returned when memlogd reads /dev/kmsg itself.
var ErrDoubleLogging = errors.New("memlogd already reads /dev/kmsg itself (started with -kmsg): every kernel record would be logged twice")

// ParseServiceFlags parses the kmsg service's command line.
func ParseServiceFlags(args []string, stderr io.Writer) (ServiceConfig, error) {
	c := ServiceConfig{Config: DefaultConfig()}
	fs := flag.NewFlagSet("kmsg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Device, "device", DefaultPath, "kernel log device")
	level := fs.String("min-level", "debug", "forward records at least this severe: 0-7 or emerg, alert, crit, err, warning, notice, info, debug")
	fs.BoolVar(&c.Replay, "replay", true, "on a fresh boot, forward the kernel's ring from its oldest record; -replay=false starts with the next record written")
	fs.StringVar(&c.StatePath, "state", DefaultStatePath, "file keeping the last forwarded kernel sequence number and boot id, to continue after it when restarted in the same boot; empty: none")
	fs.StringVar(&c.SyslogSocket, "socket-syslog", DefaultSyslogSocket, "memlogd's syslog socket; if it is not a socket, plain lines go to stderr (LinuxKit's memlogd has no /dev/log)")
	fs.StringVar(&c.QuerySocket, "socket-query", DefaultQuerySocket, "memlogd's query socket, to refuse to start when memlogd reads /dev/kmsg itself and to continue after the last kernel record it holds; empty: do not ask")
	fs.DurationVar(&c.QueryTimeout, "query-timeout", 3*time.Second, "how long to wait for memlogd's answer on the query socket")
	if err := fs.Parse(args); err != nil {
		return ServiceConfig{}, err
	}
	if fs.NArg() > 0 {
		return ServiceConfig{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	lv, err := ParseLevel(*level)
	if err != nil {
		return ServiceConfig{}, fmt.Errorf("-min-level: %w", err)
	}
	c.MinLevel = lv
	return c, nil
}

// Main runs the kmsg service with command-line arguments args (without
// the program name) until SIGTERM or SIGINT, and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, err := ParseServiceFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "kmsg:", err)
		return 2
	}
	// A log reader that went away must not kill the service.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Serve(ctx, cfg, stderr); err != nil {
		fmt.Fprintln(stderr, "kmsg:", err)
		return 1
	}
	return 0
}

// Serve forwards the kernel log to memlogd's syslog socket, or as plain
// lines to out when there is none, until ctx is done.
func Serve(ctx context.Context, cfg ServiceConfig, out io.Writer) error {
	if cfg.Logf == nil {
		cfg.Logf = func(_ uint8, format string, args ...any) {
			fmt.Fprintf(out, format+"\n", args...)
		}
	}
	if cfg.QuerySocket != "" {
		info, err := askMemlogd(ctx, cfg.QuerySocket, cfg.QueryTimeout)
		switch {
		case err != nil:
			cfg.Logf(ring.SevNotice, "kmsg: not checking memlogd: %v", err)
		case info.kmsg:
			return fmt.Errorf("%w; memlogd's query socket %s says so: stop this service or drop memlogd's -kmsg", ErrDoubleLogging, cfg.QuerySocket)
		case info.haveSeq && info.boot != "":
			cfg.Delivered = &State{Boot: info.boot, Seq: info.seq}
		}
	}
	if cfg.SyslogSocket != "" && isSocket(cfg.SyslogSocket) {
		s := &syslogSender{path: cfg.SyslogSocket, ctx: ctx, logf: cfg.Logf}
		defer s.close()
		return run(ctx, cfg.Config, s.deliver)
	}
	cfg.Logf(ring.SevInfo, "kmsg: %s is not a socket: writing plain lines to stderr", cfg.SyslogSocket)
	w := bufio.NewWriterSize(out, 64<<10)
	var line []byte
	return run(ctx, cfg.Config, func(es []ring.Entry) (int, error) {
		for i := range es {
			line = AppendLine(line[:0], &es[i])
			if _, err := w.Write(line); err != nil {
				return i, fmt.Errorf("writing to stderr: %w", err)
			}
		}
		if err := w.Flush(); err != nil {
			return 0, fmt.Errorf("writing to stderr: %w", err)
		}
		return len(es), nil
	})
}

func isSocket(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode()&os.ModeSocket != 0
}

// syslogSender sends entries to a datagram socket, reconnecting (memlogd
// restarted) with a growing pause until its context is done.
type syslogSender struct {
	path string
	ctx  context.Context
	logf func(uint8, string, ...any)
	conn *net.UnixConn
	buf  []byte
}

func (s *syslogSender) close() {
	if s.conn != nil {
		s.conn.Close()
	}
}

func (s *syslogSender) deliver(es []ring.Entry) (int, error) {
	pause := 10 * time.Millisecond
	failing := false
	for i := 0; i < len(es); {
		if s.conn == nil {
			c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
			if err == nil {
				s.conn = c
				if failing {
					s.logf(ring.SevNotice, "kmsg: %s: sending again", s.path)
				}
			} else if !failing {
				failing = true
				s.logf(ring.SevWarning, "kmsg: %s: %v; retrying", s.path, err)
			}
		}
		if s.conn != nil {
			s.buf = AppendDatagram(s.buf[:0], &es[i])
			stop := context.AfterFunc(s.ctx, func() { s.conn.SetWriteDeadline(time.Unix(1, 0)) })
			_, err := s.conn.Write(s.buf)
			stop()
			if err == nil {
				i++
				pause = 10 * time.Millisecond
				continue
			}
			if s.ctx.Err() != nil {
				return i, s.ctx.Err()
			}
			if !failing {
				failing = true
				s.logf(ring.SevWarning, "kmsg: sending to %s: %v; retrying", s.path, err)
			}
			s.conn.Close()
			s.conn = nil
		}
		select {
		case <-s.ctx.Done():
			return i, s.ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
	return len(es), nil
}

// AppendDatagram appends an entry as the RFC 5424 message the kmsg
// service sends: <PRI>1 TIMESTAMP - kmsg - - SD MSG, with PRI from the
// entry's facility and severity and TIMESTAMP its OrigTime in UTC at
// microseconds.
func AppendDatagram(dst []byte, e *ring.Entry) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendUint(dst, uint64(e.Facility)*8+uint64(e.Severity), 10)
	dst = append(dst, ">1 "...)
	t := e.OrigTime
	if t == 0 {
		t = e.Time
	}
	dst = time.Unix(0, t).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, " - "...)
	dst = append(dst, Source...)
	dst = append(dst, " - - "...)
	if len(e.SD) > 0 {
		dst = append(dst, e.SD...)
	} else {
		dst = append(dst, '-')
	}
	dst = append(dst, ' ')
	return append(dst, e.Msg...)
}

var facilityNames = [24]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// AppendLine appends an entry as the plain line the kmsg service writes
// when there is no syslog socket:
//
//	2026-03-01T12:00:00.123456Z kern.info seq=339: NET: Registered protocol family 10
func AppendLine(dst []byte, e *ring.Entry) []byte {
	t := e.OrigTime
	if t == 0 {
		t = e.Time
	}
	dst = time.Unix(0, t).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, ' ')
	if int(e.Facility) < len(facilityNames) {
		dst = append(dst, facilityNames[e.Facility]...)
	} else {
		dst = strconv.AppendUint(dst, uint64(e.Facility), 10)
	}
	dst = append(dst, '.')
	dst = append(dst, logproto.SeverityNames[e.Severity&7]...)
	if seq, ok := SeqFromSD(e.SD); ok {
		dst = append(dst, " seq="...)
		dst = strconv.AppendUint(dst, seq, 10)
	}
	dst = append(dst, ": "...)
	dst = append(dst, e.Msg...)
	return append(dst, '\n')
}

// memlogdInfo is what the kmsg service learns from memlogd.
type memlogdInfo struct {
	kmsg    bool   // memlogd reads /dev/kmsg itself
	boot    string // memlogd's boot id
	seq     uint64 // last kernel sequence number among its kmsg entries
	haveSeq bool
}

// askMemlogd asks memlogd's query socket for its hello record (does it
// read /dev/kmsg itself?) and its last entries from source kmsg (which
// kernel record did it get last?). A missing socket gives a zero answer
// and no error.
func askMemlogd(ctx context.Context, path string, timeout time.Duration) (memlogdInfo, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return memlogdInfo{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// A busy memlogd (every reader slot taken) is asked again within the
	// timeout.
	for {
		info, err := askOnce(ctx, path)
		if !errors.Is(err, errBusy) {
			return info, err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return info, fmt.Errorf("%w (for %v)", err, timeout)
		case <-t.C:
		}
	}
}

// errBusy is memlogd refusing a query because every reader slot is taken.
var errBusy = errors.New("memlogd is busy (too many readers)")

// askOnce asks once. LinuxKit's memlogd never answers the extended
// request, so LinuxKit's dump request goes out beside it: when only that
// one is answered, memlogd is LinuxKit's (which cannot read /dev/kmsg),
// known within logclient.LegacyGrace rather than at the timeout.
func askOnce(ctx context.Context, path string) (memlogdInfo, error) {
	var info memlogdInfo
	req := logproto.Request{Mode: logproto.ModeDump, Tail: 16, Sources: []string{Source}}
	s, err := logclient.OpenProbe(ctx, path, req, logproto.Request{Mode: logproto.ModeDump})
	var serr *logclient.ServerError
	switch {
	case errors.As(err, &serr) && (serr.Code == logproto.ErrBusy || serr.Code == "" && strings.HasPrefix(serr.Msg, "too many readers")):
		return info, fmt.Errorf("%s: %w", path, errBusy)
	case errors.Is(err, logclient.ErrNotExtended):
		return info, fmt.Errorf("%s: %w", path, err)
	case err != nil:
		return info, fmt.Errorf("asking %s: %w", path, err)
	}
	defer s.Close()
	if s.Legacy() {
		return info, fmt.Errorf("%s answers only LinuxKit's requests (LinuxKit's memlogd, which does not read /dev/kmsg)", path)
	}
	info.kmsg, info.boot = s.Hello.Kmsg, s.Hello.Boot
	var dec logproto.Decoder
	var rec logproto.Record
	for {
		line, err := s.NextRaw()
		if errors.Is(err, io.EOF) {
			return info, nil
		}
		if err != nil {
			return info, fmt.Errorf("reading %s: %w", path, err)
		}
		if err := dec.DecodeView(line, &rec); err != nil {
			return info, fmt.Errorf("%s: %w", path, err)
		}
		if rec.Type != "" || rec.Source != Source {
			continue
		}
		if seq, ok := SeqFromSD([]byte(rec.SD)); ok && (!info.haveSeq || seq > info.seq) {
			info.seq, info.haveSeq = seq, true
		}
	}
}
