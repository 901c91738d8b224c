package memlogd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lklog/lklog/internal/fdpass"
	"github.com/lklog/lklog/internal/ingest"
	"github.com/lklog/lklog/internal/query"
	"github.com/lklog/lklog/internal/ring"
	"github.com/lklog/lklog/internal/sockfile"
	"github.com/lklog/lklog/internal/syslogd"
)

// Facilities memlogd gives its entries (RFC 5424 numbering).
const (
	facilityDaemon = 3
	facilitySyslog = 5
)

// Source is the source name of memlogd's own entries.
const Source = "memlogd"

// Daemon is one running memlogd.
type Daemon struct {
	cfg      Config
	ring     *ring.Ring
	instance string
	boot     string
	stdout   io.Writer

	logConn    *net.UnixConn
	queryLn    *net.UnixListener
	syslogConn *net.UnixConn
	// socket files to remove at exit
	files []*sockfile.File
}

// New binds (or adopts) the sockets and makes the ring. Close releases
// what New took if Run is never called.
func New(cfg Config, stdout io.Writer) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := ring.New(ring.Config{MaxEntries: cfg.MaxLines, MaxBytes: cfg.MaxBytes, PaceWait: cfg.PaceWait})
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, ring: r, stdout: stdout, instance: newInstanceID(), boot: bootID()}
	if err := d.bind(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) bind() error {
	var err error
	var f *sockfile.File
	if d.cfg.FDLog >= 0 {
		if d.logConn, err = inheritedDatagram(d.cfg.FDLog, "log socket"); err == nil {
			f = adopt(d.logConn.LocalAddr())
		}
	} else {
		d.logConn, f, err = listenDatagram(d.cfg.SocketLog, d.cfg.SocketMode)
	}
	if err != nil {
		return err
	}
	d.files = append(d.files, f)
	switch {
	case d.cfg.FDSyslog >= 0:
		if d.syslogConn, err = inheritedDatagram(d.cfg.FDSyslog, "syslog socket"); err == nil {
			f = adopt(d.syslogConn.LocalAddr())
		}
	case d.cfg.SocketSyslog != "":
		d.syslogConn, f, err = listenDatagram(d.cfg.SocketSyslog, d.cfg.SyslogMode)
	default:
		f = nil
	}
	if err != nil {
		return err
	}
	d.files = append(d.files, f)
	// The query socket last: once it answers, everything is bound.
	if d.cfg.FDQuery >= 0 {
		if d.queryLn, err = inheritedListener(d.cfg.FDQuery, "query socket"); err == nil {
			f = adopt(d.queryLn.Addr())
		}
	} else {
		d.queryLn, f, err = listenStream(d.cfg.SocketQuery, d.cfg.SocketMode)
	}
	if err != nil {
		return err
	}
	d.files = append(d.files, f)
	return nil
}

// Close removes the socket files this memlogd (or the -daemonize parent
// that started it) created, if they are still its own (a newer memlogd's
// sockets at the same paths are left alone), and closes the sockets.
func (d *Daemon) Close() error {
	err := d.removeFiles()
	if d.logConn != nil {
		d.logConn.Close()
	}
	if d.queryLn != nil {
		d.queryLn.Close()
	}
	if d.syslogConn != nil {
		d.syslogConn.Close()
	}
	return err
}

