// Package ring is memlogd's bounded in-memory log: entries are stored in one
// preallocated byte arena and an index of fixed-size slots, bounded both by
// the number of entries and by the bytes they hold. Every entry gets a
// sequence number one greater than the previous one; readers keep their own
// cursor (the next sequence number they want). Plain readers never slow a
// writer down; a writer about to evict what a registered follower has not
// read waits for it while it keeps reading, and at most PaceWait of time in
// which it could have read and did not (never more than PaceMax). A reader
// that falls behind further than the ring holds learns exactly how many
// entries it missed.
package ring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// Severity levels as in syslog (RFC 5424 section 6.2.1).
const (
	SevEmerg uint8 = iota
	SevAlert
	SevCrit
	SevErr
	SevWarning
	SevNotice
	SevInfo
	SevDebug
)

// Flags of an entry.
const (
	// FlagTruncated marks a line cut at the maximum line length; the rest
	// of that line was dropped.
	FlagTruncated uint8 = 1 << iota
	// FlagPartial marks a last line that had no newline at end of stream.
	FlagPartial
	// FlagHasPID says PID is meaningful.
	FlagHasPID
	// FlagRaw marks a syslog message kept as raw text because it could not
	// be parsed.
	FlagRaw
	// FlagPlain says the message is made only of bytes that every output
	// format writes as they are (logproto.PlainLen), so readers copy it
	// instead of scanning it for bytes to escape. Set it only on a message
	// checked byte by byte; cutting the message keeps it true.
	FlagPlain
)

// MaxSourceLen and MaxSDLen bound the variable parts of an entry other than
// the message, which the caller bounds.
const (
	MaxSourceLen = 255
	MaxSDLen     = 4096
)

// Entry is one log entry. Byte slices returned by the ring point into the
// reader's Batch and stay valid until the next read into that batch.
type Entry struct {
	Seq      uint64
	Time     int64 // when memlogd received it, Unix nanoseconds
	OrigTime int64 // sender's own timestamp, Unix nanoseconds; 0 if none
	Source   []byte
	Msg      []byte
	SD       []byte // RFC 5424 structured data as sent, if any
	PID      int32
	Facility uint8
	Severity uint8
	Flags    uint8
}

type slot struct {
	time     int64
	origTime int64
	off      int
	msgLen   uint32
	srcLen   uint16
	sdLen    uint16
	pid      int32
	facility uint8
	severity uint8
	flags    uint8
}

// ErrClosed is returned by Wait after Close.
var ErrClosed = errors.New("ring closed")

// Ring is safe for concurrent use by any number of writers and readers.
type Ring struct {
	mu    sync.Mutex
	arena []byte
	slots []slot
	first uint64 // oldest sequence number held
	next  uint64 // sequence number of the next entry appended
	// first and next modulo len(slots): their slots, without a division
	// per entry
	firstSlot, nextSlot int
	wpos                int // arena write position
	wake                chan struct{}
	closed              bool

	// Pacing: writers wait for registered followers (see Config.PaceWait).
	paceWait  time.Duration
	paceMax   time.Duration
	tick      time.Duration // how often a waiting writer looks at followers
	clock     func() time.Duration
	followers []*Follower
	// low is at most the position of every paced follower (MaxUint64
	// when there is none), so that evicting an entry no paced follower
	// still needs costs one comparison; blocked recomputes it when
	// it does not settle the question.
	low uint64
	// progress is closed when a follower that writers wait for reaches
	// wakeAt (or stops being waited for): waking them at every read of a
	// fast follower would cost a wake-up per read for nothing.
	progress chan struct{}
	wakeAt   uint64
}

