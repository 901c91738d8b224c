// Package logforward is the logforward command: it ships memlogd's entries
// to remote log servers (drains), each after its own cursor and through its
// own spool, and serves a control socket to list, add and remove drains at
// run time. `logforward drains ...` and `logforward status` are its client.
package logforward

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/forward"
	"github.com/lklog/lklog/internal/forward/config"
	"github.com/lklog/lklog/internal/forward/spool"
	"github.com/lklog/lklog/internal/logclient"
)

// Defaults.
const (
	DefaultControl  = "/var/run/logforward.sock"
	DefaultStateDir = "/var/lib/logforward"
)

// Config is the daemon's configuration.
type Config struct {
	Socket           string
	StateDir         string
	WaitMount        bool
	WaitMountTimeout time.Duration
	Drains           []string
	ConfigFile       string
	Control          string
	Hostname         string
	Sync             string
	SpoolBytes       int64
	MemorySpoolBytes int64
	MaxBackoff       time.Duration
	ReportInterval   time.Duration
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, " ") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

type sizeFlag struct{ v *int64 }

func (s sizeFlag) String() string {
	if s.v == nil {
		return ""
	}
	return fmt.Sprint(*s.v)
}
func (s sizeFlag) Set(v string) error {
	n, err := config.ParseBytes(v)
	if err != nil {
		return err
	}
	*s.v = n
	return nil
}

// ParseFlags parses the daemon's command line.
func ParseFlags(args []string, stderr io.Writer) (Config, error) {
	c := Config{SpoolBytes: forward.DefaultSpoolBytes, MemorySpoolBytes: forward.DefaultMemorySpoolBytes}
	fs := flag.NewFlagSet("logforward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Socket, "socket", logclient.DefaultSocket, "memlogd's query socket")
	fs.StringVar(&c.StateDir, "state-dir", DefaultStateDir, "spools and added drains (on the persistent disk); empty: spools in memory")
	fs.BoolVar(&c.WaitMount, "wait-mount", false, "wait until the state directory is on a mounted file system other than /")
	fs.DurationVar(&c.WaitMountTimeout, "wait-mount-timeout", 5*time.Minute, "with -wait-mount: then spool in memory and say so")
	fs.Var((*multi)(&c.Drains), "drain", "a drain URL (repeatable), e.g. syslog+tls://logs:6514?ca=/etc/ca.pem")
	fs.StringVar(&c.ConfigFile, "config", "", "YAML file with drains, routes, TLS files")
	fs.StringVar(&c.Control, "control", DefaultControl, "control socket (mode 0600); empty: none")
	fs.StringVar(&c.Hostname, "hostname", "", "HOSTNAME of the messages (default: the config file's, else the system's)")
	fs.StringVar(&c.Sync, "sync", spool.SyncCheckpoint, "spool fsync policy: none, checkpoint (every second) or always (every batch)")
	fs.Var(sizeFlag{&c.SpoolBytes}, "spool-bytes", "bound of each drain's spool on disk (K, M, G suffixes)")
	fs.Var(sizeFlag{&c.MemorySpoolBytes}, "memory-spool-bytes", "bound of each drain's spool in memory, without a state directory")
	fs.DurationVar(&c.MaxBackoff, "max-backoff", 30*time.Second, "longest wait between connection attempts")
	fs.DurationVar(&c.ReportInterval, "report-interval", time.Minute, "how often a status summary is logged; 0: never")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch c.Sync {
	case spool.SyncNone, spool.SyncCheckpoint, spool.SyncAlways:
	default:
		return Config{}, fmt.Errorf("-sync %q: want none, checkpoint or always", c.Sync)
	}
	if c.Socket == "" || c.SpoolBytes <= 0 || c.MemorySpoolBytes <= 0 || c.MaxBackoff <= 0 || c.ReportInterval < 0 {
		return Config{}, errors.New("-socket must be set; -spool-bytes, -memory-spool-bytes and -max-backoff must be positive")
	}
	return c, nil
}

// Main runs logforward with args (without the program name) and returns
// the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	// Client commands: [-control PATH] drains|status ...
	control := DefaultControl
	rest := args
	if len(rest) >= 2 && (rest[0] == "-control" || rest[0] == "--control") {
		control, rest = rest[1], rest[2:]
	}
	if len(rest) > 0 && (rest[0] == "drains" || rest[0] == "status") {
		if err := runClient(control, rest, stdout); err != nil {
			fmt.Fprintln(stderr, "logforward:", err)
			return 1
		}
		return 0
	}
	cfg, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "logforward:", err)
		return 2
	}
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, cfg, stderr); err != nil {
		fmt.Fprintln(stderr, "logforward:", err)
		return 1
	}
	return 0
}

