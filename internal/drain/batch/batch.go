// Package batch is the delivery core shared by logforward's request-based
// destinations (HTTP APIs, Redis, NATS JetStream): it groups messages into
// batches by count, bytes and time, delivers up to Parallel batches at a
// time through a Sender, retries a failed batch (or only its failed items)
// with exponential backoff that honours the receiver's Retry-After, and
// acknowledges batches to logforward's core in order. Items the receiver
// refuses for good are logged and counted, then acknowledged: never sent
// again forever, never dropped silently.
package batch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lklog/lklog/internal/drain"
)

// Result is the outcome of one delivery.
type Result struct {
	// Err: nothing (or not all) was taken and the whole delivery may be
	// tried again (network error, 429, 5xx).
	Err error
	// RetryAfter is the wait the receiver asked for (0: none).
	RetryAfter time.Duration
	// Refused marks Err as a refusal an operator must fix (bad
	// credentials, wrong path): retried at the slow pace.
	Refused bool
	// Retry lists the indexes of items that failed and may be tried
	// again (the others were taken or rejected).
	Retry []int
	// Rejected counts items the receiver refused for good; Reason says
	// why.
	Rejected int
	Reason   string
}

// Sender delivers batches. Each worker has its own; its methods are
// called from that worker only.
type Sender interface {
	Deliver(ctx context.Context, msgs []drain.Message) Result
	Close() error
}

// Options configure a Dest.
type Options struct {
	// Name prefixes log lines ("drain ID").
	Name      string
	MaxCount  int           // entries per batch (default 1000)
	MaxBytes  int           // approximate bytes per batch (default 1 MiB)
	Linger    time.Duration // a partial batch is sent after this (default 500 ms)
	Parallel  int           // batches in flight (default 2)
	MinWait   time.Duration // first retry wait (default 200 ms)
	MaxWait   time.Duration // longest retry wait (default 30 s)
	SlowWait  time.Duration // wait after a refusal (default 1 min)
	NewSender func() Sender
	Logf      func(format string, args ...any)
}

// Dest is a batching destination.
type Dest struct {
	o  Options
	mu sync.Mutex
	r  drain.Report
	// lastLogged is the last error text logged (repeats are not).
	lastLogged string
}

