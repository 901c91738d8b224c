package kmsg

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Start says where a Reader begins.
type Start uint8

const (
	// StartSeq begins with the record numbered ReaderConfig.Next: older
	// records are skipped, and records from Next up to the oldest one
	// the kernel still holds are reported lost. Next 0 on a fresh boot
	// replays the whole ring and reports what the kernel had already
	// dropped.
	StartSeq Start = iota
	// StartEnd begins with the next record the kernel writes.
	StartEnd
	// StartClear begins after the last clear of the kernel log (SEEK_DATA).
	StartClear
)

// LossReason says why records were lost.
type LossReason uint8

const (
	// LossOverwritten: the kernel overwrote them before they were read
	// (read() returned EPIPE).
	LossOverwritten LossReason = iota + 1
	// LossGone: they were already gone from the kernel's ring when
	// reading started.
	LossGone
	// LossSkipped: the sequence numbers jumped without an EPIPE (the
	// kernel dropped records it could not store).
	LossSkipped
)

func (r LossReason) String() string {
	switch r {
	case LossOverwritten:
		return "overwritten in the kernel's ring before they were read"
	case LossGone:
		return "already gone from the kernel's ring when reading started"
	case LossSkipped:
		return "dropped by the kernel (sequence numbers jumped)"
	}
	return fmt.Sprintf("LossReason(%d)", uint8(r))
}

// Loss describes records that will never be read.
type Loss struct {
	// Count is the number of records lost, First and Last their
	// sequence numbers (inclusive), when Known.
	Count, First, Last uint64
	// Known is false when the count cannot be known: records were
	// overwritten before the first record read by a reader that started
	// at the end or after a clear.
	Known  bool
	Reason LossReason
}

// Event is what Reader.Next returns: a record, or a loss.
type Event struct {
	// Loss is set for a loss event; Record is then zero.
	Loss *Loss
	// Record is the record read. Its slices are valid until the next
	// call of Next.
	Record Record
	// Malformed is the parse error of a record that was not understood:
	// Record then has only Raw and Text.
	Malformed error
	// Time is the wall-clock time of the record in Unix nanoseconds:
	// boot time (CLOCK_REALTIME - CLOCK_BOOTTIME) + Record.Usec.
	Time int64
}

// ReaderConfig says where a Reader starts and how it dates records.
type ReaderConfig struct {
	Start Start
	// Next is the first sequence number wanted, for StartSeq.
	Next uint64
	// BootTime returns the Unix time in nanoseconds at which the boot
	// clock read zero; nil means BootTime.
	BootTime func() int64
}

// Reader reads records from a Device one at a time. It is not safe for
// concurrent use.
type Reader struct {
	dev      Device
	buf      []byte
	bootTime func() int64
	next     uint64 // expected sequence number
	known    bool   // next is meaningful
	started  bool   // a record was read
	overrun  bool   // EPIPE seen since the last record
	pending  Event  // record held back behind a loss event
	hasPend  bool
	// Stats.
	stats Stats
}

// Stats counts what a Reader saw.
type Stats struct {
	Records   uint64 // records returned
	Skipped   uint64 // records skipped because they were before Next
	Lost      uint64 // records reported lost (known counts)
	Losses    uint64 // loss events
	EPIPEs    uint64
	Malformed uint64
}

// NewReader positions dev as cfg says and returns a reader of it.
func NewReader(dev Device, cfg ReaderConfig) (*Reader, error) {
	r := &Reader{dev: dev, buf: make([]byte, MaxRecord), bootTime: cfg.BootTime}
	if r.bootTime == nil {
		r.bootTime = BootTime
	}
	switch cfg.Start {
	case StartSeq:
		if err := dev.Seek(SeekStart); err != nil {
			return nil, err
		}
		r.next, r.known = cfg.Next, true
	case StartEnd:
		if err := dev.Seek(SeekEnd); err != nil {
			return nil, err
		}
	case StartClear:
		if err := dev.Seek(SeekData); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("kmsg: unknown start %d", cfg.Start)
	}
	return r, nil
}

// Stats returns the reader's counters.
func (r *Reader) Stats() Stats { return r.stats }

// Next returns the next event, waiting for one until ctx is done (it
// then returns ctx's error). With wait false it returns unix.EAGAIN
// instead of waiting.
func (r *Reader) Next(ctx context.Context, wait bool) (Event, error) {
	if r.hasPend {
		r.hasPend = false
		r.stats.Records++
		return r.pending, nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
		n, err := r.dev.Read(r.buf)
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			if !wait {
				return Event{}, unix.EAGAIN
			}
			if err := r.dev.Wait(ctx); err != nil {
				return Event{}, err
			}
			continue
		case errors.Is(err, unix.EPIPE):
			r.overrun = true
			r.stats.EPIPEs++
			continue
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return Event{}, fmt.Errorf("reading the kernel log: %w", err)
		}
		ev, ok := r.event(r.buf[:n])
		if !ok {
			continue
		}
		return ev, nil
	}
}

// event turns one read into an event; ok is false for a record skipped
// because it is before the start.
func (r *Reader) event(b []byte) (Event, bool) {
	rec, perr := Parse(b)
	if perr != nil {
		// No sequence number: deliver it as it is; it moves nothing.
		r.stats.Malformed++
		r.stats.Records++
		return Event{Record: rec, Malformed: perr, Time: r.bootTime()}, true
	}
	ev := Event{Record: rec, Time: r.bootTime() + int64(rec.Usec)*1000}
	var loss *Loss
	switch {
	case r.known && rec.Seq < r.next:
		r.stats.Skipped++
		r.overrun = false
		return Event{}, false
	case r.known && rec.Seq > r.next:
		reason := LossSkipped
		switch {
		case r.overrun:
			reason = LossOverwritten
		case !r.started:
			reason = LossGone
		}
		loss = &Loss{Count: rec.Seq - r.next, First: r.next, Last: rec.Seq - 1, Known: true, Reason: reason}
	case !r.known && r.overrun:
		loss = &Loss{Reason: LossOverwritten}
	}
	r.overrun = false
	r.started = true
	r.next, r.known = rec.Seq+1, true
	if loss != nil {
		r.stats.Losses++
		r.stats.Lost += loss.Count
		r.pending, r.hasPend = ev, true
		return Event{Loss: loss, Time: ev.Time}, true
	}
	r.stats.Records++
	return ev, true
}

// Close closes the device.
func (r *Reader) Close() error { return r.dev.Close() }

// BootTime returns the Unix time in nanoseconds at which CLOCK_BOOTTIME
// read zero: CLOCK_REALTIME - CLOCK_BOOTTIME, read back to back (the boot
// clock is read on both sides of the real-time clock and averaged). It is
// computed at each call, so a step of the real-time clock (NTP, date -s)
// is followed. Kernel record timestamps count from the same zero; they do
// not advance during suspend on every architecture, so records written
// after a suspend may be dated early by the time spent suspended.
func BootTime() int64 {
	var b1, rt, b2 unix.Timespec
	// These clocks always exist on Linux; errors cannot happen with
	// valid pointers.
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &b1)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &rt)
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &b2)
	boot := b1.Nano() + (b2.Nano()-b1.Nano())/2
	return rt.Nano() - boot
}