// removeFiles removes the socket files that are still this memlogd's. It
// runs before the sockets close: an open socket keeps its file's inode
// number, by which the file is told apart, from being reused.
func (d *Daemon) removeFiles() error {
	var errs []error
	for _, f := range d.files {
		if err := f.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	d.files = nil
	return errors.Join(errs...)
}

// Ring returns the daemon's ring.
func (d *Daemon) Ring() *ring.Ring { return d.ring }

// Instance returns the identity readers see in their cursors.
func (d *Daemon) Instance() string { return d.instance }

func now() int64 { return time.Now().UnixNano() }

// logf records one of memlogd's own messages in the ring.
func (d *Daemon) logf(severity uint8, format string, args ...any) {
	d.ring.Append(ring.Entry{
		Time: now(), Source: []byte(Source), Msg: fmt.Appendf(nil, format, args...),
		Facility: facilitySyslog, Severity: severity,
	})
}

// Run serves until ctx is done, then closes everything and returns nil.
// It returns an error only if a socket fails for good.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The sockets are served until their files are removed (sctx), so
	// that they stay open meanwhile (see removeFiles).
	sctx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(sctx); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	// The console is not waited for like the others: a write to a stdout
	// nobody reads (a pipe, a terminal in flow control) blocks for good.
	consoleDone := make(chan struct{})
	if d.cfg.Console && d.stdout != nil {
		go func() {
			defer close(consoleDone)
			d.console(ctx)
		}()
	} else {
		close(consoleDone)
	}
	d.logf(ring.SevInfo, "memlogd started: instance %s, ring of %d entries / %d bytes", d.instance, d.cfg.MaxLines, d.cfg.MaxBytes)
	qs := &query.Server{
		Ring: d.ring, Instance: d.instance, Boot: d.boot, Kmsg: d.cfg.Kmsg,
		MaxReaders: d.cfg.MaxReaders, RequestTimeout: d.cfg.RequestTimeout, StallTimeout: d.cfg.StallTimeout, StallLimit: d.cfg.StallLimit,
		Logf: d.logf, Now: now,
	}
	run(func(ctx context.Context) error { return qs.Serve(ctx, d.queryLn) })
	run(d.receiveStreams)
	if d.syslogConn != nil {
		srv, err := syslogd.New(d.syslogConn, syslogd.Config{Path: d.syslogConn.LocalAddr().String(), MaxMsgLen: d.cfg.MaxLineLen})
		if err != nil {
			cancel()
			stopServing()
			wg.Wait()
			return err
		}
		var sink syslogd.Sink = d.ring
		if d.cfg.Kmsg {
			sink = &kmsgGuard{d: d}
		}
		run(func(ctx context.Context) error { return srv.Serve(ctx, sink) })
	}
	if d.cfg.Kmsg {
		run(d.readKmsg)
	}
	<-ctx.Done()
	d.logf(ring.SevInfo, "memlogd stopping")
	if err := d.removeFiles(); err != nil {
		d.logf(ring.SevWarning, "%v", err)
	}
	stopServing()
	// Stop the sockets' readers, then the console last so it can echo
	// what came in until now.
	d.logConn.Close()
	if d.syslogConn != nil {
		d.syslogConn.Close()
	}
	d.ring.Close()
	wg.Wait()
	// The console may echo what came in until now, within a bound.
	t := time.NewTimer(consoleDrain)
	select {
	case <-consoleDone:
	case <-t.C:
	}
	t.Stop()
	close(errc)
	return <-errc
}

// consoleDrain bounds how long a stopping memlogd lets the console echo
// the last entries: a console write may block forever.
const consoleDrain = time.Second

// receiveStreams accepts named descriptors on the log socket and reads a
// stream from each.
func (d *Daemon) receiveStreams(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { d.logConn.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	rcv := fdpass.NewReceiver(d.logConn)
	for {
		m, err := rcv.Receive()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		name := m.Name
		if len(name) > ring.MaxSourceLen {
			name = name[:ring.MaxSourceLen]
		}
		if m.NameTruncated || len(m.Name) > ring.MaxSourceLen {
			d.logf(ring.SevWarning, "log socket: name longer than %d bytes cut to %q", ring.MaxSourceLen, name)
		}
		if m.ControlTruncated {
			d.logf(ring.SevWarning, "log socket: control message for %q truncated: descriptors beyond the first %d were lost", name, len(m.FDs))
		}
		if len(m.FDs) == 0 {
			d.logf(ring.SevWarning, "log socket: datagram for %q carried no file descriptor; ignored", name)
			continue
		}
		for _, fd := range m.FDs {
			f, err := ingest.Open(fd, string(name))
			if err != nil {
				d.logf(ring.SevWarning, "log socket: descriptor for %q refused: %v", name, err)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer f.Close()
				st, err := ingest.Read(ctx, f, name, d.ring, ingest.Config{
					MaxLineLen: d.cfg.MaxLineLen, Facility: facilityDaemon, Severity: ring.SevInfo, Now: now,
				})
				if err != nil && ctx.Err() == nil {
					d.logf(ring.SevWarning, "log stream %q: %v (after %d lines)", name, err, st.Lines)
				}
			}()
		}
	}
}

// What the console copies out of the ring at a time.
const (
	consoleBatch      = 2048
	consoleBatchBytes = 128 << 10
)

// console echoes the ring to stdout as LinuxKit's memlogd does, through a
// cursor of its own: a slow console skips entries, counts and says so.
// Writers never wait for it, nor does a stopping memlogd for longer than
// consoleDrain.
func (d *Daemon) console(ctx context.Context) error {
	var b ring.Batch
	var out []byte
	var skipped uint64
	var text consoleFormat
	cursor := uint64(1)
	for {
		d.ring.Read(cursor, &b, consoleBatch, consoleBatchBytes)
		out = out[:0]
		if b.Lost > 0 {
			skipped += b.Lost
			out = text.append(out, now(), []byte(Source),
				fmt.Appendf(nil, "console too slow: %d entries not echoed (%d in all)", b.Lost, skipped), false)
		}
		for i := range b.Entries {
			e := &b.Entries[i]
			out = text.append(out, e.Time, e.Source, e.Msg, e.Flags&ring.FlagPlain != 0)
		}
		cursor = b.Next
		if len(out) > 0 {
			if _, err := d.stdout.Write(out); err != nil {
				// A console that fails is not a reason to stop logging.
				d.logf(ring.SevErr, "console: %v; echo stopped", err)
				return nil
			}
		}
		if len(b.Entries) == 0 {
			if err := d.ring.Wait(ctx, cursor); err != nil {
				return nil
			}
		}
	}
}

func newInstanceID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
