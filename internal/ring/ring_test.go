package ring

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func mustNew(t testing.TB, c Config) *Ring {
	t.Helper()
	r, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func entry(src, msg string) Entry {
	return Entry{Source: []byte(src), Msg: []byte(msg), Time: 1}
}

func readAll(r *Ring, cursor uint64) (Batch, []string) {
	var b Batch
	r.Read(cursor, &b, 1<<20, 1<<20)
	var msgs []string
	for _, e := range b.Entries {
		msgs = append(msgs, string(e.Msg))
	}
	return b, msgs
}

func TestNewRejectsBadBounds(t *testing.T) {
	if _, err := New(Config{MaxEntries: 0, MaxBytes: MinBytes}); err == nil {
		t.Error("0 entries accepted")
	}
	if _, err := New(Config{MaxEntries: 10, MaxBytes: MinBytes - 1}); err == nil {
		t.Error("tiny arena accepted")
	}
}

func TestSequenceAndFields(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 10, MaxBytes: MinBytes})
	last := r.Append(Entry{Time: 5, OrigTime: 6, Source: []byte("src"), Msg: []byte("m1"), SD: []byte(`[x a="1"]`),
		PID: 42, Facility: 3, Severity: SevErr, Flags: FlagHasPID}, entry("s2", ""))
	if last != 2 {
		t.Fatalf("last seq %d, want 2", last)
	}
	b, msgs := readAll(r, 0)
	if b.Lost != 0 {
		t.Errorf("cursor 0 before seq 1 reported %d lost", b.Lost)
	}
	if len(msgs) != 2 || msgs[0] != "m1" || msgs[1] != "" {
		t.Fatalf("msgs %q", msgs)
	}
	e := b.Entries[0]
	if e.Seq != 1 || e.Time != 5 || e.OrigTime != 6 || string(e.Source) != "src" || string(e.SD) != `[x a="1"]` ||
		e.PID != 42 || e.Facility != 3 || e.Severity != SevErr || e.Flags != FlagHasPID {
		t.Errorf("entry %+v", e)
	}
	if b.Entries[1].Seq != 2 || b.Next != 3 {
		t.Errorf("seq %d next %d", b.Entries[1].Seq, b.Next)
	}
	if f, n := r.Bounds(); f != 1 || n != 3 {
		t.Errorf("bounds %d %d", f, n)
	}
}

func TestWrapByEntriesCountsLoss(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 10, MaxBytes: MinBytes})
	for i := 1; i <= 25; i++ {
		r.Append(entry("s", fmt.Sprint(i)))
	}
	b, msgs := readAll(r, 1)
	if b.Lost != 15 {
		t.Errorf("lost %d, want 15", b.Lost)
	}
	if len(msgs) != 10 || msgs[0] != "16" || msgs[9] != "25" {
		t.Errorf("msgs %q", msgs)
	}
	// A reader inside the ring loses nothing.
	b, msgs = readAll(r, 20)
	if b.Lost != 0 || len(msgs) != 6 || msgs[0] != "20" {
		t.Errorf("lost %d msgs %q", b.Lost, msgs)
	}
	// A cursor past the end reads nothing and stays put.
	b, _ = readAll(r, 40)
	if len(b.Entries) != 0 || b.Next != 40 || b.Lost != 0 {
		t.Errorf("past end: %+v", b)
	}
}

