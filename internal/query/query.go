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
	"sync/atomic"
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
	// StallTimeout is how long a client may read nothing while a reply
	// waits for it before its reader slot may be taken: it is
	// disconnected when a new client finds every slot taken
	// (0: DefaultStallTimeout).
	StallTimeout time.Duration
	// StallLimit is how long such a client is kept when no one needs its
	// slot (0: DefaultStallLimit): a pager left open for a while keeps
	// its place.
	StallLimit time.Duration
	// Logf records memlogd's own messages (nil: dropped).
	Logf func(severity uint8, format string, args ...any)
	// Now returns the current time in Unix nanoseconds (for the entries
	// that report gaps to legacy readers).
	Now func() int64

	once    sync.Once
	sem     chan struct{}
	stalled atomic.Uint64 // readers given up on
	// idle holds the readers stalled for StallTimeout, each with the
	// channel that tells it to give up, oldest stall first.
	idleMu sync.Mutex
	idle   []idleReader
}

type idleReader struct {
	r     *reader
	evict chan struct{}
}

// DefaultStallTimeout is StallTimeout's default, DefaultStallLimit
// StallLimit's.
const (
	DefaultStallTimeout = time.Minute
	DefaultStallLimit   = 24 * time.Hour
)

// Idle returns how many readers are stalled long enough for their slot
// to be taken.
func (s *Server) Idle() int {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	return len(s.idle)
}

// markIdle registers r as stalled; the returned channel is closed when
// its slot is wanted.
func (s *Server) markIdle(r *reader) chan struct{} {
	ch := make(chan struct{})
	s.idleMu.Lock()
	s.idle = append(s.idle, idleReader{r, ch})
	s.idleMu.Unlock()
	return ch
}

// unmarkIdle removes r (it read again or ended).
func (s *Server) unmarkIdle(r *reader) {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	for i, ir := range s.idle {
		if ir.r == r {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			return
		}
	}
}

// evictIdle tells the reader stalled longest to give up its slot; it
// reports whether there was one.
func (s *Server) evictIdle() bool {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if len(s.idle) == 0 {
		return false
	}
	close(s.idle[0].evict)
	s.idle = s.idle[1:]
	return true
}

// evictWait bounds the wait of a new client for the slot of an evicted
// reader.
const evictWait = 2 * time.Second

// errStalled ends a reader whose client read nothing for StallTimeout.
var errStalled = errors.New("client read nothing")

// Stalled returns how many readers were given up on because their client
// stopped reading.
func (s *Server) Stalled() uint64 { return s.stalled.Load() }

// Per-reader bounds: what one connection may hold in memory at a time
// (the batch copied out of the ring, then its encoding).
const (
	batchEntries = 1024
	batchBytes   = 64 << 10
)

// SendBuffer is the send buffer asked for each query connection
// (SO_SNDBUF; Linux doubles it for its bookkeeping). The default, about
// 208 KiB, holds about 1,400 legacy lines: with a larger one, a fast
// follower and the goroutine serving it wake each other several times
// less often. It bounds the kernel memory a stalled reader holds.
const SendBuffer = 512 << 10

// setSendBuffer raises the connection's send buffer to SendBuffer:
// beyond net.core.wmem_max (212992 bytes by default before Linux 6.x
// raised it) when memlogd may (CAP_NET_ADMIN, as in LinuxKit's init; so
// does journald), else as far as wmem_max allows. A larger buffer set by
// the administrator is kept. Failing costs only wake-ups.
func setSendBuffer(rc syscall.RawConn) {
	rc.Control(func(fd uintptr) {
		if cur, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && cur >= 2*SendBuffer {
			return
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, SendBuffer) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, SendBuffer)
		}
	})
}

