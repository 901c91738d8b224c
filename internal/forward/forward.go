// Package forward is logforward's core. Each drain has two goroutines and
// a spool between them: a reader that follows memlogd after the drain's
// own cursor and appends every entry to the spool (so memlogd's writers
// never wait for the network), and a sender that takes entries from the
// spool, sends them to the destination and marks them delivered in the
// spool only once the destination has taken them. What was sent but not
// taken when a connection breaks is kept in memory and sent again first on
// the next connection.
package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/forward/config"
	"github.com/lklog/lklog/internal/forward/spool"
	"github.com/lklog/lklog/internal/logclient"
	"github.com/lklog/lklog/internal/logproto"
)

// Defaults.
const (
	DefaultSpoolBytes       = 64 << 20
	DefaultMemorySpoolBytes = 8 << 20
	// OwnSources are never forwarded: logforward's own output would
	// otherwise come back to it.
	OwnSources = "logforward*"
)

// Options configure a Forwarder.
type Options struct {
	Socket string // memlogd's query socket
	// StateDir holds each drain's spool under drains/<id>; empty keeps
	// spools in memory.
	StateDir         string
	Sync             string // spool fsync policy
	SpoolBytes       int64  // default per-drain bound on disk
	MemorySpoolBytes int64  // per-drain bound without a state directory
	MinBackoff       time.Duration
	MaxBackoff       time.Duration
	// PermanentRetry is how long a drain that cannot work (refused
	// certificate) waits before trying again.
	PermanentRetry time.Duration
	// StopGrace is how long a stopping drain waits for the destination
	// to acknowledge what it was sent (default 1 s; negative: not at
	// all). Acknowledgements still on their way when the Forwarder's
	// context ends would otherwise be lost, and a restart would send
	// those messages again.
	StopGrace time.Duration
	// New makes a destination for a parsed drain.
	New func(p config.Parsed) (drain.Destination, error)
	// Logf reports events (never with a password).
	Logf func(format string, args ...any)
}

// Forwarder runs drains.
type Forwarder struct {
	opt    Options
	ctx    context.Context
	mu     sync.Mutex
	drains map[string]*Drain
}