func TestWrapByBytesKeepsContent(t *testing.T) {
	const arena = MinBytes
	r := mustNew(t, Config{MaxEntries: 1000, MaxBytes: arena})
	rng := rand.New(rand.NewPCG(1, 2))
	var all []string
	for i := 0; i < 5000; i++ {
		n := rng.IntN(900)
		msg := fmt.Sprintf("%d:", i) + string(bytes.Repeat([]byte{byte('a' + i%26)}, n))
		all = append(all, msg)
		r.Append(entry(fmt.Sprint("src", i%7), msg))
		if i%97 != 0 {
			continue
		}
		b, msgs := readAll(r, 1)
		first := b.Entries[0].Seq
		if b.Lost != first-1 {
			t.Fatalf("lost %d but first held is %d", b.Lost, first)
		}
		total := 0
		for j, e := range b.Entries {
			want := all[int(first)-1+j]
			if msgs[j] != want || string(e.Source) != fmt.Sprint("src", (int(first)-1+j)%7) {
				t.Fatalf("entry %d corrupted: %.20q want %.20q", e.Seq, msgs[j], want)
			}
			total += len(e.Msg) + len(e.Source)
		}
		if total > arena {
			t.Fatalf("held %d bytes in a %d-byte arena", total, arena)
		}
		if last := b.Entries[len(b.Entries)-1].Seq; last != uint64(i+1) {
			t.Fatalf("newest held %d, want %d", last, i+1)
		}
	}
}

// TestLongestFieldsFitSmallestArena: the smallest arena New accepts holds
// an entry with the longest source and structured data, its message cut
// to what is left.
func TestLongestFieldsFitSmallestArena(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 4, MaxBytes: MinBytes})
	src := bytes.Repeat([]byte("s"), MaxSourceLen)
	sd := bytes.Repeat([]byte("d"), MaxSDLen)
	for i, msg := range [][]byte{bytes.Repeat([]byte("m"), 2*MinBytes), []byte("short")} {
		seq := r.Append(Entry{Source: src, SD: sd, Msg: msg})
		b, msgs := readAll(r, seq)
		if len(b.Entries) != 1 {
			t.Fatalf("entry %d: read %d entries, want 1", i, len(b.Entries))
		}
		want, trunc := string(msg), false
		if len(want) > MinMsgRoom {
			want, trunc = want[:MinMsgRoom], true
		}
		e := b.Entries[0]
		if msgs[0] != want || (e.Flags&FlagTruncated != 0) != trunc {
			t.Errorf("entry %d: %d bytes, flags %b; want %d bytes, truncated %v", i, len(msgs[0]), e.Flags, len(want), trunc)
		}
		if !bytes.Equal(e.Source, src) || !bytes.Equal(e.SD, sd) {
			t.Errorf("entry %d: source or structured data changed", i)
		}
	}
}

func TestOversizedEntryIsCut(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 4, MaxBytes: MinBytes})
	r.Append(entry("src", string(bytes.Repeat([]byte("x"), 3*MinBytes))))
	b, msgs := readAll(r, 1)
	if len(msgs) != 1 || len(msgs[0]) != MinBytes-3 || b.Entries[0].Flags&FlagTruncated == 0 {
		t.Fatalf("got %d bytes flags %b", len(msgs[0]), b.Entries[0].Flags)
	}
	long := bytes.Repeat([]byte("s"), 2*MaxSourceLen)
	r.Append(Entry{Source: long, Msg: []byte("m")})
	b, _ = readAll(r, 2)
	if len(b.Entries[0].Source) != MaxSourceLen {
		t.Errorf("source of %d bytes kept", len(b.Entries[0].Source))
	}
}

func TestReadBatchLimits(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16})
	for i := 0; i < 50; i++ {
		r.Append(entry("s", "0123456789"))
	}
	var b Batch
	r.Read(1, &b, 7, 1<<20)
	if len(b.Entries) != 7 || b.Next != 8 {
		t.Errorf("entry limit: %d next %d", len(b.Entries), b.Next)
	}
	r.Read(1, &b, 100, 55) // 11 bytes each
	if len(b.Entries) != 5 {
		t.Errorf("byte limit: %d entries", len(b.Entries))
	}
	r.Read(1, &b, 100, 3) // always at least one entry
	if len(b.Entries) != 1 || string(b.Entries[0].Msg) != "0123456789" {
		t.Errorf("first entry over the byte limit: %+v", b.Entries)
	}
}

