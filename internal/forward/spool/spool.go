// Package spool is logforward's per-drain queue: records waiting for a
// destination, in append-only segment files in a directory (or in memory
// when there is no directory), bounded in bytes. When the bound is reached
// the oldest segment is dropped and the number of entries it held that were
// not yet read is counted, so the reader can say exactly how many were
// lost. The acknowledged position is kept in a small file of two
// checksummed slots, written in place after each acknowledgement, so a
// restart (even after kill -9) resends only what was not acknowledged.
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Sync policies, as logwrite's.
const (
	SyncNone       = "none"       // never fsync: kill -9 loses nothing, a power loss may
	SyncCheckpoint = "checkpoint" // fsync when Sync is called (periodically) and at rotation
	SyncAlways     = "always"     // fsync after every Append
)

// Options configure a spool.
type Options struct {
	// Dir holds the segments and the ack file; empty keeps the spool in
	// memory.
	Dir string
	// MaxBytes bounds the segments' total size.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment is started;
	// 0 picks MaxBytes/8 (at least 64 KiB, at most 8 MiB).
	SegmentBytes int64
	// Sync is the fsync policy (default SyncCheckpoint).
	Sync string
	// Header, if set, gives a payload written first in every new
	// segment (the caller's resume point, so the newest segment always
	// says where reading stopped).
	Header func() []byte
	// Count returns how many entries a payload stands for (counted
	// when a segment is dropped); nil counts 1 per record.
	Count func(payload []byte) uint64
	// ReuseReads makes Read reuse one buffer: the records it returns
	// are valid only until the next Read (for a caller that decodes
	// them at once), and reading allocates nothing in the steady state.
	ReuseReads bool
	// TailBytes bounds a copy, in memory, of the newest records written
	// to the segment files, from which Read takes them when it is that
	// close behind Append (no read system call, no copy); a reader
	// further behind, or after a restart, reads the files. The files
	// are written exactly as without it. 0 picks 4 MiB (at most
	// MaxBytes/4); negative keeps none. Unused without a directory.
	TailBytes int64
}

// tailChunkBytes is the size of the memory tail's chunks.
const tailChunkBytes = 1 << 20

// Pos is a position in the spool: a segment and a byte offset in it.
type Pos struct{ Seg, Off uint64 }

// Less reports whether p is before q.
func (p Pos) Less(q Pos) bool { return p.Seg < q.Seg || p.Seg == q.Seg && p.Off < q.Off }

// Rec is one record returned by Read: its payload and the position after
// it (to pass to Ack once the record is delivered).
type Rec struct {
	Payload []byte
	End     Pos
}

type segment struct {
	id   uint64
	f    *os.File // nil in memory
	mem  []byte
	size int64
}

func (g *segment) readAt(p []byte, off int64) (int, error) {
	if g.f == nil {
		if off >= int64(len(g.mem)) {
			return 0, io.EOF
		}
		return copy(p, g.mem[off:]), nil
	}
	return g.f.ReadAt(p, off)
}

// Spool is safe for one appender and one reader at a time.
type Spool struct {
	opt Options

	mu      sync.Mutex
	segs    []*segment
	total   int64
	read    Pos
	ack     Pos
	lost    uint64 // dropped before being read, not reported yet
	damaged bool   // a damaged record was skipped, not reported yet
	pending uint64 // entries appended and not yet acknowledged
	notify  chan struct{}
	ackf    *os.File
	gen     uint64
	dirty   bool
	closed  bool
	buf     []byte
	rbuf    []byte // Read's buffer (ReuseReads)
	rrecs   []Rec  // Read's records (ReuseReads)

	// tail holds the newest bytes of the segment files in memory:
	// chunks in order, contiguous within a segment, the last ending
	// where the file ends. A chunk's bytes are never changed once
	// written (Read returns slices of them); consumed chunks are
	// dropped, or reused once no record Read returned can point there.
	tail       []*chunk
	tailBytes  int64    // bytes in tail
	spare      []*chunk // consumed chunks, reusable at the next Read (ReuseReads)
	free       []*chunk // chunks to fill
	memReads   uint64
	fileReads  uint64
	chunksMade uint64
}

