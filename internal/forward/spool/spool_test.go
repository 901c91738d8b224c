package spool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readN(t *testing.T, s *Spool, n int) (got []string, lost uint64, last Pos) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(got) < n {
		recs, l, damaged, err := s.Read(ctx, 4096, 0)
		if err != nil {
			t.Fatalf("Read after %d records: %v", len(got), err)
		}
		if damaged {
			t.Fatal("damaged")
		}
		lost += l
		for _, r := range recs {
			got = append(got, string(r.Payload))
			last = r.End
		}
		if len(recs) == 0 && l > 0 && len(got)+int(lost) >= n {
			break
		}
	}
	return got, lost, last
}

func payloads(from, to int) [][]byte {
	var out [][]byte
	for i := from; i < to; i++ {
		out = append(out, []byte("entry "+strconv.Itoa(i)))
	}
	return out
}

func TestAppendReadAckReopen(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		s, err := Open(Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(payloads(0, 100)...); err != nil {
			t.Fatal(err)
		}
		got, lost, _ := readN(t, s, 100)
		if lost != 0 || got[0] != "entry 0" || got[99] != "entry 99" {
			t.Fatalf("got %q lost %d", got, lost)
		}
		if st := s.Stats(); st.Entries != 100 || st.Memory != (dir == "") {
			t.Fatalf("stats %+v", st)
		}
		// Many appends: several segments; acknowledge part, reopen.
		for i := 100; i < 300; i += 10 {
			if err := s.Append(payloads(i, i+10)...); err != nil {
				t.Fatal(err)
			}
		}
		got, _, _ = readN(t, s, 200)
		if got[0] != "entry 100" || got[199] != "entry 299" {
			t.Fatalf("second read %q..%q", got[0], got[len(got)-1])
		}
		if len(s.segs) < 3 {
			t.Fatalf("only %d segments", len(s.segs))
		}
		// Acknowledge up to entry 149 by reading again from the start.
		s.Rewind()
		all, _, _ := readN(t, s, 300)
		_ = all
		s.Rewind()
		ctx := context.Background()
		var ackAt Pos
		n := 0
		for n < 150 {
			recs, _, _, err := s.Read(ctx, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if n < 150 {
					ackAt = r.End
				}
				n++
			}
		}
		if err := s.Ack(ackAt, 150); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Entries != 150 {
			t.Fatalf("pending %d want 150", st.Entries)
		}
		if dir == "" {
			s.Close()
			continue
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = Open(Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 1000})
		if err != nil {
			t.Fatal(err)
		}
		got, _, _ = readN(t, s, 150)
		if got[0] != "entry 150" || got[149] != "entry 299" {
			t.Fatalf("after reopen %q..%q", got[0], got[len(got)-1])
		}
		if st := s.Stats(); st.Entries != 150 {
			t.Fatalf("pending after reopen %d", st.Entries)
		}
		s.Close()
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s.Append(payloads(0, 10)...)
	s.Close()
	// A write cut short by a crash: half a record at the end.
	p := filepath.Join(dir, segName(1))
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	rec := AppendRecord(nil, []byte("entry 10 that was never whole"))
	f.Write(rec[:len(rec)-5])
	f.Close()
	s, err = Open(Options{Dir: dir, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(payloads(11, 12)...); err != nil {
		t.Fatal(err)
	}
	got, _, _ := readN(t, s, 11)
	want := append(payloads(0, 10), []byte("entry 11"))
	for i := range want {
		if got[i] != string(want[i]) {
			t.Fatalf("record %d: %q want %q", i, got[i], want[i])
		}
	}
}

// A spool too small: the oldest unread entries are dropped and counted
// exactly; with a Count function, records stand for several entries.
func TestDropCounts(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		count := func(p []byte) uint64 {
			if bytes.HasPrefix(p, []byte("hdr")) {
				return 0
			}
			return 1
		}
		s, err := Open(Options{Dir: dir, MaxBytes: 4000, SegmentBytes: 1000, Count: count, Header: func() []byte { return []byte("hdr") }})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1000; i++ {
			if err := s.Append(payloads(i, i+1)...); err != nil {
				t.Fatal(err)
			}
		}
		if s.total > 4000 {
			t.Fatalf("total %d over bound", s.total)
		}
		var got []string
		ctx := context.Background()
		recs, lost, _, err := s.Read(ctx, 1<<20, 0)
		if err != nil {
			t.Fatal(err)
		}
		for {
			for _, r := range recs {
				if !strings.HasPrefix(string(r.Payload), "hdr") {
					got = append(got, string(r.Payload))
				}
			}
			if len(got) > 0 && got[len(got)-1] == "entry 999" {
				break
			}
			recs, _, _, err = s.Read(ctx, 1<<20, 0)
			if err != nil {
				t.Fatal(err)
			}
		}
		first, _ := strconv.Atoi(strings.TrimPrefix(got[0], "entry "))
		if uint64(first) != lost || len(got) != 1000-first {
			t.Fatalf("lost %d, first kept %d, kept %d", lost, first, len(got))
		}
		for i, g := range got {
			if g != fmt.Sprintf("entry %d", first+i) {
				t.Fatalf("kept %q at %d", g, i)
			}
		}
		s.Close()
	}
}

func TestReadWaits(t *testing.T) {
	s, _ := Open(Options{MaxBytes: 1 << 20})
	defer s.Close()
	done := make(chan string, 1)
	go func() {
		recs, _, _, err := s.Read(context.Background(), 100, 0)
		if err != nil || len(recs) != 1 {
			done <- fmt.Sprint(err, len(recs))
			return
		}
		done <- string(recs[0].Payload)
	}()
	s.Append([]byte("x"))
	select {
	case got := <-done:
		if got != "x" {
			t.Fatal(got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Read did not return")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, _, err := s.Read(ctx, 100, 0); err == nil {
		t.Fatal("Read with a cancelled context and nothing to read returned no error")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, []byte("hello")))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 'x'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := DecodeRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendRecord(nil, p), b[:n]) {
			t.Fatalf("decoded %q from %q", p, b[:n])
		}
	})
}