// Follower is a registered reader: writers about to evict an entry it has
// not read yet wait for it, within Config.PaceWait.
type Follower struct {
	pos   uint64 // next sequence number it will read
	paced bool   // writers wait for it
	// unread, if set, tells how many bytes its client has not read yet:
	// when that shrinks the client is alive, even if the goroutine
	// serving it has not run (its whole process may be short of CPU).
	unread     func() int
	lastUnread int
	// probe, if set, describes the client's process (see Probe).
	probe Probe

	// While writers wait for it with no progress from it (waiting):
	waiting   bool
	waitStart time.Duration // clock when they began
	sampledAt time.Duration // clock at the last look at it
	stalled   time.Duration // time since waitStart it could have read and did not
	known     bool          // the last look saw its process
	lastState ProcState     // what it saw
	unreadNow int           // bytes unread at the last look (-1: unknown)
	// why it was last given up on, until GiveUpReason takes it
	why string
}

// ProcState is what pacing learns of a reader's process.
type ProcState struct {
	Runnable bool // a thread of it is running or waiting for a CPU
	Stopped  bool // all its threads are stopped (SIGSTOP)
}

// Probe reports the state of a follower's client process; ok is false
// when it cannot be known (another PID namespace, no /proc, gone).
type Probe func() (s ProcState, ok bool)

// Config bounds a ring.
type Config struct {
	MaxEntries int // at least 1
	MaxBytes   int // arena bytes for source+msg+sd of all entries
	// PaceWait bounds how long a writer waits for a registered follower
	// that has not read an entry the writer must evict. The writer waits
	// while the follower keeps reading, until it has caught up to within
	// half of what the ring holds. A follower that reads nothing while it
	// could have (for PaceWait of the writers' waiting, counting only time
	// in which it was not kept from running for lack of CPU) is given up
	// on, gets a gap, and is waited for again once it reads again. Zero
	// disables waiting.
	PaceWait time.Duration
	// PaceMax is the hard bound: writers never wait longer than this for
	// a follower that reads nothing, whatever the reason. Zero means
	// 10 x PaceWait.
	PaceMax time.Duration
	// Clock is a monotonic clock for every pacing duration (nil: the
	// process's monotonic clock). Entries' receive times are never used
	// for pacing: the wall clock may be stepped.
	Clock func() time.Duration
}

// PaceMaxFactor is PaceMax in units of PaceWait when Config.PaceMax is 0.
const PaceMaxFactor = 10

// MinBytes is the smallest arena accepted: the longest source and
// structured data an entry may carry plus MinMsgRoom bytes of message, so
// that every entry fits (its message cut if need be). Callers that want
// messages of n bytes kept whole need MaxSourceLen+MaxSDLen+n.
const MinBytes = MaxSourceLen + MaxSDLen + MinMsgRoom

// MinMsgRoom is the message room the smallest arena leaves beside the
// longest source and structured data.
const MinMsgRoom = 1024

// New makes a ring. Sequence numbers start at 1, so that a cursor of 0
// means "before everything".
func New(c Config) (*Ring, error) {
	if c.MaxEntries < 1 {
		return nil, fmt.Errorf("ring: max entries %d: must be at least 1", c.MaxEntries)
	}
	if c.MaxBytes < MinBytes {
		return nil, fmt.Errorf("ring: max bytes %d: must be at least %d", c.MaxBytes, MinBytes)
	}
	r := &Ring{
		arena:     make([]byte, c.MaxBytes),
		slots:     make([]slot, c.MaxEntries),
		first:     1,
		next:      1,
		firstSlot: 1 % c.MaxEntries,
		nextSlot:  1 % c.MaxEntries,
		low:       math.MaxUint64,
	}
	r.initPacing(c)
	return r, nil
}

func (r *Ring) initPacing(c Config) {
	r.paceWait = max(c.PaceWait, 0)
	r.paceMax = c.PaceMax
	if r.paceMax <= 0 {
		r.paceMax = PaceMaxFactor * r.paceWait
	}
	r.paceMax = max(r.paceMax, r.paceWait)
	r.tick = min(max(r.paceWait/10, 5*time.Millisecond), 100*time.Millisecond)
	r.clock = c.Clock
	if r.clock == nil {
		start := time.Now()
		r.clock = func() time.Duration { return time.Since(start) } // monotonic
	}
}