// New returns a Dest.
func New(o Options) *Dest {
	if o.MaxCount <= 0 {
		o.MaxCount = 1000
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.Linger <= 0 {
		o.Linger = 500 * time.Millisecond
	}
	if o.Parallel <= 0 {
		o.Parallel = 2
	}
	if o.MinWait <= 0 {
		o.MinWait = 200 * time.Millisecond
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	if o.SlowWait <= 0 {
		o.SlowWait = time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return &Dest{o: o}
}

// Window implements drain.Destination: the batches in flight and the one
// being filled.
func (d *Dest) Window() int { return d.o.MaxCount * (d.o.Parallel + 1) }

// Report implements drain.Reporter.
func (d *Dest) Report() drain.Report {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r
}

// Connect implements drain.Destination. Senders connect lazily, so this
// does not fail. The connection's work outlives ctx until Close: a drain
// that stops takes the answers to the batches in flight (within its
// grace), so that a restart does not send again what the receiver took.
func (d *Dest) Connect(ctx context.Context) (drain.Conn, error) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &conn{d: d, ctx: cctx, cancel: cancel, queue: make(chan *job, d.o.Parallel+2), notify: make(chan struct{}, 1)}
	for range d.o.Parallel {
		c.wg.Add(1)
		go c.work()
	}
	return c, nil
}

type job struct {
	msgs []drain.Message
	done bool
}

type conn struct {
	d      *Dest
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  chan *job
	notify chan struct{}

	// Owned by the core's goroutine.
	open      []drain.Message
	openBytes int
	openSince time.Time
	// free holds the message arrays of acknowledged batches, cleared,
	// for the next batches (so batching allocates nothing per batch).
	free [][]drain.Message

	mu    sync.Mutex
	jobs  []*job // sealed, in order, not yet acknowledged
	acked uint64
}

func size(m *drain.Message) int {
	return len(m.Rec.Msg) + len(m.Rec.Source) + len(m.Rec.SD) + 160
}

// Send implements drain.Conn.
func (c *conn) Send(msgs []drain.Message) error {
	for i := range msgs {
		if len(c.open) == 0 {
			c.openSince = time.Now()
			if cap(c.open) == 0 {
				if n := len(c.free); n > 0 {
					c.open, c.free = c.free[n-1], c.free[:n-1]
				} else {
					c.open = make([]drain.Message, 0, min(c.d.o.MaxCount, 4096))
				}
			}
		}
		c.open = append(c.open, msgs[i])
		c.openBytes += size(&msgs[i])
		if len(c.open) >= c.d.o.MaxCount || c.openBytes >= c.d.o.MaxBytes {
			c.seal()
		}
	}
	return c.ctx.Err()
}

// seal queues the open batch. The core's window bounds the batches, so
// the queue has room.
func (c *conn) seal() {
	if len(c.open) == 0 {
		return
	}
	j := &job{msgs: c.open}
	c.open, c.openBytes = nil, 0
	c.mu.Lock()
	c.jobs = append(c.jobs, j)
	c.mu.Unlock()
	select {
	case c.queue <- j:
	case <-c.ctx.Done():
	}
}

// Acked implements drain.Conn.
func (c *conn) Acked(ctx context.Context, wait time.Duration) (uint64, error) {
	deadline := time.Now().Add(wait)
	c.mu.Lock()
	start := c.acked
	c.mu.Unlock()
	for {
		if len(c.open) > 0 {
			c.mu.Lock()
			pending := len(c.jobs)
			c.mu.Unlock()
			// Seal when it is old enough, or sooner when nothing
			// is in flight and the core has nothing more just now.
			age := time.Since(c.openSince)
			if age >= c.d.o.Linger || (wait > 0 && pending == 0 && age >= c.d.o.Linger/10) {
				c.seal()
			}
		}
		c.mu.Lock()
		n := 0
		for n < len(c.jobs) && c.jobs[n].done {
			// Its worker is done with it: the array can be reused.
			m := c.jobs[n].msgs
			c.acked += uint64(len(m))
			if len(c.free) < c.d.o.Parallel+1 {
				clear(m)
				c.free = append(c.free, m[:0])
			}
			c.jobs[n].msgs = nil
			n++
		}
		if n > 0 {
			c.jobs = append(c.jobs[:0], c.jobs[n:]...)
			clear(c.jobs[len(c.jobs) : len(c.jobs)+n])
		}
		acked, empty := c.acked, len(c.jobs) == 0 && len(c.open) == 0
		c.mu.Unlock()
		left := time.Until(deadline)
		if acked > start || empty || left <= 0 {
			return acked, nil
		}
		if len(c.open) > 0 {
			left = min(left, max(c.d.o.Linger/10, time.Millisecond))
		}
		t := time.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return acked, ctx.Err()
		case <-c.ctx.Done():
			t.Stop()
			return acked, c.ctx.Err()
		case <-c.notify:
		case <-t.C:
		}
		t.Stop()
	}
}

// Close implements drain.Conn: batches in flight are abandoned (the core
// sends them again).
func (c *conn) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

func (c *conn) work() {
	defer c.wg.Done()
	var s Sender
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	for {
		var j *job
		select {
		case <-c.ctx.Done():
			return
		case j = <-c.queue:
		}
		if s == nil {
			s = c.d.o.NewSender()
		}
		if !c.deliver(s, j) {
			return
		}
		c.mu.Lock()
		j.done = true
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
}

// deliver delivers j until it is taken (true) or the connection ends.
func (c *conn) deliver(s Sender, j *job) bool {
	d := c.d
	msgs := j.msgs
	wait := d.o.MinWait
	retried := false
	for {
		r := s.Deliver(c.ctx, msgs)
		if c.ctx.Err() != nil {
			return false
		}
		if r.Rejected > 0 {
			d.mu.Lock()
			d.r.Rejected += uint64(r.Rejected)
			d.mu.Unlock()
			d.o.Logf("%s: the receiver rejected %d of %d entries for good (not sent again): %s", d.o.Name, r.Rejected, len(msgs), r.Reason)
		}
		if r.Err == nil && len(r.Retry) == 0 {
			d.mu.Lock()
			d.r.Batches++
			if retried && d.r.Retrying {
				d.r.Retrying = false
				d.lastLogged = ""
				d.mu.Unlock()
				d.o.Logf("%s: delivering again", d.o.Name)
			} else {
				d.mu.Unlock()
			}
			return true
		}
		var why string
		if r.Err == nil {
			why = fmt.Sprintf("%d of %d entries failed: %s", len(r.Retry), len(msgs), r.Reason)
			sub := make([]drain.Message, len(r.Retry))
			for i, k := range r.Retry {
				sub[i] = msgs[k]
			}
			msgs = sub
		} else {
			why = r.Err.Error()
		}
		w := wait
		if r.Refused {
			w = max(w, d.o.SlowWait)
		}
		if r.RetryAfter > 0 {
			w = max(r.RetryAfter, d.o.MinWait)
		} else {
			w = w/2 + rand.N(w/2+1) // jitter
		}
		d.mu.Lock()
		d.r.Retries++
		d.r.Retrying = true
		d.r.LastError = why
		logIt := why != d.lastLogged
		d.lastLogged = why
		d.mu.Unlock()
		if logIt {
			d.o.Logf("%s: %s; retrying %d entries in %v (then with backoff, not logged again until it changes)", d.o.Name, why, len(msgs), w.Round(time.Millisecond))
		}
		retried = true
		t := time.NewTimer(w)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(wait*2, d.o.MaxWait)
	}
}
