// Package logwrite is the logwrite command: it follows memlogd and writes
// each source's entries to <log-dir>/<source>.log, rotating the files as
// LinuxKit's logwrite does. Beyond LinuxKit it keeps a cursor in a state
// file so that a restart writes every entry exactly once, writes gaps
// reported by memlogd into the files, maps untrusted source names to safe
// file names, survives full and failing disks, can wait for the log
// directory's file system to be mounted, gzips rotated files and keeps the
// directory under a quota.
package logwrite

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/lklog/lklog/internal/logclient"
)

// Sync policies.
const (
	// SyncNone never fsyncs the log files: a killed logwrite still loses
	// and duplicates nothing (the page cache survives it), a power loss
	// may lose the last lines.
	SyncNone = "none"
	// SyncCheckpoint fsyncs the files written since the last synced
	// checkpoint before the state file is replaced every
	// -checkpoint-interval, on catching up and at exit (the quick
	// checkpoints of rotations and new files do not: writer.mark).
	SyncCheckpoint = "checkpoint"
	// SyncAlways checkpoints (and so fsyncs) after every batch read from
	// memlogd.
	SyncAlways = "always"
)

// StateName is the state file in the log directory.
const StateName = "logwrite.state"

// Config is logwrite's configuration.
type Config struct {
	Socket      string
	LogDir      string
	MaxLogFiles int
	MaxLogSize  int64
	// Beyond LinuxKit.
	Compress           bool
	MaxTotalSize       int64
	Sync               string
	CheckpointInterval time.Duration
	ReportInterval     time.Duration
	WaitMount          bool
	WaitMountTimeout   time.Duration
	Exclude            []string
	MaxBackoff         time.Duration
	// rootMount is the mount point -wait-mount refuses ("/"); tests set
	// another one.
	rootMount string
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

// ownSources matches the sources logwrite never writes: its own stderr
// reaches memlogd under such names, and writing them would feed a loop.
const ownSources = "logwrite*"

// ParseFlags parses logwrite's command line.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	c := Config{rootMount: "/"}
	fs := flag.NewFlagSet("logwrite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Socket, "socket", logclient.DefaultSocket, "memlogd's query socket")
	fs.StringVar(&c.LogDir, "log-dir", "/var/log", "directory of the log files")
	fs.IntVar(&c.MaxLogFiles, "max-log-files", 10, "rotated files kept per source (x.log.0 .. x.log.<N-1>)")
	fs.Int64Var(&c.MaxLogSize, "max-log-size", 1048576, "rotate a file after a write that makes it at least this many bytes")
	fs.BoolVar(&c.Compress, "compress", false, "gzip rotated files (x.log.<i>.gz)")
	fs.Int64Var(&c.MaxTotalSize, "max-total-size", 0, "quota in bytes over all files in the log directory: the oldest rotated files are deleted first; 0: no quota")
	fs.StringVar(&c.Sync, "sync", SyncCheckpoint, "fsync policy: none, checkpoint (before the state updates of the interval, of catching up and of exit) or always (after every batch read)")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint-interval", time.Second, "how often the cursor is saved in the state file while entries arrive")
	fs.DurationVar(&c.ReportInterval, "report-interval", 30*time.Second, "disk and rotation trouble is reported at most once per interval")
	fs.BoolVar(&c.WaitMount, "wait-mount", false, "wait until the log directory is on a mounted file system other than /")
	fs.DurationVar(&c.WaitMountTimeout, "wait-mount-timeout", 5*time.Minute, "with -wait-mount: give up (exit 1) after this long")
	fs.Var((*multi)(&c.Exclude), "exclude", "also skip sources matching these globs (comma-separated, repeatable); logwrite* is always skipped")
	fs.DurationVar(&c.MaxBackoff, "max-backoff", 5*time.Second, "longest wait between attempts to reach memlogd")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, c.Validate()
}

// Validate checks a configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Socket == "" {
		errs = append(errs, errors.New("-socket is empty"))
	}
	if c.LogDir == "" {
		errs = append(errs, errors.New("-log-dir is empty"))
	}
	if c.MaxLogFiles < 1 || c.MaxLogFiles > 9999 {
		errs = append(errs, fmt.Errorf("-max-log-files %d: want 1..9999", c.MaxLogFiles))
	}
	if c.MaxLogSize < 1 {
		errs = append(errs, fmt.Errorf("-max-log-size %d: must be positive", c.MaxLogSize))
	}
	if c.MaxTotalSize < 0 {
		errs = append(errs, fmt.Errorf("-max-total-size %d: must not be negative", c.MaxTotalSize))
	}
	switch c.Sync {
	case SyncNone, SyncCheckpoint, SyncAlways:
	default:
		errs = append(errs, fmt.Errorf("-sync %q: want %s, %s or %s", c.Sync, SyncNone, SyncCheckpoint, SyncAlways))
	}
	if c.CheckpointInterval <= 0 || c.ReportInterval <= 0 || c.MaxBackoff <= 0 || c.WaitMountTimeout <= 0 {
		errs = append(errs, errors.New("-checkpoint-interval, -report-interval, -max-backoff and -wait-mount-timeout must be positive"))
	}
	if len(c.Exclude)+1 > 32 {
		errs = append(errs, errors.New("too many -exclude patterns (at most 31)"))
	}
	for _, p := range c.Exclude {
		// memlogd would refuse every request carrying it.
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("-exclude %q: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