// Bounds returns the oldest sequence number held and the next one to be
// assigned; the ring holds [first, next).
func (r *Ring) Bounds() (first, next uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first, r.next
}

// Append adds entries in order, assigning their sequence numbers (the Seq
// field of the arguments is ignored), evicting the oldest entries as
// needed. Before evicting an entry a paced follower has not read, it
// waits as Config.PaceWait says: while that follower keeps reading, and
// at most PaceMax for one that reads nothing. Entries larger than the arena are
// cut: the message is shortened and marked truncated. It returns the
// sequence number given to the last entry.
func (r *Ring) Append(es ...Entry) uint64 {
	r.mu.Lock()
	for i := range es {
		r.appendLocked(&es[i])
	}
	last := r.next - 1
	r.wakeReaders()
	r.mu.Unlock()
	return last
}

// wakeReaders wakes the readers waiting for new entries.
func (r *Ring) wakeReaders() {
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

func (r *Ring) appendLocked(e *Entry) {
	src, sd, msg := e.Source, e.SD, e.Msg
	flags := e.Flags
	if len(src) > MaxSourceLen {
		src = src[:MaxSourceLen]
	}
	if len(sd) > MaxSDLen {
		sd = nil
	}
	if room := len(r.arena) - len(src) - len(sd); len(msg) > room {
		msg = msg[:room]
		flags |= FlagTruncated
	}
	n := len(src) + len(sd) + len(msg)
	if n == 0 {
		n = 1
	}
	off := r.alloc(n)
	p := off
	p += copy(r.arena[p:], src)
	p += copy(r.arena[p:], sd)
	copy(r.arena[p:], msg)
	// Every field, one by one (see readLocked).
	s := &r.slots[r.nextSlot]
	s.time, s.origTime, s.off = e.Time, e.OrigTime, off
	s.msgLen, s.srcLen, s.sdLen = uint32(len(msg)), uint16(len(src)), uint16(len(sd))
	s.pid, s.facility, s.severity, s.flags = e.PID, e.Facility, e.Severity, flags
	r.next++
	if r.nextSlot++; r.nextSlot == len(r.slots) {
		r.nextSlot = 0
	}
	r.wpos = off + n
}

// alloc returns the arena offset where n contiguous bytes may be written,
// evicting the oldest entries until both bounds hold for one more entry.
func (r *Ring) alloc(n int) int {
	for {
		count := r.next - r.first
		if count == 0 {
			r.wpos = 0
			return 0
		}
		if count >= uint64(len(r.slots)) {
			r.evictOldest()
			continue
		}
		tail := r.slots[r.firstSlot].off
		if r.wpos > tail {
			// live bytes are [tail, wpos): free at the end and before tail
			if len(r.arena)-r.wpos >= n {
				return r.wpos
			}
			if tail >= n {
				return 0
			}
		} else if tail-r.wpos >= n {
			// wrapped: live bytes are [tail, end) and [0, wpos)
			return r.wpos
		}
		r.evictOldest()
	}
}

// evictOldest drops the oldest entry, first waiting (within PaceWait) for
// paced followers that have not read it. The lock is released while
// waiting, so the ring may have changed when it returns: callers
// re-examine it.
func (r *Ring) evictOldest() {
	if r.paceWait > 0 && !r.closed && r.blocked() {
		r.pace()
		return
	}
	r.first++
	if r.firstSlot++; r.firstSlot == len(r.slots) {
		r.firstSlot = 0
	}
}

// blocked reports whether a paced follower still needs the oldest entry.
// It runs at every eviction: in the usual case, where every follower is
// past the oldest entry, it costs one comparison.
func (r *Ring) blocked() bool {
	if r.first < r.low {
		return false
	}
	r.low = math.MaxUint64
	for _, f := range r.followers {
		if f.paced {
			r.low = min(r.low, f.pos)
		}
	}
	return r.first >= r.low
}

// pace waits while the paced followers that are behind keep reading,
// until each has caught up to within half of what the ring holds.
// Followers that could have read and did not for PaceWait (see gaveUp)
// are no longer paced. Waiting for half the ring rather than one entry
// lets writers then go on in large steps.
func (r *Ring) pace() {
	for !r.closed {
		target := max(r.first+(r.next-r.first)/2, r.first+1)
		now := r.clock()
		waiting := false
		for _, f := range r.followers {
			if !f.paced || f.pos >= target {
				continue
			}
			pending := true // something may wait for its client
			f.unreadNow = -1
			if f.unread != nil {
				if u := f.unread(); u >= 0 {
					if u < f.lastUnread {
						f.progressed()
					}
					f.lastUnread = u
					f.unreadNow = u
					pending = u > 0
				}
			}
			if r.gaveUp(f, now, pending) {
				f.paced = false // stalled: it will get a gap instead
				f.why = f.describe(now)
				continue
			}
			waiting = true
		}
		if !waiting {
			return
		}
		if r.progress == nil {
			r.progress = make(chan struct{})
			r.wakeAt = target
		}
		r.wakeAt = min(r.wakeAt, target)
		ch := r.progress
		// Entries this Append already added must reach the followers we
		// are waiting for.
		r.wakeReaders()
		r.mu.Unlock()
		t := time.NewTimer(r.tick)
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		r.mu.Lock()
	}
}

// gaveUp accounts for the time since writers last looked at f, which has
// shown no progress meanwhile, and reports whether to give up on it.
// pending is false when f's client has nothing unread in its socket.
//
// Only time in which f's client could have read counts toward PaceWait:
//   - a stopped process: all of it;
//   - nothing waiting in its socket: none of it (what holds it up is
//     the goroutine serving it, which has not run: memlogd itself is
//     short of CPU);
//   - a process with a runnable thread: none of it. It is waiting for
//     a CPU (the machine, or the whole VM, is starved), or busy with what
//     it read before (a reader short of CPU decodes its buffer a long
//     while before it reads its socket again);
//   - otherwise (sleeping on something else, or unknown): the time since
//     the last look, but at most two ticks: a longer interval means the
//     waiting writer itself was kept from running, so the reader most
//     likely was too.
//
// Whatever the reason, writers never wait more than PaceMax for a
// follower that reads nothing (one that runs but never reads).
func (r *Ring) gaveUp(f *Follower, now time.Duration, pending bool) bool {
	if !f.waiting {
		f.waiting = true
		f.waitStart, f.sampledAt, f.stalled, f.known = now, now, 0, false
		return false
	}
	d := now - f.sampledAt
	if d < r.tick {
		// Look at the reader at most once a tick: pacing wakes at every
		// read of a fast reader, and a look reads /proc.
		return false
	}
	f.sampledAt = now
	var st ProcState
	ok := false
	if f.probe != nil {
		st, ok = f.probe()
	}
	switch {
	case ok && st.Stopped:
	case !pending:
		d = 0 // nothing to read: not the client's fault
	case ok && st.Runnable:
		d = 0 // waiting for a CPU, or busy with what it read
	default:
		d = min(d, 2*r.tick)
	}
	f.known, f.lastState = ok, st
	f.stalled += d
	return f.stalled >= r.paceWait || now-f.waitStart >= r.paceMax
}

// describe says why f is given up on, for memlogd's log.
func (f *Follower) describe(now time.Duration) string {
	state := "unknown"
	if f.known {
		switch {
		case f.lastState.Stopped:
			state = "stopped"
		case f.lastState.Runnable:
			state = "running"
		default:
			state = "sleeping"
		}
	}
	unread := "unknown"
	if f.unreadNow >= 0 {
		unread = fmt.Sprint(f.unreadNow)
	}
	return fmt.Sprintf("no progress for %v of writers' waiting, %v of it with the chance to read (client %s, %s bytes unread)",
		(now - f.waitStart).Round(time.Millisecond), f.stalled.Round(time.Millisecond), state, unread)
}

// GiveUpReason returns, once, why writers last gave up waiting for f
// ("" if they did not).
func (r *Ring) GiveUpReason(f *Follower) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	why := f.why
	f.why = ""
	return why
}