// chunk is a piece of the memory tail: the bytes of segment seg from off.
type chunk struct {
	seg  uint64
	off  uint64
	data []byte
}

func (c *chunk) end() uint64 { return c.off + uint64(len(c.data)) }

// Stats describe a spool.
type Stats struct {
	Bytes   int64  // bytes not yet acknowledged (approximately: whole segments before the ack position are gone)
	Entries uint64 // entries not yet acknowledged
	Memory  bool
	// Reads that took their records from the memory tail and from
	// the segment files.
	TailReads, FileReads uint64
}

const (
	segPrefix = "seg-"
	segSuffix = ".spool"
	ackName   = "ack"
	slotLen   = 48
)

func segName(id uint64) string { return fmt.Sprintf("%s%016x%s", segPrefix, id, segSuffix) }

// Open opens (or creates) the spool in opt.Dir, cutting off a torn
// record at the end of the newest segment.
func Open(opt Options) (*Spool, error) {
	if opt.MaxBytes <= 0 {
		return nil, errors.New("spool: MaxBytes must be positive")
	}
	if opt.SegmentBytes <= 0 {
		opt.SegmentBytes = min(max(opt.MaxBytes/8, 64<<10), 8<<20)
	}
	if opt.Sync == "" {
		opt.Sync = SyncCheckpoint
	}
	if opt.Count == nil {
		opt.Count = func([]byte) uint64 { return 1 }
	}
	if opt.TailBytes == 0 {
		opt.TailBytes = min(4<<20, opt.MaxBytes/4)
	}
	s := &Spool{opt: opt, notify: make(chan struct{})}
	if opt.Dir == "" {
		s.segs = []*segment{{id: 1}}
		s.read, s.ack = Pos{Seg: 1}, Pos{Seg: 1}
		if err := s.writeHeader(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := os.MkdirAll(opt.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := s.load(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Spool) load() error {
	ents, err := os.ReadDir(s.opt.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, segPrefix) || !strings.HasSuffix(n, segSuffix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, segPrefix), segSuffix), 16, 64)
		if err != nil || id == 0 {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for i, id := range ids {
		f, err := os.OpenFile(filepath.Join(s.opt.Dir, segName(id)), os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("spool: %w", err)
		}
		g := &segment{id: id, f: f, size: fi.Size()}
		if i == len(ids)-1 {
			valid, err := validLen(g)
			if err != nil {
				return err
			}
			if valid != g.size {
				if err := f.Truncate(valid); err != nil {
					return fmt.Errorf("spool: cutting a torn record off %s: %w", f.Name(), err)
				}
				g.size = valid
			}
		}
		s.segs = append(s.segs, g)
		s.total += g.size
	}
	ackf, err := os.OpenFile(filepath.Join(s.opt.Dir, ackName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.ackf = ackf
	if ack, lost, gen, ok := readAck(ackf); ok {
		s.ack, s.lost, s.gen = ack, lost, gen
	}
	if len(s.segs) == 0 {
		if err := s.newSegment(max(s.ack.Seg, 1)); err != nil {
			return err
		}
		s.ack = Pos{Seg: s.segs[0].id}
		if err := s.writeHeader(); err != nil {
			return err
		}
	}
	first, last := s.segs[0], s.segs[len(s.segs)-1]
	switch {
	case s.ack.Seg < first.id:
		s.ack = Pos{Seg: first.id}
	case s.ack.Seg > last.id || s.ack.Seg == last.id && int64(s.ack.Off) > last.size:
		// The ack file is newer than the data (a power loss with
		// -sync none): nothing after it can be trusted to be sent.
		s.ack = Pos{Seg: last.id, Off: uint64(last.size)}
	}
	s.read = s.ack
	// Count what is still to be sent.
	n, err := s.countFrom(s.ack)
	if err != nil {
		return err
	}
	s.pending = n
	return nil
}

// validLen returns the length of the whole records at the start of g.
func validLen(g *segment) (int64, error) {
	var off int64
	buf := make([]byte, 256<<10)
	for off < g.size {
		n, err := g.readAt(buf, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("spool: reading segment %d: %w", g.id, err)
		}
		b := buf[:n]
		used := 0
		for {
			_, m, err := DecodeRecord(b[used:])
			if err != nil {
				break
			}
			used += m
		}
		if used == 0 {
			if n == len(buf) && len(buf) < MaxPayload+headerLen {
				// A record longer than the buffer.
				buf = make([]byte, min(len(buf)*4, MaxPayload+headerLen))
				continue
			}
			return off, nil
		}
		off += int64(used)
	}
	return off, nil
}

// countFrom counts the entries from p to the end.
func (s *Spool) countFrom(p Pos) (uint64, error) {
	var total uint64
	for _, g := range s.segs {
		if g.id < p.Seg {
			continue
		}
		off := uint64(0)
		if g.id == p.Seg {
			off = p.Off
		}
		n, err := s.countSeg(g, off)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func (s *Spool) countSeg(g *segment, off uint64) (uint64, error) {
	var n uint64
	for int64(off) < g.size {
		recs, next, _, err := s.readSeg(g, off, 1<<30)
		if err != nil {
			return n, err
		}
		for _, r := range recs {
			n += s.opt.Count(r.Payload)
		}
		if next == off {
			break
		}
		off = next
	}
	return n, nil
}

// readSeg decodes records of g from off, up to about maxBytes. It returns
// the offset after the last whole record and whether a damaged record
// stopped it.
func (s *Spool) readSeg(g *segment, off uint64, maxBytes int) ([]Rec, uint64, bool, error) {
	recs, next, bad, _, err := s.readSegInto(g, off, maxBytes, nil, nil)
	return recs, next, bad, err
}

// readSegInto is readSeg reading into buf and appending to recs[:0] when
// they are large enough; it returns the buffer it used.
func (s *Spool) readSegInto(g *segment, off uint64, maxBytes int, scratch []byte, out []Rec) ([]Rec, uint64, bool, []byte, error) {
	want := int(min(int64(maxBytes), g.size-int64(off), 1<<20))
	if want <= 0 {
		return nil, off, false, scratch, nil
	}
	for {
		if cap(scratch) < want {
			scratch = make([]byte, want)
		}
		buf := scratch[:want]
		n, err := g.readAt(buf, int64(off))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, off, false, scratch, fmt.Errorf("spool: reading segment %d: %w", g.id, err)
		}
		buf = buf[:n]
		recs := out[:0]
		used := 0
		for used < len(buf) {
			p, m, err := DecodeRecord(buf[used:])
			if errors.Is(err, errShort) {
				break
			}
			if err != nil {
				return recs, off + uint64(used), true, scratch, nil
			}
			used += m
			recs = append(recs, Rec{Payload: p, End: Pos{Seg: g.id, Off: off + uint64(used)}})
		}
		if used > 0 || int64(off)+int64(n) >= g.size && n < want {
			return recs, off + uint64(used), false, scratch, nil
		}
		if int64(off)+int64(want) >= g.size {
			// A short record at the end of committed data: damaged.
			return nil, off, true, scratch, nil
		}
		want = int(min(int64(want)*4, g.size-int64(off)))
	}
}

func (s *Spool) newSegment(id uint64) error {
	g := &segment{id: id}
	if s.opt.Dir != "" {
		f, err := os.OpenFile(filepath.Join(s.opt.Dir, segName(id)), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("spool: new segment: %w", err)
		}
		g.f = f
	}
	s.segs = append(s.segs, g)
	return nil
}

// writeHeader puts the Header payload into the (new, empty) last segment.
func (s *Spool) writeHeader() error {
	if s.opt.Header == nil {
		return nil
	}
	return s.write(AppendRecord(nil, s.opt.Header()))
}

func (s *Spool) write(b []byte) error {
	g := s.segs[len(s.segs)-1]
	// The tail's chunk must be placed before the write moves the
	// segment's end.
	c := s.tailRoom(g, len(b))
	if err := s.writeSeg(g, b); err != nil {
		return err
	}
	if c != nil {
		c.data = append(c.data, b...)
		s.tailBytes += int64(len(b))
		s.trimTail()
	}
	return nil
}

// writeSeg appends b to g, the last segment, in one write.
func (s *Spool) writeSeg(g *segment, b []byte) error {
	if g.f == nil {
		g.mem = append(g.mem, b...)
	} else if _, err := g.f.Write(b); err != nil {
		// Cut back what may have been written, so the segment stays whole records.
		g.f.Truncate(g.size)
		return fmt.Errorf("spool: writing: %w", err)
	}
	g.size += int64(len(b))
	s.total += int64(len(b))
	return nil
}

// tailRoom returns the chunk of the memory tail that will hold the n
// bytes about to be written at the end of segment g (file segments only),
// with room for them after its data; nil when the tail keeps none.
func (s *Spool) tailRoom(g *segment, n int) *chunk {
	if s.opt.TailBytes <= 0 || g.f == nil {
		return nil
	}
	if int64(n) > s.opt.TailBytes {
		s.dropTail()
		return nil
	}
	s.retireTail()
	var c *chunk
	if k := len(s.tail); k > 0 {
		c = s.tail[k-1]
		if c.seg != g.id || c.end() != uint64(g.size) {
			// Not contiguous (a write the tail missed): start over.
			s.dropTail()
			c = nil
		} else if cap(c.data)-len(c.data) < n {
			c = nil
		}
	}
	if c == nil {
		if k := len(s.free); k > 0 && cap(s.free[k-1].data) >= n {
			c, s.free = s.free[k-1], s.free[:k-1]
			c.data = c.data[:0]
		} else {
			c = &chunk{data: make([]byte, 0, max(min(tailChunkBytes, s.opt.TailBytes), int64(n)))}
			s.chunksMade++
		}
		c.seg, c.off = g.id, uint64(g.size)
		s.tail = append(s.tail, c)
	}
	return c
}

// trimTail drops the oldest chunks while the tail is over its bound: the
// reader is that far behind and reads them from the file.
func (s *Spool) trimTail() {
	for s.tailBytes > s.opt.TailBytes && len(s.tail) > 1 {
		s.retire()
	}
}

// retire removes the oldest chunk of the tail. With ReuseReads it is
// kept to be filled again once the next Read has begun: records Read
// returned before are dead by then.
func (s *Spool) retire() {
	c := s.tail[0]
	s.tailBytes -= int64(len(c.data))
	s.tail[0] = nil
	s.tail = s.tail[1:]
	// Only chunks of the usual size are kept: one made for a larger
	// Append is dropped, so the spares stay within 2 MiB.
	if s.opt.ReuseReads && cap(c.data) <= tailChunkBytes && len(s.spare)+len(s.free) < maxSpareChunks {
		s.spare = append(s.spare, c)
	}
}

// maxSpareChunks bounds the chunks kept for reuse.
const maxSpareChunks = 2

// retireTail removes the chunks Read has consumed (all but the newest).
func (s *Spool) retireTail() {
	for len(s.tail) > 1 {
		c := s.tail[0]
		if c.seg > s.read.Seg || c.seg == s.read.Seg && c.end() > s.read.Off {
			return
		}
		s.retire()
	}
}

func (s *Spool) dropTail() {
	clear(s.tail)
	s.tail, s.tailBytes = s.tail[:0], 0
}

// readTail decodes records of segment seg from off out of the memory
// tail, if it holds them: records of one chunk, up to about maxBytes and
// maxRecs (0: no bound), as slices of the chunk.
func (s *Spool) readTail(seg, off uint64, maxBytes, maxRecs int, out []Rec) ([]Rec, uint64, bool) {
	for _, c := range s.tail {
		if c.seg != seg || off < c.off || off >= c.end() {
			continue
		}
		b := c.data[off-c.off:]
		recs := out[:0]
		used := 0
		for used < len(b) && (used < maxBytes || used == 0) && (maxRecs <= 0 || len(recs) < maxRecs) {
			// The tail holds the records as they were made for the
			// file: whole, and their checksums need no check.
			if len(b)-used < headerLen {
				return nil, off, false // cannot happen; the file is the authority
			}
			l := int(binary.LittleEndian.Uint32(b[used:]))
			if len(b)-used-headerLen < l {
				return nil, off, false
			}
			p, m := b[used+headerLen:used+headerLen+l:used+headerLen+l], headerLen+l
			used += m
			recs = append(recs, Rec{Payload: p, End: Pos{Seg: seg, Off: off + uint64(used)}})
		}
		return recs, off + uint64(used), true
	}
	return nil, off, false
}

// Append adds payloads at the end (as one write), starting a new segment
// first if the current one is full and dropping the oldest segments
// while the spool is over its bound.
func (s *Spool) Append(payloads ...[]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("spool: closed")
	}
	var entries uint64
	n := 0
	for _, p := range payloads {
		if len(p) > MaxPayload {
			return fmt.Errorf("spool: payload of %d bytes (at most %d)", len(p), MaxPayload)
		}
		n += headerLen + len(p)
		entries += s.opt.Count(p)
	}
	last := s.segs[len(s.segs)-1]
	if last.size > 0 && last.size+int64(n) > s.opt.SegmentBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	// The records are made where they will stay: in the memory tail
	// when it keeps them (so they are copied once), else in s.buf.
	g := s.segs[len(s.segs)-1]
	c := s.tailRoom(g, n)
	buf := s.buf[:0]
	if c != nil {
		buf = c.data[len(c.data):len(c.data)]
	}
	for _, p := range payloads {
		buf = AppendRecord(buf, p)
	}
	if c == nil {
		s.buf = buf
	}
	if err := s.writeSeg(g, buf); err != nil {
		return err
	}
	if c != nil {
		c.data = c.data[:len(c.data)+n]
		s.tailBytes += int64(n)
		s.trimTail()
	}
	s.pending += entries
	for s.total > s.opt.MaxBytes && len(s.segs) > 1 {
		if err := s.dropOldest(); err != nil {
			return err
		}
	}
	switch s.opt.Sync {
	case SyncAlways:
		if g := s.segs[len(s.segs)-1]; g.f != nil {
			if err := g.f.Sync(); err != nil {
				return fmt.Errorf("spool: sync: %w", err)
			}
		}
	case SyncCheckpoint:
		s.dirty = true
	}
	close(s.notify)
	s.notify = make(chan struct{})
	return nil
}

func (s *Spool) rotate() error {
	last := s.segs[len(s.segs)-1]
	if last.f != nil && s.opt.Sync != SyncNone {
		if err := last.f.Sync(); err != nil {
			return fmt.Errorf("spool: sync: %w", err)
		}
	}
	if err := s.newSegment(last.id + 1); err != nil {
		return err
	}
	return s.writeHeader()
}

// dropOldest removes the oldest segment, counting the entries in it that
// were not read yet.
func (s *Spool) dropOldest() error {
	g := s.segs[0]
	next := Pos{Seg: s.segs[1].id}
	if s.read.Seg <= g.id {
		off := uint64(0)
		if s.read.Seg == g.id {
			off = s.read.Off
		}
		n, err := s.countSeg(g, off)
		if err != nil {
			return err
		}
		s.lost += n
		s.pending -= min(s.pending, n)
		s.read = next
	}
	if s.ack.Seg <= g.id {
		// Records read but not acknowledged yet are the reader's to
		// keep (it resends them from memory).
		s.ack = next
	}
	s.segs = s.segs[1:]
	s.total -= g.size
	if g.f != nil {
		g.f.Close()
		if err := os.Remove(g.f.Name()); err != nil {
			return fmt.Errorf("spool: dropping a segment: %w", err)
		}
	}
	return s.writeAck()
}

// Read returns the next records after the previous Read (starting at the
// acknowledged position after Open), waiting until there is at least one
// or lost entries to report, or ctx ends; at most maxRecs records (0: no
// bound) of about maxBytes. lost is the number of entries
// dropped (spool full) before they could be read; damaged is set when a
// damaged record was skipped (its entries are lost, number unknown). The
// records stay valid after later calls, unless Options.ReuseReads is set.
func (s *Spool) Read(ctx context.Context, maxBytes, maxRecs int) (recs []Rec, lost uint64, damaged bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// What earlier Reads returned is dead now: consumed chunks can be
	// filled again.
	s.free = append(s.free, s.spare...)
	clear(s.spare)
	s.spare = s.spare[:0]
	for {
		if s.closed {
			return nil, 0, false, errors.New("spool: closed")
		}
		gi := s.segIndex(s.read.Seg)
		if gi < 0 {
			s.read = Pos{Seg: s.segs[0].id}
			gi = 0
		}
		g := s.segs[gi]
		if int64(s.read.Off) >= g.size && gi < len(s.segs)-1 {
			s.read = Pos{Seg: s.segs[gi+1].id}
			continue
		}
		if int64(s.read.Off) < g.size {
			var (
				rs   []Rec
				next uint64
				bad  bool
				err  error
			)
			var out []Rec
			if s.opt.ReuseReads {
				out = s.rrecs
			}
			if rs, next, ok := s.readTail(g.id, s.read.Off, maxBytes, maxRecs, out); ok {
				if s.opt.ReuseReads && cap(rs) > cap(s.rrecs) {
					s.rrecs = rs[:0]
				}
				s.memReads++
				s.read.Off = next
				recs = rs
				goto got
			}
			s.fileReads++
			if s.opt.ReuseReads {
				rs, next, bad, s.rbuf, err = s.readSegInto(g, s.read.Off, maxBytes, s.rbuf, s.rrecs)
				if cap(rs) > cap(s.rrecs) {
					s.rrecs = rs[:0]
				}
			} else {
				rs, next, bad, err = s.readSeg(g, s.read.Off, maxBytes)
			}
			if err != nil {
				return nil, 0, false, err
			}
			if maxRecs > 0 && len(rs) > maxRecs {
				rs, next, bad = rs[:maxRecs], rs[maxRecs-1].End.Off, false
			}
			s.read.Off = next
			if bad {
				s.damaged = true
				if gi < len(s.segs)-1 {
					s.read = Pos{Seg: s.segs[gi+1].id}
				} else {
					s.read.Off = uint64(g.size)
				}
			}
			recs = rs
		}
	got:
		if len(recs) > 0 || s.lost > 0 || s.damaged {
			lost, damaged = s.lost, s.damaged
			s.lost, s.damaged = 0, false
			return recs, lost, damaged, nil
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			s.mu.Lock()
			return nil, 0, false, ctx.Err()
		case <-ch:
		}
		s.mu.Lock()
	}
}

func (s *Spool) segIndex(id uint64) int {
	for i, g := range s.segs {
		if g.id == id {
			return i
		}
	}
	return -1
}

// Ack records that everything up to p is delivered (entries is how many
// entries that was) and removes segments that are wholly delivered.
func (s *Spool) Ack(p Pos, entries uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending -= min(s.pending, entries)
	if !s.ack.Less(p) {
		return nil
	}
	s.ack = p
	for len(s.segs) > 1 && s.segs[0].id < p.Seg {
		g := s.segs[0]
		s.segs = s.segs[1:]
		s.total -= g.size
		if g.f != nil {
			g.f.Close()
			if err := os.Remove(g.f.Name()); err != nil {
				return fmt.Errorf("spool: removing a delivered segment: %w", err)
			}
		}
	}
	return s.writeAck()
}

// Rewind makes the next Read start again at the acknowledged position
// (after the reader lost what it had read but not delivered).
func (s *Spool) Rewind() {
	s.mu.Lock()
	s.read = s.ack
	s.mu.Unlock()
}

// writeAck writes the ack position and the unreported loss into the
// older of the two slots.
func (s *Spool) writeAck() error {
	if s.ackf == nil {
		return nil
	}
	s.gen++
	var b [slotLen]byte
	copy(b[0:4], "LFAK")
	binary.LittleEndian.PutUint64(b[4:12], s.gen)
	binary.LittleEndian.PutUint64(b[12:20], s.ack.Seg)
	binary.LittleEndian.PutUint64(b[20:28], s.ack.Off)
	binary.LittleEndian.PutUint64(b[28:36], s.lost)
	binary.LittleEndian.PutUint32(b[44:48], crc32.Checksum(b[:44], castagnoli))
	if _, err := s.ackf.WriteAt(b[:], int64(s.gen%2)*slotLen); err != nil {
		return fmt.Errorf("spool: saving the acknowledged position: %w", err)
	}
	if s.opt.Sync == SyncAlways {
		if err := s.ackf.Sync(); err != nil {
			return fmt.Errorf("spool: sync: %w", err)
		}
	}
	return nil
}

// readAck returns the newest valid slot of the ack file.
func readAck(f *os.File) (p Pos, lost, gen uint64, ok bool) {
	var b [2 * slotLen]byte
	n, _ := f.ReadAt(b[:], 0)
	for i := 0; i+slotLen <= n; i += slotLen {
		sl := b[i : i+slotLen]
		if string(sl[0:4]) != "LFAK" || crc32.Checksum(sl[:44], castagnoli) != binary.LittleEndian.Uint32(sl[44:48]) {
			continue
		}
		g := binary.LittleEndian.Uint64(sl[4:12])
		if ok && g <= gen {
			continue
		}
		gen, ok = g, true
		p = Pos{Seg: binary.LittleEndian.Uint64(sl[12:20]), Off: binary.LittleEndian.Uint64(sl[20:28])}
		lost = binary.LittleEndian.Uint64(sl[28:36])
	}
	return p, lost, gen, ok
}

// Sync fsyncs the newest segment if it was written since the last Sync
// (policy checkpoint), and the ack file.
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty || s.closed {
		return nil
	}
	s.dirty = false
	if g := s.segs[len(s.segs)-1]; g.f != nil {
		if err := g.f.Sync(); err != nil {
			return fmt.Errorf("spool: sync: %w", err)
		}
	}
	if s.ackf != nil {
		if err := s.ackf.Sync(); err != nil {
			return fmt.Errorf("spool: sync: %w", err)
		}
	}
	return nil
}

// Last returns the payloads of the newest segment (for a caller that
// needs to find where appending stopped).
func (s *Spool) Last() ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.segs[len(s.segs)-1]
	var out [][]byte
	off := uint64(0)
	for int64(off) < g.size {
		recs, next, bad, err := s.readSeg(g, off, 1<<20)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out = append(out, r.Payload)
		}
		if bad || next == off {
			break
		}
		off = next
	}
	return out, nil
}

// BeforeAck returns the payloads of the acknowledged position's segment
// that come before that position (a caller that writes headers finds the
// one in effect there).
func (s *Spool) BeforeAck() ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gi := s.segIndex(s.ack.Seg)
	if gi < 0 {
		return nil, nil
	}
	g := s.segs[gi]
	var out [][]byte
	off := uint64(0)
	for off < s.ack.Off {
		recs, next, bad, err := s.readSeg(g, off, int(s.ack.Off-off))
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out = append(out, r.Payload)
		}
		if bad || next == off {
			break
		}
		off = next
	}
	return out, nil
}

// Stats returns the spool's figures.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Bytes: s.total - int64(s.ack.Off), Entries: s.pending, Memory: s.opt.Dir == "", TailReads: s.memReads, FileReads: s.fileReads}
}

// Close closes the files. Waiting Reads return an error.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.notify)
	s.notify = make(chan struct{})
	var errs []error
	for _, g := range s.segs {
		if g.f != nil {
			if s.opt.Sync != SyncNone {
				errs = append(errs, g.f.Sync())
			}
			errs = append(errs, g.f.Close())
		}
	}
	if s.ackf != nil {
		errs = append(errs, s.ackf.Close())
	}
	return errors.Join(errs...)
}