// New returns a Forwarder whose drains run until ctx ends.
func New(ctx context.Context, opt Options) *Forwarder {
	if opt.SpoolBytes <= 0 {
		opt.SpoolBytes = DefaultSpoolBytes
	}
	if opt.MemorySpoolBytes <= 0 {
		opt.MemorySpoolBytes = DefaultMemorySpoolBytes
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = 100 * time.Millisecond
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 30 * time.Second
	}
	if opt.PermanentRetry <= 0 {
		opt.PermanentRetry = 5 * time.Minute
	}
	if opt.StopGrace == 0 {
		opt.StopGrace = time.Second
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	return &Forwarder{opt: opt, ctx: ctx, drains: map[string]*Drain{}}
}

// Status is a drain's state, as `logforward status` shows it.
type Status struct {
	ID       string   `json:"id"`
	URL      string   `json:"url"` // redacted
	Sources  []string `json:"sources,omitempty"`
	Exclude  []string `json:"exclude,omitempty"`
	Severity string   `json:"severity,omitempty"`
	State    string   `json:"state"` // connecting, connected, retrying, refused
	// Sent counts messages written (resends included), Acked those the
	// destination took.
	Sent  uint64 `json:"sent"`
	Acked uint64 `json:"acked"`
	// SpooledEntries/Bytes wait in the spool (in flight included).
	SpooledEntries uint64 `json:"spooled_entries"`
	SpooledBytes   int64  `json:"spooled_bytes"`
	MemorySpool    bool   `json:"memory_spool,omitempty"`
	// Dropped entries: spool full (told to the receiver).
	Dropped uint64 `json:"dropped"`
	// Gaps: entries memlogd lost before logforward read them (told to
	// the receiver too).
	Gaps uint64 `json:"gaps"`
	// Lag is how many entries memlogd has that the destination has not
	// taken yet (as far as logforward has read).
	Lag uint64 `json:"lag"`
	// AckedSeq is memlogd's sequence number of the last entry the
	// destination took.
	AckedSeq       uint64    `json:"acked_seq"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	Reading        bool      `json:"reading_memlogd"`
	// Delivery: batching destinations' own counts.
	Delivery *drain.Report `json:"delivery,omitempty"`
}

// Drain is one running drain.
type Drain struct {
	f      *Forwarder
	p      config.Parsed
	dest   drain.Destination
	sp     *spool.Spool
	dir    string
	cancel context.CancelFunc
	done   chan struct{}
	// removing is set when the drain stops for good: its spool goes, so
	// waiting for acknowledgements in flight would gain nothing.
	removing atomic.Bool

	mu     sync.Mutex
	st     Status
	cursor logproto.Cursor // last entry appended to the spool
	acked  uint64          // seq of the last entry acknowledged

	inflightMsgs int // messages the sender holds (its goroutine only)
}

// Add starts a drain. Its ID must not be in use.
func (f *Forwarder) Add(d config.Drain) (Status, error) {
	p, err := d.Parse()
	if err != nil {
		return Status{}, err
	}
	dest, err := f.opt.New(p)
	if err != nil {
		return Status{}, fmt.Errorf("drain %s (%s): %w", p.ID, config.Redact(p.URL), err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.drains[p.ID]; ok {
		return Status{}, fmt.Errorf("drain %s exists already", p.ID)
	}
	dr := &Drain{f: f, p: p, dest: dest, done: make(chan struct{})}
	// The sender decodes what it reads at once: Read may reuse its buffer.
	opt := spool.Options{MaxBytes: f.opt.MemorySpoolBytes, Sync: f.opt.Sync, Header: dr.header, Count: count, ReuseReads: true}
	if f.opt.StateDir != "" {
		dr.dir = filepath.Join(f.opt.StateDir, "drains", p.ID)
		opt.Dir = dr.dir
		opt.MaxBytes = f.opt.SpoolBytes
		if p.SpoolBytes > 0 {
			opt.MaxBytes = p.SpoolBytes
		}
	} else if p.SpoolBytes > 0 {
		opt.MaxBytes = min(p.SpoolBytes, f.opt.MemorySpoolBytes)
	}
	sp, err := spool.Open(opt)
	if err != nil {
		return Status{}, fmt.Errorf("drain %s: %w", p.ID, err)
	}
	dr.sp = sp
	if err := dr.recover(); err != nil {
		sp.Close()
		return Status{}, fmt.Errorf("drain %s: %w", p.ID, err)
	}
	dr.st = Status{ID: p.ID, URL: config.Redact(p.URL), Sources: p.Sources, Exclude: p.Exclude, Severity: p.Drain.Severity, State: "connecting"}
	ctx, cancel := context.WithCancel(f.ctx)
	dr.cancel = cancel
	f.drains[p.ID] = dr
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); dr.read(ctx) }()
	go func() { defer wg.Done(); dr.send(ctx) }()
	go func() { wg.Wait(); sp.Close(); close(dr.done) }()
	where := "spool in " + dr.dir
	if dr.dir == "" {
		where = fmt.Sprintf("spool in memory (%d bytes; no state directory: lost at exit)", opt.MaxBytes)
	}
	f.opt.Logf("drain %s: %s, %s", p.ID, dr.st.URL, where)
	return dr.status(), nil
}

// Remove stops a drain and deletes its spool.
func (f *Forwarder) Remove(id string) error {
	f.mu.Lock()
	dr, ok := f.drains[id]
	delete(f.drains, id)
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("no drain %q", id)
	}
	dr.removing.Store(true)
	dr.cancel()
	<-dr.done
	if dr.dir != "" {
		if err := os.RemoveAll(dr.dir); err != nil {
			return fmt.Errorf("removing the spool of drain %s: %w", id, err)
		}
	}
	f.opt.Logf("drain %s removed", id)
	return nil
}

// List returns every drain's status, by ID.
func (f *Forwarder) List() []Status {
	f.mu.Lock()
	var out []Status
	for _, dr := range f.drains {
		out = append(out, dr.status())
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Wait stops nothing: it waits until every drain has stopped (after the
// Forwarder's context ended).
func (f *Forwarder) Wait() {
	f.mu.Lock()
	var ds []*Drain
	for _, dr := range f.drains {
		ds = append(ds, dr)
	}
	f.mu.Unlock()
	for _, dr := range ds {
		<-dr.done
	}
}

func (dr *Drain) status() Status {
	dr.mu.Lock()
	st := dr.st
	if dr.cursor.Seq > dr.acked {
		st.Lag = dr.cursor.Seq - dr.acked
	}
	st.AckedSeq = dr.acked
	dr.mu.Unlock()
	if r, ok := dr.dest.(drain.Reporter); ok {
		rep := r.Report()
		st.Delivery = &rep
		if rep.Retrying && st.State == "connected" {
			st.State, st.LastError = "retrying", rep.LastError
		}
	}
	ss := dr.sp.Stats()
	st.SpooledEntries, st.SpooledBytes, st.MemorySpool = ss.Entries, ss.Bytes, ss.Memory
	return st
}

// Spool payloads: a kind byte, then memlogd's reply line (entry, gap) or
// a cursor in JSON (at the start of each segment and at a new memlogd
// instance).
const (
	kindEntry  = 'e'
	kindGap    = 'g'
	kindCursor = 'c'
)

func count(p []byte) uint64 {
	if len(p) == 0 {
		return 0
	}
	switch p[0] {
	case kindEntry:
		return 1
	case kindGap:
		var g struct {
			Lost uint64 `json:"lost"`
		}
		json.Unmarshal(p[1:], &g)
		return g.Lost
	}
	return 0
}

func (dr *Drain) header() []byte {
	dr.mu.Lock()
	c := dr.cursor
	dr.mu.Unlock()
	b, _ := json.Marshal(c)
	return append([]byte{kindCursor}, b...)
}

// recover finds where reading memlogd stopped: the last cursor and entry
// in the spool's newest segment.
func (dr *Drain) recover() error {
	ps, err := dr.sp.Last()
	if err != nil {
		return err
	}
	for _, p := range ps {
		dr.track(p)
	}
	return nil
}

// track moves the cursor over one spool payload.
func (dr *Drain) track(p []byte) {
	if len(p) == 0 {
		return
	}
	switch p[0] {
	case kindCursor:
		var c logproto.Cursor
		if json.Unmarshal(p[1:], &c) == nil {
			dr.cursor = c
		}
	case kindEntry:
		if seq, ok := logproto.EntrySeq(p[1:]); ok {
			dr.cursor.Seq = seq
		}
	case kindGap:
		var g logproto.Record
		if json.Unmarshal(p[1:], &g) == nil && g.Seq > 0 {
			dr.cursor.Seq = g.Seq - 1
		}
	}
}

// sleep waits d (with jitter: between d/2 and d) or until ctx ends.
func sleep(ctx context.Context, d time.Duration) bool {
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (dr *Drain) setErr(state string, err error) {
	dr.mu.Lock()
	dr.st.State = state
	if err != nil {
		dr.st.LastError = err.Error()
	}
	if state != "connected" {
		dr.st.ConnectedSince = time.Time{}
	}
	dr.mu.Unlock()
}

// read follows memlogd into the spool until ctx ends.
func (dr *Drain) read(ctx context.Context) {
	backoff := dr.f.opt.MinBackoff
	sync := time.NewTicker(time.Second)
	defer sync.Stop()
	reported := ""
	for ctx.Err() == nil {
		progressed, err := dr.readSession(ctx, sync.C)
		dr.mu.Lock()
		dr.st.Reading = false
		dr.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if progressed {
			backoff = dr.f.opt.MinBackoff
		}
		if msg := err.Error(); msg != reported {
			dr.f.opt.Logf("drain %s: reading memlogd: %v; retrying", dr.p.ID, err)
			reported = msg
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, dr.f.opt.MaxBackoff)
	}
}

func (dr *Drain) request() logproto.Request {
	req := logproto.Request{Mode: logproto.ModeDumpFollow, Sources: dr.p.Sources,
		Exclude: append([]string{OwnSources}, dr.p.Exclude...), Severity: dr.p.MinSeverity}
	dr.mu.Lock()
	if dr.cursor.Instance != "" {
		c := dr.cursor
		req.After = &c
	}
	dr.mu.Unlock()
	return req
}

func (dr *Drain) readSession(ctx context.Context, syncTick <-chan time.Time) (bool, error) {
	s, err := logclient.Open(ctx, dr.f.opt.Socket, dr.request())
	// Only a refusal of the cursor itself resets it: a busy memlogd (all
	// reader slots taken) is asked again later with the same cursor.
	var serr *logclient.ServerError
	if errors.As(err, &serr) && serr.CursorRefused() && dr.request().After != nil {
		dr.f.opt.Logf("drain %s: memlogd refused the cursor (%v); starting from its oldest entry", dr.p.ID, err)
		dr.mu.Lock()
		dr.cursor = logproto.Cursor{}
		dr.mu.Unlock()
		s, err = logclient.Open(ctx, dr.f.opt.Socket, dr.request())
	}
	if errors.Is(err, logclient.ErrNotExtended) {
		return false, fmt.Errorf("%w: logforward needs lklog's memlogd (sequence numbers and cursors)", err)
	}
	if err != nil {
		return false, err
	}
	defer s.Close()
	h := s.Hello
	dr.mu.Lock()
	newInstance := dr.cursor.Instance != h.Instance
	if newInstance {
		if dr.cursor.Instance != "" {
			dr.f.opt.Logf("drain %s: memlogd is a new instance (%s, was %s): forwarding its ring from the start", dr.p.ID, h.Instance, dr.cursor.Instance)
		}
		dr.cursor = logproto.Cursor{Instance: h.Instance}
		dr.acked = 0
	}
	dr.st.Reading = true
	dr.mu.Unlock()
	var batch [][]byte
	if newInstance {
		batch = append(batch, dr.header())
	}
	if !h.Resumed && h.First > 1 {
		g, _ := json.Marshal(logproto.Record{Type: logproto.TypeGap, Lost: h.First - 1, Seq: h.First})
		batch = append(batch, append([]byte{kindGap}, g...))
	}
	if len(batch) > 0 {
		if err := dr.appendBatch(batch); err != nil {
			return false, err
		}
	}
	progressed := false
	lines := make(chan *readBatch, 2)
	// Batches come back once appended (the spool copies them), so in
	// the steady state reading allocates nothing per batch.
	free := make(chan *readBatch, 4)
	errc := make(chan error, 1)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go func() {
		for {
			var rb *readBatch
			select {
			case rb = <-free:
				rb.reset()
			default:
				rb = &readBatch{}
			}
			for len(rb.payloads) < 1024 {
				line, err := s.NextRaw()
				if err != nil {
					if len(rb.payloads) > 0 {
						select {
						case lines <- rb:
						case <-sctx.Done():
						}
					}
					errc <- err
					return
				}
				kind := byte(kindEntry)
				if bytes.HasPrefix(line, []byte(`{"type":"gap"`)) {
					kind = kindGap
				} else if !bytes.HasPrefix(line, []byte(`{"seq":`)) {
					continue
				} else {
					line = fitEntry(line)
				}
				rb.add(kind, line)
				if !s.Buffered() {
					break
				}
			}
			select {
			case lines <- rb:
			case <-sctx.Done():
				errc <- sctx.Err()
				return
			}
		}
	}()
	appendAndFree := func(rb *readBatch) error {
		err := dr.appendBatch(rb.payloads)
		select {
		case free <- rb:
		default:
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			s.Close()
			<-errc
			return progressed, ctx.Err()
		case <-syncTick:
			if err := dr.sp.Sync(); err != nil {
				dr.f.opt.Logf("drain %s: %v", dr.p.ID, err)
			}
		case rb := <-lines:
			if err := appendAndFree(rb); err != nil {
				s.Close()
				return progressed, err
			}
			progressed = true
		case err := <-errc:
			// Lines read before the error are waiting.
		drain:
			for {
				select {
				case rb := <-lines:
					if aerr := appendAndFree(rb); aerr != nil {
						return progressed, aerr
					}
				default:
					break drain
				}
			}
			if errors.Is(err, logclient.ErrTruncated) {
				err = errors.New("memlogd closed the stream")
			}
			return progressed, err
		}
	}
}

// readBatch is the payloads read from memlogd in one go (a kind byte and
// the reply line each), kept in a few large buffers rather than one
// allocation per line.
type readBatch struct {
	payloads [][]byte
	bufs     [][]byte // filled in order
	cur      int      // the buffer being filled
}

const readBufBytes = 128 << 10

// reset empties the batch for reuse, keeping its buffers of the usual
// size (a larger one, made for a long line, goes to the collector).
func (rb *readBatch) reset() {
	clear(rb.payloads)
	rb.payloads = rb.payloads[:0]
	keep := rb.bufs[:0]
	for _, b := range rb.bufs {
		if cap(b) <= readBufBytes {
			keep = append(keep, b[:0])
		}
	}
	clear(rb.bufs[len(keep):])
	rb.bufs, rb.cur = keep, 0
}

// add appends a payload: kind, then line (copied).
func (rb *readBatch) add(kind byte, line []byte) {
	for rb.cur < len(rb.bufs) && len(rb.bufs[rb.cur])+1+len(line) > cap(rb.bufs[rb.cur]) {
		rb.cur++
	}
	if rb.cur == len(rb.bufs) {
		rb.bufs = append(rb.bufs, make([]byte, 0, max(readBufBytes, 1+len(line))))
	}
	buf := rb.bufs[rb.cur]
	start := len(buf)
	buf = append(buf, kind)
	buf = append(buf, line...)
	rb.bufs[rb.cur] = buf
	rb.payloads = append(rb.payloads, buf[start:len(buf):len(buf)])
}

func (dr *Drain) appendBatch(b [][]byte) error {
	if err := dr.sp.Append(b...); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	dr.mu.Lock()
	for _, p := range b {
		dr.track(p)
	}
	dr.mu.Unlock()
	return nil
}

// item is one spool record the sender holds until it is acknowledged.
// The message is held in place (not behind a pointer), so holding an
// entry costs no allocation of its own.
type item struct {
	msg     drain.Message
	has     bool // false for a cursor record: no message
	end     spool.Pos
	entries uint64
	seq     uint64
}

// send delivers the spool to the destination until ctx ends.
func (dr *Drain) send(ctx context.Context) {
	var inflight, arr []item
	var dec logproto.Decoder
	instance := ""
	// The memlogd instance in effect where sending resumes.
	if ps, err := dr.sp.BeforeAck(); err == nil {
		for _, p := range ps {
			var c logproto.Cursor
			if len(p) > 0 && p[0] == kindCursor && json.Unmarshal(p[1:], &c) == nil {
				instance = c.Instance
			}
		}
	}
	backoff := dr.f.opt.MinBackoff
	nonBlocking, cancel := context.WithCancel(context.Background())
	cancel()
	reported := ""
	for ctx.Err() == nil {
		dr.setErr("connecting", nil)
		conn, err := dr.dest.Connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := backoff
			state := "retrying"
			if drain.IsPermanent(err) {
				state, wait = "refused", dr.f.opt.PermanentRetry
			}
			dr.setErr(state, err)
			if msg := err.Error(); msg != reported {
				dr.f.opt.Logf("drain %s: %s: %v (next attempt within %v)", dr.p.ID, state, err, wait)
				reported = msg
			}
			if !sleep(ctx, wait) {
				return
			}
			backoff = min(backoff*2, dr.f.opt.MaxBackoff)
			continue
		}
		reported = ""
		dr.mu.Lock()
		dr.st.State, dr.st.ConnectedSince = "connected", time.Now().UTC()
		dr.mu.Unlock()
		var (
			sentOnConn  int    // items of inflight sent on this connection
			ackedOnConn uint64 // messages acknowledged on this connection
			connErr     error
		)
		window := max(dr.dest.Window(), 1)
		msgs := make([]drain.Message, 0, 256)
		sendItems := func(items []item) error {
			msgs = msgs[:0]
			for _, it := range items {
				if it.has {
					msgs = append(msgs, it.msg)
				}
			}
			if len(msgs) == 0 {
				return nil
			}
			if err := conn.Send(msgs); err != nil {
				return err
			}
			dr.mu.Lock()
			dr.st.Sent += uint64(len(msgs))
			dr.mu.Unlock()
			return nil
		}
		for connErr == nil && ctx.Err() == nil {
			// Send again what the last connection left unacknowledged.
			if sentOnConn < len(inflight) {
				end := min(len(inflight), sentOnConn+256)
				if err := sendItems(inflight[sentOnConn:end]); err != nil {
					connErr = err
					break
				}
				sentOnConn = end
				continue
			}
			got := false
			if room := window - dr.inflightMsgs; room > 0 {
				rctx := ctx
				if len(inflight) > 0 {
					rctx = nonBlocking
				}
				recs, lost, damaged, err := dr.sp.Read(rctx, 256<<10, room)
				if err != nil && ctx.Err() != nil {
					break
				}
				if err != nil && !errors.Is(err, context.Canceled) {
					dr.f.opt.Logf("drain %s: %v", dr.p.ID, err)
					connErr = err
					break
				}
				arr, inflight = reserve(arr, inflight, len(recs)+1)
				var end spool.Pos
				if len(inflight) > 0 {
					end = inflight[len(inflight)-1].end
				}
				if lost > 0 || damaged {
					dr.mu.Lock()
					dr.st.Dropped += lost
					dr.mu.Unlock()
					text := fmt.Sprintf("%d entries lost here: the spool of drain %s was full", lost, dr.p.ID)
					if damaged {
						text = fmt.Sprintf("entries lost here: a damaged record in the spool of drain %s was skipped (%d more dropped, spool full)", dr.p.ID, lost)
					}
					dr.f.opt.Logf("drain %s: %s", dr.p.ID, text)
					inflight = append(inflight, item{msg: notice(instance, text), has: true, end: end})
					dr.inflightMsgs++
				}
				for _, r := range recs {
					it := item{end: r.End}
					p := r.Payload
					switch p[0] {
					case kindCursor:
						var c logproto.Cursor
						if json.Unmarshal(p[1:], &c) == nil {
							instance = c.Instance
						}
					case kindEntry:
						// Decoded in place: the item is fresh (zero).
						if err := dec.Decode(p[1:], &it.msg.Rec); err != nil {
							text := fmt.Sprintf("1 entry lost here: it did not decode (%v)", err)
							it.msg = notice(instance, text)
						} else {
							it.msg.Instance = instance
							it.seq = it.msg.Rec.Seq
						}
						it.has, it.entries = true, 1
					case kindGap:
						var g logproto.Record
						json.Unmarshal(p[1:], &g)
						it.entries = g.Lost
						if g.Seq > 0 {
							it.seq = g.Seq - 1
						}
						dr.mu.Lock()
						dr.st.Gaps += g.Lost
						dr.mu.Unlock()
						it.has = true
						it.msg = notice(instance, fmt.Sprintf("%d entries lost here: memlogd dropped them before logforward read them", g.Lost))
					}
					inflight = append(inflight, it)
					if it.has {
						dr.inflightMsgs++
					}
				}
				if n := len(inflight) - sentOnConn; n > 0 {
					got = true
					if err := sendItems(inflight[sentOnConn:]); err != nil {
						connErr = err
						break
					}
					sentOnConn = len(inflight)
				}
			}
			wait := 20 * time.Millisecond
			if got && dr.inflightMsgs < window {
				wait = 0
			}
			n, err := conn.Acked(ctx, wait)
			inflight, sentOnConn = dr.ackItems(inflight, sentOnConn, n-ackedOnConn)
			ackedOnConn = n
			if err != nil {
				connErr = err
			}
		}
		if connErr != nil && ctx.Err() == nil {
			// Take what the peer still acknowledged.
			if n, _ := conn.Acked(ctx, 0); n > ackedOnConn {
				inflight, _ = dr.ackItems(inflight, sentOnConn, n-ackedOnConn)
			}
		}
		if ctx.Err() != nil && (connErr == nil || errors.Is(connErr, ctx.Err())) {
			// Stopping: take the acknowledgements still on their way.
			inflight, _ = dr.settle(ctx, conn, inflight, sentOnConn, ackedOnConn)
		}
		conn.Close()
		if ctx.Err() != nil {
			return
		}
		state := "retrying"
		if drain.IsPermanent(connErr) {
			state = "refused"
		}
		dr.setErr(state, connErr)
		dr.f.opt.Logf("drain %s: %v; %d messages unacknowledged, sent again on the next connection", dr.p.ID, connErr, dr.inflightMsgs)
		wait := dr.f.opt.MinBackoff
		if state == "refused" {
			wait = dr.f.opt.PermanentRetry
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// settle waits, up to Options.StopGrace after ctx (the drain's) ended, for
// conn to acknowledge the messages sent on it, and acknowledges in the
// spool what it takes. acked is how many it had acknowledged before.
func (dr *Drain) settle(ctx context.Context, conn drain.Conn, inflight []item, sent int, acked uint64) ([]item, int) {
	if dr.f.opt.StopGrace <= 0 || sent == 0 || dr.removing.Load() {
		return inflight, sent
	}
	deadline := time.Now().Add(dr.f.opt.StopGrace)
	gctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	unacked := func() bool {
		for _, it := range inflight[:sent] {
			if it.has {
				return true
			}
		}
		return false
	}
	for unacked() && gctx.Err() == nil {
		n, err := conn.Acked(gctx, time.Until(deadline))
		if n > acked {
			inflight, sent = dr.ackItems(inflight, sent, n-acked)
			acked = n
		}
		if err != nil {
			break
		}
	}
	// The cursor records after the last message acknowledged.
	return dr.ackItems(inflight, sent, 0)
}

// ackItems removes the first k messages (and the cursor records around
// them) from inflight and acknowledges them in the spool.
func (dr *Drain) ackItems(inflight []item, sent int, k uint64) ([]item, int) {
	i := 0
	var entries, seq uint64
	var acked uint64
	for i < sent && (k > 0 || !inflight[i].has) {
		if inflight[i].has {
			k--
			acked++
		}
		entries += inflight[i].entries
		if inflight[i].seq > 0 {
			seq = inflight[i].seq
		}
		i++
	}
	if i == 0 {
		return inflight, sent
	}
	if err := dr.sp.Ack(inflight[i-1].end, entries); err != nil {
		dr.f.opt.Logf("drain %s: %v", dr.p.ID, err)
	}
	dr.inflightMsgs -= int(acked)
	dr.mu.Lock()
	dr.st.Acked += acked
	if seq > 0 {
		dr.acked = seq
	}
	dr.mu.Unlock()
	rest := inflight[i:]
	if len(rest) == 0 {
		rest = inflight[:0]
	}
	return rest, sent - i
}

// reserve makes room for n more items after q, a window into arr (the
// sender's array, reused): it moves q to the front of arr when the room
// is used up, and makes arr twice what is needed when it is too small, so
// each item moves O(1) times and the array is not allocated again in the
// steady state. The items left behind are cleared (their strings can be
// collected).
func reserve(arr, q []item, n int) ([]item, []item) {
	if cap(q)-len(q) >= n {
		return arr, q
	}
	if need := len(q) + n; cap(arr) < 2*need {
		arr = make([]item, 0, 2*need)
	}
	full := arr[:cap(arr)]
	k := copy(full, q)
	clear(full[k:])
	return arr, full[:k]
}

// notice is an entry logforward makes to tell the receiver something.
func notice(instance, text string) drain.Message {
	return drain.Message{Instance: instance, Rec: logproto.Record{Time: time.Now().UTC(), Source: "logforward", Msg: text, Facility: 5, Severity: 4}}
}