func (s *Server) init() {
	s.once.Do(func() {
		if s.MaxReaders < 1 {
			s.MaxReaders = 1
		}
		s.sem = make(chan struct{}, s.MaxReaders)
		if s.RequestTimeout <= 0 {
			s.RequestTimeout = 10 * time.Second
		}
		if s.StallTimeout <= 0 {
			s.StallTimeout = DefaultStallTimeout
		}
		if s.StallLimit <= 0 {
			s.StallLimit = DefaultStallLimit
		}
		s.StallLimit = max(s.StallLimit, s.StallTimeout)
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

	if !s.acquire(ctx) {
		s.refuse(c, logproto.ErrBusy, fmt.Sprintf("too many readers (limit %d); try again later", s.MaxReaders))
		return
	}
	defer func() { <-s.sem }()

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
			c.Write(logproto.AppendError(nil, logproto.ErrRequest, err.Error()))
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
	if r.rc, err = c.SyscallConn(); err != nil {
		return
	}
	setSendBuffer(r.rc)
	err = r.run(ctx)
	if errors.Is(err, errStalled) {
		n := s.stalled.Add(1)
		s.Logf(ring.SevWarning, "query: gave up on a reader whose client read nothing for %v or more while another client needed its slot, or for %v (%d bytes waiting for it): connection closed, reader slot freed (%d readers given up on so far)", s.StallTimeout, s.StallLimit, r.unsent, n)
		return
	}
	// A client that hangs up is the normal end of a follow: not worth an
	// entry of its own.
	if err != nil && ctx.Err() == nil &&
		!errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, net.ErrClosed) {
		s.Logf(ring.SevNotice, "query: reader stopped: %v", err)
	}
}

// acquire takes a reader slot. When every slot is taken, the reader
// stalled longest (for StallTimeout at least) is told to give up its
// slot, which is then waited for.
func (s *Server) acquire(ctx context.Context) bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
	}
	if !s.evictIdle() {
		return false
	}
	t := time.NewTimer(evictWait)
	defer t.Stop()
	select {
	case s.sem <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
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
func (s *Server) refuse(c *net.UnixConn, code, why string) {
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
	c.Write(logproto.AppendError(nil, code, why))
}

type reader struct {
	s   *Server
	c   *net.UnixConn
	rc  syscall.RawConn // c's descriptor
	req logproto.Request
	enc logproto.Encoder
	out []byte
	f   *ring.Follower
	// unsent is what a stalled client left unread (for the report).
	unsent int
	pid    int // the client's, when known
}

// writeNow writes what the socket takes without waiting (the descriptor
// is non-blocking, as Go keeps it) and returns how much that was.
func (r *reader) writeNow(b []byte) (int, error) {
	n := 0
	var werr error
	err := r.rc.Control(func(fd uintptr) {
		for n < len(b) {
			m, err := unix.Write(int(fd), b[n:])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				if err != unix.EAGAIN {
					werr = err
				}
				return
			}
			if m <= 0 {
				return
			}
			n += m
		}
	})
	if err != nil {
		return n, err
	}
	return n, werr
}

// unread returns the bytes written to the client that it has not read yet
// (-1 if unknown).
func (r *reader) unread() int {
	n := -1
	r.rc.Control(func(fd uintptr) {
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
				return r.fail(logproto.ErrCursor, fmt.Sprintf("cursor %d is beyond the newest entry %d of this instance", r.req.After.Seq, next-1))
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
		if stop != 0 {
			clampBatch(&b, cursor, stop)
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

// clampBatch cuts a dump's batch read from cursor at stop, the end of the
// ring when the request arrived. The batch may go beyond it: when the
// entries at the cursor were evicted the read starts at the oldest entry
// held, which writers may have pushed past stop meanwhile.
func clampBatch(b *ring.Batch, cursor, stop uint64) {
	if cursor+b.Lost >= stop {
		b.Lost = stop - min(cursor, stop)
		b.Entries = b.Entries[:0]
		b.Next = stop
		return
	}
	n := len(b.Entries)
	for n > 0 && b.Entries[n-1].Seq >= stop {
		n--
	}
	if n < len(b.Entries) {
		b.Entries = b.Entries[:n]
		b.Next = stop
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

func (r *reader) fail(code, msg string) error {
	r.out = logproto.AppendError(r.out, code, msg)
	r.flush()
	return errors.New(msg)
}

// flush writes the pending reply. While the client drains it slowly, the
// ring hears every progressTick that this reader is alive, so writers
// keep waiting for it instead of taking it for stalled. A client that
// reads nothing for StallTimeout is given up on (errStalled), so that it
// cannot hold its reader slot forever.
func (r *reader) flush() error {
	out := r.out
	defer func() { r.out = r.out[:0] }()
	if len(out) == 0 {
		return nil
	}
	// A reply that fits in the socket's buffer is written at once: no
	// deadline to arm, and no progress to report (reading the entries
	// from the ring just did).
	n, err := r.writeNow(out)
	if err != nil {
		return fmt.Errorf("writing to reader: %w", err)
	}
	out = out[n:]
	if len(out) == 0 {
		return nil
	}
	if n > 0 && r.f != nil {
		r.s.Ring.Touch(r.f)
	}
	progress := time.Now()
	var evict chan struct{}
	defer func() {
		if evict != nil {
			r.s.unmarkIdle(r)
		}
	}()
	for len(out) > 0 {
		r.c.SetWriteDeadline(time.Now().Add(progressTick))
		n, err := r.c.Write(out)
		out = out[n:]
		if n > 0 {
			progress = time.Now()
			if r.f != nil {
				r.s.Ring.Touch(r.f)
			}
			if evict != nil {
				r.s.unmarkIdle(r)
				evict = nil
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				idle := time.Since(progress)
				if evict == nil && idle >= r.s.StallTimeout {
					evict = r.s.markIdle(r)
				}
				evicted := false
				if evict != nil {
					select {
					case <-evict:
						evicted = true
					default:
					}
				}
				if evicted || idle >= r.s.StallLimit {
					if evicted {
						evict = nil // no longer listed
					}
					r.unsent = len(out)
					return errStalled
				}
				continue
			}
			return fmt.Errorf("writing to reader: %w", err)
		}
	}
	return nil
}
