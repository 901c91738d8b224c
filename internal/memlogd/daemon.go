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
	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/query"
	"github.com/lklog/lklog/internal/ring"
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
	// paths to remove at exit
	paths []string
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
	if d.cfg.FDLog >= 0 {
		d.logConn, err = inheritedDatagram(d.cfg.FDLog, "log socket")
	} else {
		d.logConn, err = listenDatagram(d.cfg.SocketLog, d.cfg.SocketMode)
	}
	if err != nil {
		return err
	}
	d.paths = append(d.paths, socketPath(d.logConn.LocalAddr()))
	switch {
	case d.cfg.FDSyslog >= 0:
		d.syslogConn, err = inheritedDatagram(d.cfg.FDSyslog, "syslog socket")
	case d.cfg.SocketSyslog != "":
		d.syslogConn, err = listenDatagram(d.cfg.SocketSyslog, d.cfg.SyslogMode)
	}
	if err != nil {
		return err
	}
	if d.syslogConn != nil {
		d.paths = append(d.paths, socketPath(d.syslogConn.LocalAddr()))
	}
	// The query socket last: once it answers, everything is bound.
	if d.cfg.FDQuery >= 0 {
		d.queryLn, err = inheritedListener(d.cfg.FDQuery, "query socket")
	} else {
		d.queryLn, err = listenStream(d.cfg.SocketQuery, d.cfg.SocketMode)
	}
	if err != nil {
		return err
	}
	d.paths = append(d.paths, socketPath(d.queryLn.Addr()))
	return nil
}

// Close closes the sockets and removes the socket files this memlogd (or
// the -daemonize parent that started it) created.
func (d *Daemon) Close() error {
	if d.logConn != nil {
		d.logConn.Close()
	}
	if d.queryLn != nil {
		d.queryLn.Close()
	}
	if d.syslogConn != nil {
		d.syslogConn.Close()
	}
	var errs []error
	for _, p := range d.paths {
		if p == "" {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.paths = nil
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
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- err
				cancel()
			}
		}()
	}
	if d.cfg.Console && d.stdout != nil {
		run(d.console)
	}
	d.logf(ring.SevInfo, "memlogd started: instance %s, ring of %d entries / %d bytes", d.instance, d.cfg.MaxLines, d.cfg.MaxBytes)
	qs := &query.Server{
		Ring: d.ring, Instance: d.instance, Boot: d.boot, Kmsg: d.cfg.Kmsg,
		MaxReaders: d.cfg.MaxReaders, RequestTimeout: d.cfg.RequestTimeout,
		Logf: d.logf, Now: now,
	}
	run(func(ctx context.Context) error { return qs.Serve(ctx, d.queryLn) })
	run(d.receiveStreams)
	if d.syslogConn != nil {
		srv, err := syslogd.New(d.syslogConn, syslogd.Config{Path: d.syslogConn.LocalAddr().String(), MaxMsgLen: d.cfg.MaxLineLen})
		if err != nil {
			cancel()
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
	// Stop the sockets' readers, then the console last so it can echo
	// what came in until now.
	d.logConn.Close()
	if d.syslogConn != nil {
		d.syslogConn.Close()
	}
	d.ring.Close()
	wg.Wait()
	close(errc)
	return <-errc
}

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

// console echoes the ring to stdout as LinuxKit's memlogd does, through a
// cursor of its own (a plain reader, not a paced follower, so writers
// never wait for it): a slow console skips entries, counts and says so.
func (d *Daemon) console(ctx context.Context) error {
	var b ring.Batch
	var out []byte
	var skipped uint64
	cursor := uint64(1)
	for {
		d.ring.Read(cursor, &b, 512, 32<<10)
		out = out[:0]
		if b.Lost > 0 {
			skipped += b.Lost
			out = logproto.AppendText(out, time.Now(), []byte(Source),
				fmt.Appendf(nil, "console too slow: %d entries not echoed (%d in all)", b.Lost, skipped))
		}
		for i := range b.Entries {
			e := &b.Entries[i]
			out = logproto.AppendText(out, time.Unix(0, e.Time), e.Source, e.Msg)
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
