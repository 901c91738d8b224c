package kmsg

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// FakeDevice is an in-memory Device with /dev/kmsg's semantics, for
// tests and benchmarks: a ring of at most Capacity records with
// increasing sequence numbers; a Read returns one record, unix.EPIPE once
// when the reader's next record was overwritten (then continues with the
// oldest one held), and unix.EAGAIN when there is nothing new. It is safe
// for one reader and any number of writers.
type FakeDevice struct {
	mu       sync.Mutex
	recs     [][]byte // recs[i] has sequence number first+i
	first    uint64
	next     uint64 // sequence number of the next record added
	capacity int
	pos      uint64 // the reader's next sequence number
	cleared  uint64 // SeekData position
	wake     chan struct{}
	closed   bool
	// Reads counts Read calls, EAGAINs and EPIPEs returned.
	Reads, EAGAINs, EPIPEs int
}

// NewFakeDevice makes a fake device holding at most capacity records,
// whose first record will get sequence number firstSeq.
func NewFakeDevice(capacity int, firstSeq uint64) *FakeDevice {
	if capacity < 1 {
		capacity = 1
	}
	return &FakeDevice{capacity: capacity, first: firstSeq, next: firstSeq, pos: firstSeq, cleared: firstSeq, wake: make(chan struct{})}
}

// AddRaw appends a record given whole (without a sequence number of its
// own: the caller writes what it wants Read to return) and returns the
// sequence number it took. The oldest record is dropped when the ring is
// full.
func (d *FakeDevice) AddRaw(raw []byte) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	seq := d.next
	d.recs = append(d.recs, append([]byte(nil), raw...))
	d.next++
	for len(d.recs) > d.capacity {
		d.recs[0] = nil
		d.recs = d.recs[1:]
		d.first++
	}
	close(d.wake)
	d.wake = make(chan struct{})
	return seq
}

// Add appends a well-formed record with this prio, microseconds since
// boot and text (escaped as the kernel does) and dictionary lines, and
// returns its sequence number.
func (d *FakeDevice) Add(prio uint32, usec uint64, text string, dict ...string) uint64 {
	d.mu.Lock()
	seq := d.next
	d.mu.Unlock()
	b := strconv.AppendUint(nil, uint64(prio), 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, usec, 10)
	b = append(b, ",-;"...)
	b = Escape(b, []byte(text))
	b = append(b, '\n')
	for _, kv := range dict {
		b = append(b, ' ')
		b = Escape(b, []byte(kv))
		b = append(b, '\n')
	}
	if got := d.AddRaw(b); got != seq {
		panic(fmt.Sprintf("kmsg: FakeDevice.Add raced with another writer (seq %d, want %d)", got, seq))
	}
	return seq
}

// Reopen makes the device usable again after Close, positioned at the
// oldest record held, as a new open() of /dev/kmsg is. It returns d.
func (d *FakeDevice) Reopen() *FakeDevice {
	d.mu.Lock()
	d.closed = false
	d.pos = d.first
	d.mu.Unlock()
	return d
}

// Clear marks every record held as cleared (as dmesg -c): SeekData goes
// past them.
func (d *FakeDevice) Clear() {
	d.mu.Lock()
	d.cleared = d.next
	d.mu.Unlock()
}

// Bounds returns the oldest sequence number held and the next one.
func (d *FakeDevice) Bounds() (first, next uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first, d.next
}

// Read implements Device.
func (d *FakeDevice) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Reads++
	if d.closed {
		return 0, unix.EBADF
	}
	if d.pos < d.first {
		d.pos = d.first
		d.EPIPEs++
		return 0, unix.EPIPE
	}
	if d.pos >= d.next {
		d.EAGAINs++
		return 0, unix.EAGAIN
	}
	rec := d.recs[d.pos-d.first]
	if len(p) < len(rec) {
		return 0, unix.EINVAL
	}
	d.pos++
	return copy(p, rec), nil
}

// Wait implements Device.
func (d *FakeDevice) Wait(ctx context.Context) error {
	d.mu.Lock()
	if d.pos < d.next || d.pos < d.first || d.closed {
		d.mu.Unlock()
		return nil
	}
	wake := d.wake
	d.mu.Unlock()
	select {
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Seek implements Device.
func (d *FakeDevice) Seek(whence int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch whence {
	case SeekStart:
		d.pos = d.first
	case SeekEnd:
		d.pos = d.next
	case SeekData:
		d.pos = max(d.cleared, d.first)
	default:
		return unix.EINVAL
	}
	return nil
}

// Close implements Device.
func (d *FakeDevice) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}

// Escape appends s escaped as the kernel escapes record text: control
// bytes (below 0x20, newline included), bytes 0x7f and above, and the
// backslash become \xNN.
func Escape(dst, s []byte) []byte {
	const hexd = "0123456789abcdef"
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			dst = append(dst, '\\', 'x', hexd[c>>4], hexd[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