// BenchmarkAppend measures the spool's write rate (b.SetBytes: MB/s) with
// batches of 1024 records of 200 bytes, as the reader appends them.
func BenchmarkAppend(b *testing.B) {
	for _, sync := range []string{SyncNone, SyncCheckpoint} {
		b.Run(sync, func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), MaxBytes: 256 << 20, Sync: sync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := make([][]byte, 1024)
			for i := range batch {
				batch[i] = bytes.Repeat([]byte{'x'}, 200)
			}
			b.SetBytes(1024 * 200)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Append(batch...); err != nil {
					b.Fatal(err)
				}
				if i%64 == 0 {
					s.Sync()
				}
			}
		})
	}
}

// With ReuseReads, Read returns the same records (positions included) as
// without, across segments, with the ack and a reopen unchanged, and in
// the steady state allocates nothing.
func TestReuseReads(t *testing.T) {
	for _, dir := range []bool{true, false} {
		t.Run(fmt.Sprintf("disk=%v", dir), func(t *testing.T) {
			opt := Options{MaxBytes: 1 << 20, SegmentBytes: 4096, ReuseReads: true}
			if dir {
				opt.Dir = t.TempDir()
			}
			s, err := Open(opt)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			want := payloads(0, 2000)
			for i := 0; i < len(want); i += 100 {
				if err := s.Append(want[i : i+100]...); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var got []string
			var prev Pos
			for len(got) < len(want) {
				recs, lost, damaged, err := s.Read(ctx, 1000, 7)
				if err != nil || lost != 0 || damaged {
					t.Fatalf("Read after %d: %v lost %d damaged %v", len(got), err, lost, damaged)
				}
				if len(recs) == 0 || len(recs) > 7 {
					t.Fatalf("Read gave %d records", len(recs))
				}
				for _, r := range recs {
					if !prev.Less(r.End) {
						t.Fatalf("position %v after %v", r.End, prev)
					}
					prev = r.End
					got = append(got, string(r.Payload)) // copied before the next Read
				}
				if err := s.Ack(recs[len(recs)-1].End, uint64(len(recs))); err != nil {
					t.Fatal(err)
				}
			}
			for i := range want {
				if got[i] != string(want[i]) {
					t.Fatalf("record %d: %q, want %q", i, got[i], want[i])
				}
			}
			if st := s.Stats(); st.Entries != 0 {
				t.Fatalf("%d entries pending after all were acknowledged", st.Entries)
			}
			// Steady state: a Read of what fits the buffer allocates nothing.
			if err := s.Append(want[:7]...); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := s.Read(ctx, 1000, 0); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(20, func() {
				s.mu.Lock()
				s.read = s.ack
				s.mu.Unlock()
				if recs, _, _, err := s.Read(ctx, 1000, 0); err != nil || len(recs) != 7 {
					t.Fatalf("Read: %d records, %v", len(recs), err)
				}
			})
			if allocs != 0 {
				t.Fatalf("Read allocates %.1f times with ReuseReads", allocs)
			}
		})
	}
}

// BenchmarkRead reads back batches of 1024 records of 200 bytes, with
// and without ReuseReads.
func BenchmarkRead(b *testing.B) {
	for _, reuse := range []bool{false, true} {
		b.Run(fmt.Sprintf("reuse=%v", reuse), func(b *testing.B) {
			s, err := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 30, Sync: SyncNone, ReuseReads: reuse})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batch := make([][]byte, 1024)
			for i := range batch {
				batch[i] = bytes.Repeat([]byte{'x'}, 200)
			}
			ctx := context.Background()
			b.SetBytes(1024 * 200)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if err := s.Append(batch...); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				n := 0
				for n < len(batch) {
					recs, _, _, err := s.Read(ctx, 256<<10, 0)
					if err != nil {
						b.Fatal(err)
					}
					n += len(recs)
					if err := s.Ack(recs[len(recs)-1].End, uint64(len(recs))); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// A reader that keeps up takes the records from the memory tail, never
// from the files; one that fell behind further than the tail holds reads
// the files until it has caught up; a reopened spool reads the files.
// The records are the same in every case.
func TestTail(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 4096, TailBytes: 2048, ReuseReads: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := 0 // next payload expected
	read := func(n int) {
		t.Helper()
		for got := 0; got < n; {
			recs, lost, damaged, err := s.Read(ctx, 1000, 0)
			if err != nil || lost != 0 || damaged {
				t.Fatalf("Read: %v lost %d damaged %v", err, lost, damaged)
			}
			for _, r := range recs {
				if want := "entry " + strconv.Itoa(next); string(r.Payload) != want {
					t.Fatalf("read %q, want %q", r.Payload, want)
				}
				next++
				got++
			}
			if err := s.Ack(recs[len(recs)-1].End, uint64(len(recs))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Keeping up, across segments.
	for i := 0; i < 500; i += 5 {
		if err := s.Append(payloads(i, i+5)...); err != nil {
			t.Fatal(err)
		}
		read(5)
	}
	if st := s.Stats(); st.FileReads != 0 || st.TailReads == 0 {
		t.Fatalf("keeping up: %d reads from the files, %d from memory; want all from memory", st.FileReads, st.TailReads)
	}
	// Behind by far more than the tail's 2048 bytes.
	if err := s.Append(payloads(500, 1000)...); err != nil {
		t.Fatal(err)
	}
	read(500)
	behind := s.Stats()
	if behind.FileReads == 0 {
		t.Fatalf("behind: no read from the files (the tail holds at most 2048 bytes)")
	}
	// Caught up: memory again.
	for i := 1000; i < 1200; i += 10 {
		if err := s.Append(payloads(i, i+10)...); err != nil {
			t.Fatal(err)
		}
		read(10)
	}
	if st := s.Stats(); st.FileReads != behind.FileReads || st.TailReads == behind.TailReads {
		t.Fatalf("caught up: file reads %d -> %d, memory reads %d -> %d", behind.FileReads, st.FileReads, behind.TailReads, st.TailReads)
	}
	// Unacknowledged records are read from the files after a reopen.
	if err := s.Append(payloads(1200, 1300)...); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 4096, TailBytes: 2048, ReuseReads: true}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	read(100)
	if st := s.Stats(); st.FileReads == 0 || st.TailReads != 0 {
		t.Fatalf("after a reopen: %d reads from the files, %d from memory", st.FileReads, st.TailReads)
	}
	// New records after the reopen come from memory again.
	if err := s.Append(payloads(1300, 1310)...); err != nil {
		t.Fatal(err)
	}
	read(10)
	if st := s.Stats(); st.TailReads == 0 {
		t.Fatalf("after a reopen, new records: not read from memory")
	}
}

// An appender and a reader at once (run with -race): with ReuseReads and
// chunks of the tail filled again, every record a Read returned stays
// intact until the next Read, and all arrive in order.
func TestTailConcurrent(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), MaxBytes: 64 << 20, SegmentBytes: 64 << 10, TailBytes: 8 << 10, ReuseReads: true, Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const total = 20000
	errc := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += 50 {
			if err := s.Append(payloads(i, i+50)...); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var prev []Rec
	prevFirst, next := 0, 0
	for next < total {
		// The previous Read's records are still whole.
		for k, r := range prev {
			if want := "entry " + strconv.Itoa(prevFirst+k); string(r.Payload) != want {
				t.Fatalf("a record changed before the next Read: %q, want %q", r.Payload, want)
			}
		}
		recs, lost, damaged, err := s.Read(ctx, 1500, 0)
		if err != nil || lost != 0 || damaged {
			t.Fatalf("Read after %d: %v lost %d damaged %v", next, err, lost, damaged)
		}
		prevFirst = next
		for _, r := range recs {
			if want := "entry " + strconv.Itoa(next); string(r.Payload) != want {
				t.Fatalf("read %q, want %q", r.Payload, want)
			}
			next++
		}
		if err := s.Ack(recs[len(recs)-1].End, uint64(len(recs))); err != nil {
			t.Fatal(err)
		}
		prev = recs
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	t.Logf("%d reads from memory, %d from the files", st.TailReads, st.FileReads)
}

// A reader that falls further and further behind reads the files, and
// the tail's chunks dropped meanwhile are filled again rather than new
// ones made for every chunk's worth of records.
func TestTailBehindReusesChunks(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), MaxBytes: 64 << 20, TailBytes: 4096, ReuseReads: true, Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := 0
	for i := 0; i < 20000; i += 20 {
		if err := s.Append(payloads(i, i+20)...); err != nil {
			t.Fatal(err)
		}
		if i%100 != 0 {
			continue
		}
		recs, _, _, err := s.Read(ctx, 1000, 30)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if want := "entry " + strconv.Itoa(next); string(r.Payload) != want {
				t.Fatalf("read %q, want %q", r.Payload, want)
			}
			next++
		}
	}
	if st := s.Stats(); st.FileReads == 0 {
		t.Fatal("the reader fell behind and still read nothing from the files")
	}
	// About 300 KB went through a tail of 4 KiB chunks.
	if s.chunksMade > 2*maxSpareChunks {
		t.Fatalf("%d chunks made for the tail; want them reused", s.chunksMade)
	}
}

// With a Header (what logforward writes first in every segment), records
// read from the memory tail are the file's records at the same offsets:
// the header and the entries after it, in order, across segments and a
// reopen.
func TestTailWithHeader(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Dir: dir, MaxBytes: 1 << 20, SegmentBytes: 4096, TailBytes: 2048, ReuseReads: true,
		Header: func() []byte { return []byte("header") }}
	s, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next, headers := 0, 0
	read := func(n int) {
		t.Helper()
		for got := 0; got < n; {
			recs, lost, damaged, err := s.Read(ctx, 1000, 0)
			if err != nil || lost != 0 || damaged {
				t.Fatalf("Read: %v lost %d damaged %v", err, lost, damaged)
			}
			for _, r := range recs {
				if string(r.Payload) == "header" {
					headers++
					continue
				}
				if want := "entry " + strconv.Itoa(next); string(r.Payload) != want {
					t.Fatalf("read %q, want %q", r.Payload, want)
				}
				next++
				got++
			}
			if err := s.Ack(recs[len(recs)-1].End, uint64(len(recs))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 500; i += 5 {
		if err := s.Append(payloads(i, i+5)...); err != nil {
			t.Fatal(err)
		}
		read(5)
	}
	// A reader that keeps up reads every record from memory, the
	// headers at the start of each segment too (a chunk placed after
	// the header it holds made them, and the first records after
	// them, come from the file).
	if st := s.Stats(); st.TailReads == 0 || st.FileReads != 0 || headers < 2 {
		t.Fatalf("%d reads from memory, %d from the file, %d headers", st.TailReads, st.FileReads, headers)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(opt); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 500; i < 600; i += 5 {
		if err := s.Append(payloads(i, i+5)...); err != nil {
			t.Fatal(err)
		}
		read(5)
	}
}