// Run forwards until ctx ends.
func Run(ctx context.Context, cfg Config, stderr io.Writer) error {
	var outMu sync.Mutex
	logf := func(format string, a ...any) {
		line := oneLine(fmt.Sprintf("logforward: "+format, a...))
		outMu.Lock()
		io.WriteString(stderr, line+"\n")
		outMu.Unlock()
	}
	var file config.File
	if cfg.ConfigFile != "" {
		var err error
		if file, err = config.LoadFile(cfg.ConfigFile); err != nil {
			return err
		}
	}
	hostname := cfg.Hostname
	if hostname == "" {
		hostname = file.Hostname
	}
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	var drains []config.Drain
	for _, u := range cfg.Drains {
		drains = append(drains, config.Drain{URL: u})
	}
	drains = append(drains, file.Drains...)
	// Check every drain before starting any.
	for i := range drains {
		if _, err := drains[i].Parse(); err != nil {
			return err
		}
	}

	stateDir := cfg.StateDir
	if stateDir != "" && cfg.WaitMount {
		if err := waitMount(ctx, stateDir, cfg.WaitMountTimeout, logf); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			logf("%v; spooling in memory", err)
			stateDir = ""
		}
	}
	if stateDir != "" {
		if err := writable(stateDir); err != nil {
			logf("state directory %s is not writable (%v): spools are in memory (%d bytes per drain) and are lost at exit, added drains are not kept", stateDir, err, cfg.MemorySpoolBytes)
			stateDir = ""
		}
	} else {
		logf("no state directory: spools are in memory (%d bytes per drain) and are lost at exit", cfg.MemorySpoolBytes)
	}
	fw := forward.New(ctx, forward.Options{
		Socket: cfg.Socket, StateDir: stateDir, Sync: cfg.Sync, SpoolBytes: cfg.SpoolBytes,
		MemorySpoolBytes: cfg.MemorySpoolBytes, MaxBackoff: cfg.MaxBackoff, Logf: logf,
		New: func(p config.Parsed) (drain.Destination, error) { return newDest(p, hostname, logf) },
	})
	ctl := &control{fw: fw, hostname: hostname, stateDir: stateDir, logf: logf}
	if stateDir != "" {
		added, err := loadAdded(stateDir)
		if err != nil {
			logf("%v; ignoring them", err)
		}
		ctl.added = added
		drains = append(drains, added...)
	}
	for _, d := range drains {
		if _, err := fw.Add(d); err != nil {
			logf("%v", err)
		}
	}
	if len(drains) == 0 {
		logf("no drains yet: add one with `logforward drains add URL`")
	}
	if cfg.Control != "" {
		stopCtl, err := serveControl(ctx, cfg.Control, ctl.handler())
		if err != nil {
			return err
		}
		defer stopCtl()
	}
	if cfg.ReportInterval > 0 {
		go report(ctx, fw, cfg.ReportInterval, logf)
	}
	<-ctx.Done()
	fw.Wait()
	for _, st := range fw.List() {
		logf("stopping: %s", summary(st))
	}
	return nil
}

