// Package memlogd is the daemon: it binds the log, query and syslog
// sockets, feeds every source into one ring and serves readers from it.
package memlogd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/lklog/lklog/internal/query"
	"github.com/lklog/lklog/internal/ring"
)

// Config is everything memlogd's command line sets.
type Config struct {
	SocketLog    string
	SocketQuery  string
	SocketSyslog string
	FDLog        int
	FDQuery      int
	FDSyslog     int
	SocketMode   os.FileMode
	SyslogMode   os.FileMode
	MaxLines     int
	MaxBytes     int
	MaxLineLen   int
	MaxReaders   int
	PaceWait     time.Duration
	Console      bool
	Daemonize    bool
	Kmsg         bool
	KmsgState    string
	// RequestTimeout bounds how long a query client may take to send its
	// request.
	RequestTimeout time.Duration
	// StallTimeout is how long a query client may read nothing while a
	// reply waits for it before a new client may take its slot.
	StallTimeout time.Duration
	// StallLimit is how long such a client is kept when no other
	// client needs its slot.
	StallLimit time.Duration
}

// Defaults: LinuxKit's for the flags it has.
const (
	DefaultSocketLog   = "/var/run/linuxkit-external-logging.sock"
	DefaultSocketQuery = "/var/run/memlogdq.sock"
	DefaultSyslog      = "/dev/log"
	DefaultMaxLines    = 5000
	DefaultMaxLineLen  = 1024
	// DefaultMaxBytes holds the default 5000 lines at the default 1 KiB
	// each, with room for their source names.
	DefaultMaxBytes   = 6 << 20
	DefaultMaxReaders = 64
	// DefaultPaceWait: a reader is taken for stalled after a second in
	// which it could have read and did not (time in which it was kept
	// from running for lack of CPU does not count; see ring.Config).
	DefaultPaceWait = time.Second
)

type octalMode struct{ m *os.FileMode }

func (o octalMode) String() string {
	if o.m == nil {
		return ""
	}
	return fmt.Sprintf("%#o", uint32(*o.m))
}

func (o octalMode) Set(s string) error {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return fmt.Errorf("%q is not an octal permission such as 0600", s)
	}
	*o.m = os.FileMode(v)
	return nil
}

// ParseFlags parses memlogd's command line.
func ParseFlags(args []string, stderr io.Writer) (Config, *flag.FlagSet, error) {
	c := Config{SocketMode: 0o600, SyslogMode: 0o666}
	fs := flag.NewFlagSet("memlogd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.SocketLog, "socket-log", DefaultSocketLog, "unix datagram socket that receives log file descriptors")
	fs.StringVar(&c.SocketQuery, "socket-query", DefaultSocketQuery, "unix stream socket for readers (logread, logwrite)")
	fs.StringVar(&c.SocketSyslog, "socket-syslog", DefaultSyslog, "syslog datagram socket; empty disables it")
	fs.IntVar(&c.FDLog, "fd-log", -1, "use this inherited fd as the log socket instead of -socket-log")
	fs.IntVar(&c.FDQuery, "fd-query", -1, "use this inherited fd as the query listener instead of -socket-query")
	fs.IntVar(&c.FDSyslog, "fd-syslog", -1, "use this inherited fd as the syslog socket instead of -socket-syslog")
	fs.Var(octalMode{&c.SocketMode}, "socket-mode", "permissions of the log and query sockets it creates")
	fs.Var(octalMode{&c.SyslogMode}, "syslog-mode", "permissions of the syslog socket it creates")
	fs.IntVar(&c.MaxLines, "max-lines", DefaultMaxLines, "ring capacity in entries")
	fs.IntVar(&c.MaxBytes, "max-bytes", DefaultMaxBytes, "ring capacity in bytes of source names, messages and structured data")
	fs.IntVar(&c.MaxLineLen, "max-line-len", DefaultMaxLineLen, "longer lines are cut to this many bytes and marked truncated")
	fs.IntVar(&c.MaxReaders, "max-readers", DefaultMaxReaders, "concurrent query connections; more are refused")
	fs.DurationVar(&c.PaceWait, "pace-wait", DefaultPaceWait, "a source about to evict entries a reader has not read waits while that reader keeps reading; a reader that could have read and did not for this long is given up on (it gets a gap), and none is waited for longer than 10 times this; 0: never wait")
	fs.BoolVar(&c.Console, "console", true, "echo every entry to stdout (skipped and counted when stdout is slow)")
	fs.BoolVar(&c.Kmsg, "kmsg", false, "read kernel messages from /dev/kmsg into the ring (then do not run the kmsg service too: memlogd drops its copies and warns)")
	fs.StringVar(&c.KmsgState, "kmsg-state", "/run/memlogd/kmsg.state", "where -kmsg keeps the last kernel sequence number it delivered, so a restart in the same boot neither repeats nor skips records")
	fs.BoolVar(&c.Daemonize, "daemonize", false, "bind the sockets, start a copy in the background and exit once they exist")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 10*time.Second, "how long a query client may take to send its request")
	fs.DurationVar(&c.StallTimeout, "stall-timeout", query.DefaultStallTimeout, "a query client that reads nothing this long while its reply waits is disconnected when a new client needs its reader slot")
	fs.DurationVar(&c.StallLimit, "stall-limit", query.DefaultStallLimit, "such a client is disconnected after this long even when no one needs its slot")
	if err := fs.Parse(args); err != nil {
		return Config{}, fs, err
	}
	if fs.NArg() > 0 {
		return Config{}, fs, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, fs, c.Validate()
}

// Validate checks the bounds of a configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxLines < 1 {
		errs = append(errs, fmt.Errorf("-max-lines %d: must be at least 1", c.MaxLines))
	}
	if c.MaxLineLen < 1 {
		errs = append(errs, fmt.Errorf("-max-line-len %d: must be at least 1", c.MaxLineLen))
	}
	if min := max(c.MaxLineLen+ring.MaxSDLen+ring.MaxSourceLen, ring.MinBytes); c.MaxBytes < min {
		errs = append(errs, fmt.Errorf("-max-bytes %d: must hold at least one longest entry (%d bytes with -max-line-len %d)", c.MaxBytes, min, c.MaxLineLen))
	}
	if c.StallLimit < 0 {
		errs = append(errs, fmt.Errorf("-stall-limit %v: must not be negative", c.StallLimit))
	}
	if c.StallTimeout < 0 {
		errs = append(errs, fmt.Errorf("-stall-timeout %v: must not be negative", c.StallTimeout))
	}
	if c.PaceWait < 0 {
		errs = append(errs, fmt.Errorf("-pace-wait %v: must not be negative", c.PaceWait))
	}
	if c.MaxReaders < 1 {
		errs = append(errs, fmt.Errorf("-max-readers %d: must be at least 1", c.MaxReaders))
	}
	if c.SocketLog == "" && c.FDLog < 0 {
		errs = append(errs, errors.New("-socket-log is empty and no -fd-log given"))
	}
	if c.SocketQuery == "" && c.FDQuery < 0 {
		errs = append(errs, errors.New("-socket-query is empty and no -fd-query given"))
	}
	return errors.Join(errs...)
}