// progressed notes that f read something (or its client did): writers
// waiting for it start counting afresh.
func (f *Follower) progressed() {
	f.waiting = false
}

// Batch receives entries copied out of the ring; reuse one per reader so
// that reading allocates nothing in the steady state.
type Batch struct {
	Entries []Entry
	// Lost is how many entries the reader missed, because they were
	// evicted, before Entries[0] (or before Next if Entries is empty).
	Lost uint64
	// Next is the cursor to pass to the following read.
	Next uint64
	buf  []byte
}

// Read copies entries starting at sequence number cursor (clamped to the
// oldest entry held) into b: at most maxEntries entries and, beyond the
// first entry, at most maxBytes bytes. A cursor beyond the newest entry
// returns an empty batch with Next = cursor.
func (r *Ring) Read(cursor uint64, b *Batch, maxEntries, maxBytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.readLocked(cursor, b, maxEntries, maxBytes)
}

// Follow registers a follower whose next read is at cursor. Writers wait
// for it as Config.PaceWait says, until Unfollow.
func (r *Ring) Follow(cursor uint64) *Follower {
	return r.FollowClient(cursor, nil)
}

// FollowClient is Follow for a follower that relays entries to a client:
// unread returns how many bytes the client has yet to read (negative if
// unknown). Writers take a shrinking count for progress.
func (r *Ring) FollowClient(cursor uint64, unread func() int) *Follower {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := &Follower{pos: cursor, paced: true, unread: unread, lastUnread: -1}
	r.followers = append(r.followers, f)
	r.low = min(r.low, f.pos)
	return f
}

