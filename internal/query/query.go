// Package query serves memlogd's query socket: each connection reads the
// ring through its own cursor and holds only a bounded amount of memory.
// A reader never causes loss for another; writers wait for a follower
// only as the ring's pacing allows (while it reads, and a bounded time
// when it does not).
package query

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

// Server answers requests on the query socket.
type Server struct {
	Ring     *ring.Ring
	Instance string // this memlogd's identity
	Boot     string // the kernel's boot id
	Kmsg     bool   // memlogd reads /dev/kmsg itself
	// MaxReaders bounds concurrent connections; more are refused with an
	// error reply.
	MaxReaders int
	// RequestTimeout bounds how long a client may take to send its
	// request.
	RequestTimeout time.Duration
	// Logf records memlogd's own messages (nil: dropped).
	Logf func(severity uint8, format string, args ...any)
	// Now returns the current time in Unix nanoseconds (for the entries
	// that report gaps to legacy readers).
	Now func() int64

	once sync.Once
	sem  chan struct{}
}

// Per-reader bounds: what one connection may hold in memory at a time.
const (
	batchEntries = 512
	batchBytes   = 32 << 10
)

func (s *Server) init() {
	s.once.Do(func() {
		if s.MaxReaders < 1 {
			s.MaxReaders = 1
		}
		s.sem = make(chan struct{}, s.MaxReaders)
		if s.RequestTimeout <= 0 {
			s.RequestTimeout = 10 * time.Second
		}
		if s.Now == nil {
			s.Now = func() int64 { return time.Now().UnixNano() }
		}
		if s.Logf == nil {
			s.Logf = func(uint8, string, ...any) {}
		}
	})
}

// Serve accepts connections on l until ctx is done, then closes l and
// every connection, waits for their handlers and returns nil.
func (s *Server) Serve(ctx context.Context, l *net.UnixListener) error {
	s.init()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var tempDelay time.Duration
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accepting query connections: %w", err)
			}
			// EMFILE and friends: back off instead of spinning.
			tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
			s.Logf(ring.SevErr, "query socket: accept: %v; retrying in %v", err, tempDelay)
			select {
			case <-time.After(tempDelay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		tempDelay = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeConn(ctx, c)
		}()
	}
}

// ServeConn answers one connection and closes it.
func (s *Server) ServeConn(ctx context.Context, c *net.UnixConn) {
	s.init()
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Closing the connection is what stops a write blocked on a stalled
	// reader.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.refuse(c, fmt.Sprintf("too many readers (limit %d); try again later", s.MaxReaders))
		return
	}

	c.SetReadDeadline(time.Now().Add(s.RequestTimeout))
	br := bufio.NewReaderSize(c, 256)
	req, err := logproto.ReadRequest(br)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return // a silent client: nothing to answer
		}
		if errors.Is(err, logproto.ErrBadRequest) {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write(logproto.AppendError(nil, err.Error()))
		}
		return
	}
	c.SetReadDeadline(time.Time{})
	// A follower may wait long for new entries; notice when its client
	// hangs up meanwhile, so that dead followers do not hold reader slots
	// on a quiet system. (A follower must therefore keep its sending side
	// open; a dump is always completed.) Anything a client sends after
	// its request is ignored.
	if req.Follow() {
		go watchHangup(c, cancel)
	}
	r := reader{s: s, c: c, req: req}
	// A client that hangs up is the normal end of a follow: not worth an
	// entry of its own.
	if err := r.run(ctx); err != nil && ctx.Err() == nil &&
		!errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, net.ErrClosed) {
		s.Logf(ring.SevNotice, "query: reader stopped: %v", err)
	}
}

func watchHangup(c *net.UnixConn, hangup func()) {
	var b [256]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			hangup()
			return
		}
	}
}

// refuse answers a client over the reader limit without waiting long for
// its request, in the format it asked for.
func (s *Server) refuse(c *net.UnixConn, why string) {
	c.SetDeadline(time.Now().Add(time.Second))
	req, err := logproto.ReadRequest(bufio.NewReaderSize(c, 256))
	if err != nil && !errors.Is(err, logproto.ErrBadRequest) {
		return
	}
	if req.Legacy {
		var enc logproto.Encoder
		e := ring.Entry{Time: s.Now(), Source: []byte("memlogd"), Msg: []byte("memlogd: " + why)}
		c.Write(enc.AppendLegacy(nil, &e))
		return
	}
	c.Write(logproto.AppendError(nil, why))
}