func TestTailCursor(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16})
	for i := 0; i < 30; i++ {
		r.Append(Entry{Source: []byte(fmt.Sprint("s", i%3)), Msg: []byte(fmt.Sprint(i)), Severity: uint8(i % 8)})
	}
	if c := r.TailCursor(5, nil); c != 26 {
		t.Errorf("tail 5 = %d, want 26", c)
	}
	if c := r.TailCursor(500, nil); c != 1 {
		t.Errorf("tail 500 = %d, want 1", c)
	}
	if c := r.TailCursor(0, nil); c != 31 {
		t.Errorf("tail 0 = %d, want 31", c)
	}
	s1 := func(m Meta) bool { return string(m.Source) == "s1" }
	// s1 entries are i = 1, 4, ..., 28 (seq i+1); the last 2 are seq 26, 29.
	if c := r.TailCursor(2, s1); c != 26 {
		t.Errorf("tail 2 of s1 = %d, want 26", c)
	}
}

func TestWaitAndClose(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 10, MaxBytes: MinBytes})
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background(), 1) }()
	select {
	case <-done:
		t.Fatal("Wait returned before an entry existed")
	case <-time.After(20 * time.Millisecond):
	}
	r.Append(entry("s", "m"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait not woken by Append")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- r.Wait(ctx, 2) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("after cancel: %v", err)
	}
	go func() { done <- r.Wait(context.Background(), 2) }()
	r.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Wait")
	}
	if err := r.Wait(context.Background(), 2); err != ErrClosed {
		t.Errorf("Wait after Close: %v", err)
	}
	if err := r.Wait(context.Background(), 1); err != nil {
		t.Errorf("Wait for an existing entry after Close: %v", err)
	}
}

// TestConcurrentReadersExact runs writers and unpaced readers at once:
// every reader must see each writer's entries in order, with no
// duplicate, and account for every entry as seen or lost.
func TestConcurrentReadersExact(t *testing.T) {
	const writers, perWriter = 4, 20000
	r := mustNew(t, Config{MaxEntries: 500, MaxBytes: 1 << 16})
	var wg sync.WaitGroup
	type result struct {
		seen, lost uint64
		err        error
	}
	results := make([]result, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	total := uint64(writers * perWriter)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res := &results[i]
			last := make([]int, writers)
			for w := range last {
				last[w] = -1
			}
			var b Batch
			cursor := uint64(1)
			for res.seen+res.lost < total {
				r.Read(cursor, &b, 64, 4096)
				res.lost += b.Lost
				for _, e := range b.Entries {
					var w, n int
					fmt.Sscanf(string(e.Msg), "%d:%d", &w, &n)
					if n <= last[w] {
						res.err = fmt.Errorf("writer %d: %d after %d", w, n, last[w])
						return
					}
					last[w] = n
					res.seen++
				}
				cursor = b.Next
				if len(b.Entries) == 0 {
					if err := r.Wait(ctx, cursor); err != nil {
						res.err = err
						return
					}
				}
				if i == 2 && res.seen%1000 == 0 {
					time.Sleep(time.Millisecond) // a slow one
				}
			}
		}(i)
	}
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; n < perWriter; n += 10 {
				var es []Entry
				for k := n; k < n+10; k++ {
					es = append(es, entry("w", fmt.Sprintf("%d:%d", w, k)))
				}
				r.Append(es...)
			}
		}(w)
	}
	wg.Wait()
	for i, res := range results {
		if res.err != nil {
			t.Errorf("reader %d: %v", i, res.err)
		}
		if res.seen+res.lost != total {
			t.Errorf("reader %d: seen %d + lost %d != %d", i, res.seen, res.lost, total)
		}
	}
}