// oneLine writes the control bytes (C0 and DEL) of a log or status line
// as \xHH: what receivers answer (error reasons, JetStream and OTLP
// messages) is quoted in them, and a newline there would start a line
// of its own in memlogd, passing for logforward's, or an escape sequence
// would reach a terminal.
func oneLine(s string) string {
	i := 0
	for i < len(s) && s[i] >= ' ' && s[i] != 0x7f {
		i++
	}
	if i == len(s) {
		return s
	}
	b := []byte(s[:i])
	for ; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			b = append(b, '\\', 'x', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func summary(st forward.Status) string {
	s := fmt.Sprintf("drain %s %s: %s, sent %d, acknowledged %d (up to seq %d), spooled %d entries (%d bytes), dropped %d, gaps %d, lag %d",
		st.ID, st.URL, st.State, st.Sent, st.Acked, st.AckedSeq, st.SpooledEntries, st.SpooledBytes, st.Dropped, st.Gaps, st.Lag)
	if d := st.Delivery; d != nil {
		s += fmt.Sprintf(", batches %d, retries %d, rejected %d", d.Batches, d.Retries, d.Rejected)
	}
	if st.LastError != "" && st.State != "connected" {
		s += ", last error: " + st.LastError
	}
	return s
}

func report(ctx context.Context, fw *forward.Forwarder, every time.Duration, logf func(string, ...any)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, st := range fw.List() {
				logf("%s", summary(st))
			}
		}
	}
}

// writable creates dir if needed and checks a file can be made in it.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// waitMount waits until dir is on a mount other than /.
func waitMount(ctx context.Context, dir string, timeout time.Duration, logf func(string, ...any)) error {
	deadline := time.Now().Add(timeout)
	said := false
	for {
		point, err := mountPoint(dir)
		if err != nil {
			return err
		}
		if point != "/" {
			if said {
				logf("%s is now on %s", dir, point)
			}
			return nil
		}
		if !said {
			logf("-wait-mount: %s is not on a mounted disk yet; waiting up to %v", dir, timeout)
			said = true
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("-wait-mount: %s is still on the root file system after %v", dir, timeout)
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func mountPoint(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return "", fmt.Errorf("reading the mount table: %w", err)
	}
	best := "/"
	for _, m := range mounts {
		mp := m.Mountpoint
		if (mp == abs || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best, nil
}

// runClient runs `drains list|add|rm` and `status` against the control
// socket.
func runClient(control string, args []string, stdout io.Writer) error {
	c := newClient(control)
	if args[0] == "status" {
		var st StatusReply
		if err := c.do("GET", "/v1/status", nil, &st); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "hostname %s, %d drains\n", st.Hostname, len(st.Drains))
		for _, d := range st.Drains {
			fmt.Fprintln(stdout, oneLine(summary(d)))
		}
		return nil
	}
	if len(args) < 2 {
		return errors.New("usage: logforward [-control PATH] drains list | drains add URL [-source GLOB] [-exclude GLOB] [-severity S] [-id ID] | drains rm ID | status")
	}
	switch args[1] {
	case "list", "ls":
		var ds []forward.Status
		if err := c.do("GET", "/v1/drains", nil, &ds); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tURL\tSTATE\tSENT\tACKED\tSPOOLED\tDROPPED\tLAG")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", d.ID, d.URL, d.State, d.Sent, d.Acked, d.SpooledEntries, d.Dropped, d.Lag)
		}
		return tw.Flush()
	case "add":
		fs := flag.NewFlagSet("drains add", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var d config.Drain
		fs.Var((*multi)(&d.Sources), "source", "source glob (repeatable)")
		fs.Var((*multi)(&d.Exclude), "exclude", "source glob to skip (repeatable)")
		fs.StringVar(&d.Severity, "severity", "", "minimum severity")
		fs.StringVar(&d.ID, "id", "", "drain id")
		if len(args) < 3 {
			return errors.New("drains add: give a URL")
		}
		d.URL = args[2]
		if err := fs.Parse(args[3:]); err != nil {
			return fmt.Errorf("drains add: %w", err)
		}
		var st forward.Status
		if err := c.do("POST", "/v1/drains", d, &st); err != nil {
			return err
		}
		fmt.Fprintln(stdout, st.ID)
		return nil
	case "rm", "remove":
		if len(args) != 3 {
			return errors.New("drains rm: give one drain ID")
		}
		return c.do("DELETE", "/v1/drains/"+args[2], nil, nil)
	}
	return fmt.Errorf("drains %s: want list, add or rm", args[1])
}