type reader struct {
	s   *Server
	c   *net.UnixConn
	req logproto.Request
	enc logproto.Encoder
	out []byte
	f   *ring.Follower
	pid int // the client's, when known
}

// unread returns the bytes written to the client that it has not read yet
// (-1 if unknown).
func (r *reader) unread() int {
	rc, err := r.c.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
			n = v
		}
	})
	return n
}

// progressTick is how often a write to a slow client reports the client's
// progress to the ring (see ring.Touch).
const progressTick = 20 * time.Millisecond

func (r *reader) run(ctx context.Context) error {
	rg := r.s.Ring
	first, next := rg.Bounds()
	cursor := next
	resumed := false
	switch {
	case r.req.After != nil:
		if r.req.After.Instance == r.s.Instance {
			if r.req.After.Seq >= next {
				return r.fail(fmt.Sprintf("cursor %d is beyond the newest entry %d of this instance", r.req.After.Seq, next-1))
			}
			cursor = r.req.After.Seq + 1
			resumed = true
		} else {
			cursor = first
		}
	case r.req.Tail > 0:
		var match func(ring.Meta) bool
		if r.req.Filtered() {
			match = func(m ring.Meta) bool { return r.req.Match(m.Source, m.Severity) }
		}
		cursor = rg.TailCursor(r.req.Tail, match)
	case r.req.Dump():
		cursor = first
	}
	if !r.req.Legacy {
		r.out = logproto.AppendHello(r.out, logproto.Hello{
			Instance: r.s.Instance, Boot: r.s.Boot, First: first, Next: next, Resumed: resumed, Kmsg: r.s.Kmsg,
		})
	}
	// A dump ends at the entries held when the request arrived, however
	// fast writers add more.
	stop := uint64(0)
	if !r.req.Follow() {
		stop = next
	}
	f := rg.FollowClient(cursor, r.unread)
	defer rg.Unfollow(f)
	if p := r.probe(); p != nil {
		rg.SetProbe(f, p)
	}
	r.f = f
	var b ring.Batch
	for {
		limit := batchEntries
		if stop != 0 && stop-cursor < uint64(limit) {
			limit = int(stop - cursor)
		}
		if limit > 0 {
			rg.ReadFollower(f, &b, limit, batchBytes)
		} else {
			b.Entries, b.Lost, b.Next = b.Entries[:0], 0, cursor
		}
		if b.Lost > 0 {
			r.gap(b.Lost, cursor+b.Lost)
			r.logGiveUp(b.Lost)
		}
		for i := range b.Entries {
			e := &b.Entries[i]
			if !r.req.Match(e.Source, e.Severity) {
				continue
			}
			if r.req.Legacy {
				r.out = r.enc.AppendLegacy(r.out, e)
			} else {
				r.out = r.enc.AppendEntry(r.out, e)
			}
		}
		cursor = b.Next
		caughtUp := len(b.Entries) == 0 || (stop != 0 && cursor >= stop)
		if caughtUp && !r.req.Follow() && !r.req.Legacy {
			r.out = logproto.AppendEnd(r.out, cursor)
		}
		if err := r.flush(); err != nil {
			return err
		}
		if !caughtUp {
			continue
		}
		if !r.req.Follow() {
			return nil
		}
		if err := rg.Wait(ctx, cursor); err != nil {
			return err
		}
	}
}

func (r *reader) gap(lost, next uint64) {
	if r.req.Legacy {
		e := ring.Entry{Time: r.s.Now(), Source: []byte("memlogd"), Msg: []byte(logproto.GapMessage(lost))}
		r.out = r.enc.AppendLegacy(r.out, &e)
		return
	}
	r.out = logproto.AppendGap(r.out, lost, next)
}

func (r *reader) fail(msg string) error {
	r.out = logproto.AppendError(r.out, msg)
	r.flush()
	return errors.New(msg)
}

// flush writes the pending reply. While the client drains it slowly, the
// ring hears every progressTick that this reader is alive, so writers
// keep waiting for it instead of taking it for stalled.
func (r *reader) flush() error {
	out := r.out
	defer func() { r.out = r.out[:0] }()
	for len(out) > 0 {
		if r.f != nil {
			r.c.SetWriteDeadline(time.Now().Add(progressTick))
		}
		n, err := r.c.Write(out)
		out = out[n:]
		if n > 0 && r.f != nil {
			r.s.Ring.Touch(r.f)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("writing to reader: %w", err)
		}
	}
	return nil
}