// Unfollow unregisters f.
func (r *Ring) Unfollow(f *Follower) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := slices.Index(r.followers, f); i >= 0 {
		last := len(r.followers) - 1
		r.followers[i] = r.followers[last]
		r.followers[last] = nil
		r.followers = r.followers[:last]
	}
	r.signalProgress()
}

// ReadFollower is Read for a registered follower, from its own position.
// Entries copied into b count as read: the follower's next read continues
// after them.
func (r *Ring) ReadFollower(f *Follower, b *Batch, maxEntries, maxBytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.readLocked(f.pos, b, maxEntries, maxBytes)
	if b.Next != f.pos {
		f.pos = b.Next
		f.progressed()
		// Writers waiting for it go on once it has caught up to where
		// they wait for; until then they look at it every tick.
		if f.pos >= r.wakeAt {
			r.signalProgress()
		}
	}
	// A follower that was given up on is waited for again as soon as it
	// reads again: a pause costs it one gap, not every entry for as long
	// as writers keep it behind.
	if !f.paced && len(b.Entries) > 0 {
		f.paced = true
		r.low = min(r.low, f.pos)
	}
}

// Touch tells the ring that f's reader is making progress although it has
// not read new entries (it is still delivering earlier ones to a client
// that drains them slowly), so writers keep waiting for it.
func (r *Ring) Touch(f *Follower) {
	r.mu.Lock()
	f.progressed()
	r.mu.Unlock()
}

// SetProbe tells pacing how to examine f's client process, so that a
// client kept from running by a starved machine is not taken for a
// stalled one.
func (r *Ring) SetProbe(f *Follower, p Probe) {
	r.mu.Lock()
	f.probe = p
	r.mu.Unlock()
}

func (r *Ring) signalProgress() {
	if r.progress != nil {
		close(r.progress)
		r.progress = nil
	}
}