// TestPacedFollowerLosesNothing: writers produce far more than the ring
// holds while a registered follower reads steadily; it must see all.
func TestPacedFollowerLosesNothing(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16, PaceWait: 5 * time.Second})
	f := r.Follow(1)
	defer r.Unfollow(f)
	const total = 20000
	go func() {
		for i := 0; i < total; i += 50 {
			var es []Entry
			for k := i; k < i+50; k++ {
				es = append(es, entry("w", fmt.Sprint(k)))
			}
			r.Append(es...)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var b Batch
	next := 0
	for next < total {
		r.ReadFollower(f, &b, 30, 1<<12)
		if b.Lost != 0 {
			t.Fatalf("paced follower lost %d entries at %d", b.Lost, next)
		}
		for _, e := range b.Entries {
			if string(e.Msg) != fmt.Sprint(next) {
				t.Fatalf("got %q, want %d", e.Msg, next)
			}
			next++
		}
		if len(b.Entries) == 0 {
			if err := r.Wait(ctx, b.Next); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestStalledFollowerHoldsWritersOnlyBriefly: a follower that never reads
// makes writers wait once (about PaceWait; PaceMax at most, which
// TestHardBound checks on a simulated clock), then is told what it lost.
func TestStalledFollowerHoldsWritersOnlyBriefly(t *testing.T) {
	const wait = 50 * time.Millisecond
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16, PaceWait: wait})
	stalled := r.Follow(1)
	start := time.Now()
	for i := 0; i < 10000; i++ {
		r.Append(entry("w", fmt.Sprint(i)))
	}
	// The upper limit only tells "once" from "for ever" on a busy machine.
	if d := time.Since(start); d < wait {
		t.Errorf("writers did not wait for the follower at all (%v)", d)
	} else if d > 30*time.Second {
		t.Errorf("writers waited %v for a stalled follower (pace-wait %v)", d, wait)
	}
	var b Batch
	r.ReadFollower(stalled, &b, 1000, 1<<20)
	if b.Lost != 9900 || len(b.Entries) != 100 || string(b.Entries[0].Msg) != "9900" {
		t.Errorf("lost %d, %d entries, first %q", b.Lost, len(b.Entries), b.Entries[0].Msg)
	}
	// Having caught up, it is paced again: the next overrun waits again.
	start = time.Now()
	for i := 0; i < 200; i++ {
		r.Append(entry("w", "again"))
	}
	if d := time.Since(start); d < wait {
		t.Errorf("caught-up follower not paced again (%v)", d)
	}
	r.Unfollow(stalled)
	start = time.Now()
	for i := 0; i < 1000; i++ {
		r.Append(entry("w", "free"))
	}
	if d := time.Since(start); d > wait {
		t.Errorf("writers waited %v with no follower", d)
	}
}

func TestUnpacedRingNeverWaits(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 10, MaxBytes: MinBytes})
	f := r.Follow(1)
	defer r.Unfollow(f)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			r.Append(entry("w", "x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writer blocked with PaceWait 0")
	}
}

func BenchmarkAppend80(b *testing.B) {
	r := mustNew(b, Config{MaxEntries: 5000, MaxBytes: 6 << 20})
	msg := bytes.Repeat([]byte("x"), 80)
	es := make([]Entry, 800) // one 64 KiB read
	for i := range es {
		es[i] = Entry{Source: []byte("svc0.out"), Msg: msg, Time: 1}
	}
	b.SetBytes(int64(len(es) * len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		r.Append(es...)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(es)), "ns/line")
}

func BenchmarkRead80(b *testing.B) {
	r := mustNew(b, Config{MaxEntries: 5000, MaxBytes: 6 << 20})
	msg := bytes.Repeat([]byte("x"), 80)
	for i := 0; i < 5000; i++ {
		r.Append(Entry{Source: []byte("svc0.out"), Msg: msg})
	}
	var batch Batch
	b.ReportAllocs()
	lines := 0
	for b.Loop() {
		r.Read(1, &batch, 512, 32<<10)
		lines += len(batch.Entries)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
}

// TestIdleFollowerIsWaitedFor: a follower that had nothing to read for a
// long time is not taken for stalled when a burst comes.
func TestIdleFollowerIsWaitedFor(t *testing.T) {
	const wait = 200 * time.Millisecond
	r := mustNew(t, Config{MaxEntries: 50, MaxBytes: 1 << 16, PaceWait: wait})
	f := r.Follow(1)
	defer r.Unfollow(f)
	time.Sleep(2 * wait) // idle: nothing to read
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 500; i++ {
			r.Append(Entry{Time: time.Now().UnixNano(), Source: []byte("w"), Msg: []byte(fmt.Sprint(i))})
		}
	}()
	var b Batch
	got := 0
	deadline := time.Now().Add(30 * time.Second)
	for got < 500 && time.Now().Before(deadline) {
		time.Sleep(wait / 10) // a slow but steady reader
		r.ReadFollower(f, &b, 20, 1<<12)
		if b.Lost != 0 {
			t.Fatalf("lost %d after %d", b.Lost, got)
		}
		got += len(b.Entries)
	}
	<-done
	if got != 500 {
		t.Fatalf("read %d of 500", got)
	}
}