func (r *Ring) readLocked(cursor uint64, b *Batch, maxEntries, maxBytes int) {
	b.Entries = b.Entries[:0]
	b.buf = b.buf[:0]
	b.Lost = 0
	if cursor == 0 { // sequence numbers start at 1
		cursor = 1
	}
	if cursor < r.first {
		b.Lost = r.first - cursor
		cursor = r.first
	}
	if cap(b.buf) < maxBytes {
		b.buf = make([]byte, 0, maxBytes)
	}
	// Consecutive entries lie one after the other in the arena (but
	// where it wraps): their bytes are copied a run at a time, not one
	// entry at a time. The run [spanOff, spanOff+spanLen) goes to
	// buf[w-spanLen:w].
	buf := b.buf[:cap(b.buf)]
	w, spanOff, spanLen := 0, 0, 0
	// One division for the whole batch, not one per entry.
	nslots := uint64(len(r.slots))
	i := cursor % nslots
	for ; cursor < r.next && len(b.Entries) < maxEntries; cursor++ {
		s := &r.slots[i]
		if i++; i == nslots {
			i = 0
		}
		n := int(s.srcLen) + int(s.sdLen) + int(s.msgLen)
		if w+n > maxBytes && len(b.Entries) > 0 {
			break
		}
		if w+n > len(buf) {
			// A first entry larger than maxBytes (nothing is
			// pending yet).
			buf = make([]byte, n)
		}
		if spanLen > 0 && s.off != spanOff+spanLen {
			copy(buf[w-spanLen:w], r.arena[spanOff:spanOff+spanLen])
			spanLen = 0
		}
		if spanLen == 0 {
			spanOff = s.off
		}
		spanLen += n
		start := w
		w += n
		p1 := start + int(s.srcLen)
		p2 := p1 + int(s.sdLen)
		p3 := p2 + int(s.msgLen)
		if len(b.Entries) < cap(b.Entries) {
			b.Entries = b.Entries[:len(b.Entries)+1]
		} else {
			b.Entries = append(b.Entries, Entry{})
		}
		// Every field, one by one: a composite literal is built on the
		// stack and then copied in 16-byte moves, which stall on the
		// stores just made (no store-to-load forwarding).
		e := &b.Entries[len(b.Entries)-1]
		e.Seq, e.Time, e.OrigTime = cursor, s.time, s.origTime
		e.Source, e.SD, e.Msg = buf[start:p1:p1], buf[p1:p2:p2], buf[p2:p3:p3]
		e.PID, e.Facility, e.Severity, e.Flags = s.pid, s.facility, s.severity, s.flags
	}
	copy(buf[w-spanLen:w], r.arena[spanOff:spanOff+spanLen])
	// buf may be a new array for a first oversized entry: the next read
	// makes one of maxBytes again.
	b.buf = buf[:w]
	b.Next = cursor
}

// Meta is what a filter sees of an entry without copying its message.
type Meta struct {
	Source   []byte
	Severity uint8
	Facility uint8
}

// TailCursor returns the cursor from which the last n entries matching
// match (all entries if match is nil) can be read.
func (r *Ring) TailCursor(n int, match func(Meta) bool) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 {
		return r.next
	}
	if match == nil {
		if r.next-r.first <= uint64(n) {
			return r.first
		}
		return r.next - uint64(n)
	}
	c := r.next
	for c > r.first && n > 0 {
		s := &r.slots[(c-1)%uint64(len(r.slots))]
		m := Meta{Source: r.arena[s.off : s.off+int(s.srcLen)], Severity: s.severity, Facility: s.facility}
		if match(m) {
			n--
		}
		c--
	}
	return c
}

// Wait blocks until an entry with sequence number >= cursor exists, the
// context is done, or the ring is closed.
func (r *Ring) Wait(ctx context.Context, cursor uint64) error {
	r.mu.Lock()
	if r.next > cursor {
		r.mu.Unlock()
		return nil
	}
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	ch := r.wake
	r.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close wakes every waiter; later Waits that would block return ErrClosed.
// Appends still work (memlogd may log while shutting down).
func (r *Ring) Close() {
	r.mu.Lock()
	r.closed = true
	r.wakeReaders()
	r.signalProgress()
	r.mu.Unlock()
}