func sameBatch(t *testing.T, what string, got, want *Batch) {
	t.Helper()
	if got.Lost != want.Lost || got.Next != want.Next || len(got.Entries) != len(want.Entries) {
		t.Fatalf("%s: lost %d next %d, %d entries; want lost %d next %d, %d entries", what,
			got.Lost, got.Next, len(got.Entries), want.Lost, want.Next, len(want.Entries))
	}
	for i := range got.Entries {
		g, w := got.Entries[i], want.Entries[i]
		if g.Seq != w.Seq || g.Time != w.Time || g.OrigTime != w.OrigTime || !bytes.Equal(g.Source, w.Source) ||
			!bytes.Equal(g.SD, w.SD) || !bytes.Equal(g.Msg, w.Msg) || g.PID != w.PID || g.Facility != w.Facility ||
			g.Severity != w.Severity || g.Flags != w.Flags {
			t.Fatalf("%s: entry %d is %+v, want %+v", what, i, g, w)
		}
	}
}

// TestReadReusedBatch: a batch read into again and again (as readers
// do) holds exactly the entries appended, whatever the entries it held
// before (every field is written anew), through evictions, the arena's
// wrapping, empty entries and first entries beyond the byte limit (the
// bytes are copied a run of contiguous entries at a time).
func TestReadReusedBatch(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 50, MaxBytes: MinBytes + 2000})
	var reused Batch
	appended := map[uint64]Entry{}
	seed := uint64(1)
	rnd := func(n int) int {
		seed = seed*6364136223846793005 + 1442695040888963407
		return int(seed>>33) % n
	}
	for round := 0; round < 500; round++ {
		for n := rnd(30); n > 0; n-- {
			e := Entry{Time: int64(rnd(1000) + 1), Source: []byte(fmt.Sprint("s", rnd(4))),
				Msg: bytes.Repeat([]byte{byte('a' + rnd(26))}, rnd(300))}
			if rnd(2) == 0 {
				e.OrigTime, e.SD, e.PID = int64(rnd(3)+1), []byte(`[x@1 a="b"]`), int32(rnd(100)+1)
				e.Facility, e.Severity, e.Flags = uint8(rnd(24)+1), uint8(rnd(8)+1), uint8(rnd(31)+1)
			}
			if rnd(8) == 0 {
				// Nothing at all: it takes a byte of the arena, so
				// the entries around it are not contiguous there.
				e.Source, e.Msg, e.SD = nil, nil, nil
			}
			e.Seq = r.Append(e)
			appended[e.Seq] = e
		}
		first, next := r.Bounds()
		cursor := first - min(first-1, uint64(rnd(3))) + uint64(rnd(int(next-first)+2))
		maxEntries, maxBytes := rnd(60)+1, rnd(3000)+1
		var fresh Batch
		r.Read(cursor, &fresh, maxEntries, maxBytes)
		r.Read(cursor, &reused, maxEntries, maxBytes)
		want := Batch{Lost: fresh.Lost, Next: fresh.Next}
		for _, e := range fresh.Entries {
			want.Entries = append(want.Entries, appended[e.Seq])
		}
		sameBatch(t, fmt.Sprintf("round %d: Read(%d) into a fresh batch", round, cursor), &fresh, &want)
		sameBatch(t, fmt.Sprintf("round %d: Read(%d) into a used batch", round, cursor), &reused, &want)
	}
}
