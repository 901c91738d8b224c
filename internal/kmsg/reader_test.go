package kmsg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/ring"
)

const testBoot = int64(1_700_000_000_000_000_000)

func fixedBoot() int64 { return testBoot }

// next returns the next event without waiting; EAGAIN fails the test.
func next(t *testing.T, r *Reader) Event {
	t.Helper()
	ev, err := r.Next(context.Background(), false)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func expectEAGAIN(t *testing.T, r *Reader) {
	t.Helper()
	if ev, err := r.Next(context.Background(), false); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("Next = %+v, %v; want EAGAIN", ev, err)
	}
}

func expectRecord(t *testing.T, r *Reader, seq uint64, text string) Event {
	t.Helper()
	ev := next(t, r)
	if ev.Loss != nil || ev.Malformed != nil || ev.Record.Seq != seq || string(ev.Record.Text) != text {
		t.Fatalf("got %+v (loss %+v), want record %d %q", ev.Record, ev.Loss, seq, text)
	}
	return ev
}

func expectLoss(t *testing.T, r *Reader, want Loss) {
	t.Helper()
	ev := next(t, r)
	if ev.Loss == nil || *ev.Loss != want {
		t.Fatalf("got record %d %q loss %+v, want loss %+v", ev.Record.Seq, ev.Record.Text, ev.Loss, want)
	}
}

func fill(d *FakeDevice, n int) {
	for i := 0; i < n; i++ {
		d.Add(6, uint64(i)*1000, fmt.Sprintf("r%d", i))
	}
}

func TestReaderReplayAndTime(t *testing.T) {
	d := NewFakeDevice(10, 0)
	d.Add(3, 1_500_000, "first", "SUBSYSTEM=pci")
	d.Add(14, 2_000_001, "second")
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	ev := expectRecord(t, r, 0, "first")
	if ev.Time != testBoot+1_500_000_000 {
		t.Fatalf("time %d, want boot + 1.5 s", ev.Time)
	}
	if len(ev.Record.Dict) != 1 || string(ev.Record.Dict[0]) != "SUBSYSTEM=pci" {
		t.Fatalf("dict %q", ev.Record.Dict)
	}
	ev = expectRecord(t, r, 1, "second")
	if ev.Time != testBoot+2_000_001_000 || ev.Record.Level() != 6 || ev.Record.Facility() != 1 {
		t.Fatalf("second: time %d level %d facility %d", ev.Time, ev.Record.Level(), ev.Record.Facility())
	}
	expectEAGAIN(t, r)
	if d.EAGAINs != 1 {
		t.Fatalf("fake saw %d EAGAINs, want 1", d.EAGAINs)
	}
}

// A fresh-boot replay whose ring has already dropped records says how many.
func TestReaderReplayReportsRecordsGoneBeforeStart(t *testing.T) {
	d := NewFakeDevice(5, 0)
	fill(d, 12) // 0..6 dropped, 7..11 held
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, Next: 0, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	expectLoss(t, r, Loss{Count: 7, First: 0, Last: 6, Known: true, Reason: LossGone})
	for i := 7; i < 12; i++ {
		expectRecord(t, r, uint64(i), fmt.Sprintf("r%d", i))
	}
	expectEAGAIN(t, r)
	if s := r.Stats(); s.Lost != 7 || s.Losses != 1 || s.Records != 5 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReaderResumeSkipsDelivered(t *testing.T) {
	d := NewFakeDevice(100, 0)
	fill(d, 10)
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, Next: 6, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	for i := 6; i < 10; i++ {
		expectRecord(t, r, uint64(i), fmt.Sprintf("r%d", i))
	}
	expectEAGAIN(t, r)
	if s := r.Stats(); s.Skipped != 6 || s.Lost != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// Resuming after a record the kernel no longer holds: the records between
// are reported lost, exactly.
func TestReaderResumeGap(t *testing.T) {
	d := NewFakeDevice(4, 0)
	fill(d, 20) // holds 16..19
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, Next: 11, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	expectLoss(t, r, Loss{Count: 5, First: 11, Last: 15, Known: true, Reason: LossGone})
	expectRecord(t, r, 16, "r16")
}

// EPIPE after an overwrite: one loss event with the exact count, then the
// oldest record held.
func TestReaderEPIPECountsLoss(t *testing.T) {
	d := NewFakeDevice(8, 0)
	fill(d, 3)
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	expectRecord(t, r, 0, "r0")
	expectRecord(t, r, 1, "r1")
	// 20 more: the ring (8) now holds 15..22; the reader wanted 2.
	for i := 3; i < 23; i++ {
		d.Add(6, uint64(i), fmt.Sprintf("r%d", i))
	}
	expectLoss(t, r, Loss{Count: 13, First: 2, Last: 14, Known: true, Reason: LossOverwritten})
	if d.EPIPEs != 1 {
		t.Fatalf("fake returned %d EPIPEs, want 1", d.EPIPEs)
	}
	for i := 15; i < 23; i++ {
		expectRecord(t, r, uint64(i), fmt.Sprintf("r%d", i))
	}
	expectEAGAIN(t, r)
	// A second overwrite is counted again.
	for i := 23; i < 40; i++ {
		d.Add(6, uint64(i), fmt.Sprintf("r%d", i))
	}
	expectLoss(t, r, Loss{Count: 9, First: 23, Last: 31, Known: true, Reason: LossOverwritten})
	expectRecord(t, r, 32, "r32")
	if s := r.Stats(); s.Lost != 22 || s.Losses != 2 || s.EPIPEs != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// Sequence numbers that jump without an EPIPE are a loss too.
func TestReaderSequenceJump(t *testing.T) {
	d := NewFakeDevice(8, 0)
	d.AddRaw([]byte("6,0,1,-;a\n"))
	d.AddRaw([]byte("6,5,2,-;b\n"))
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	expectRecord(t, r, 0, "a")
	expectLoss(t, r, Loss{Count: 4, First: 1, Last: 4, Known: true, Reason: LossSkipped})
	expectRecord(t, r, 5, "b")
}

func TestReaderStartEndAndClear(t *testing.T) {
	d := NewFakeDevice(8, 0)
	fill(d, 3)
	r, err := NewReader(d, ReaderConfig{Start: StartEnd, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	expectEAGAIN(t, r)
	d.Add(6, 9, "new")
	expectRecord(t, r, 3, "new")

	d.Clear()
	d.Add(6, 10, "after clear")
	r2, err := NewReader(d, ReaderConfig{Start: StartClear, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	expectRecord(t, r2, 4, "after clear")
}

// A reader that started at the end and is overrun before its first record
// cannot know the count, and says so.
func TestReaderUnknownLoss(t *testing.T) {
	d := NewFakeDevice(2, 0)
	r, err := NewReader(d, ReaderConfig{Start: StartEnd, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	fill(d, 5)
	expectLoss(t, r, Loss{Reason: LossOverwritten})
	expectRecord(t, r, 3, "r3")
}

func TestReaderMalformed(t *testing.T) {
	d := NewFakeDevice(8, 0)
	d.Add(6, 1, "ok")
	d.AddRaw([]byte("garbage without header\n"))
	d.AddRaw([]byte("6,2,3,-;after\n"))
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	expectRecord(t, r, 0, "ok")
	ev := next(t, r)
	if ev.Malformed == nil || string(ev.Record.Text) != "garbage without header" {
		t.Fatalf("got %+v, want a malformed record", ev)
	}
	expectLoss(t, r, Loss{Count: 1, First: 1, Last: 1, Known: true, Reason: LossSkipped})
	expectRecord(t, r, 2, "after")
}

// Next waits for a record, and a cancel ends the wait at once.
func TestReaderWaitAndCancel(t *testing.T) {
	d := NewFakeDevice(8, 0)
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		d.Add(6, 1, "late")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := r.Next(ctx, true)
	if err != nil || string(ev.Record.Text) != "late" {
		t.Fatalf("Next = %q, %v", ev.Record.Text, err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel2)
	start := time.Now()
	if _, err := r.Next(ctx2, true); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %v", d)
	}
}

type sliceSink struct {
	mu sync.Mutex
	es []ring.Entry
}

func (s *sliceSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.es)
}

func (s *sliceSink) Append(es ...ring.Entry) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		e.Source = append([]byte(nil), e.Source...)
		e.Msg = append([]byte(nil), e.Msg...)
		e.SD = append([]byte(nil), e.SD...)
		s.es = append(s.es, e)
	}
	return uint64(len(s.es))
}

func TestConverterEntry(t *testing.T) {
	d := NewFakeDevice(8, 0)
	d.Add(3, 2_000_000, `disk "sda" failed \ ok`+"\u2019", "SUBSYSTEM=scsi", `DEVICE=+scsi:0:0:0:0 "q"`)
	d.Add(2043, 1, "odd facility")
	r, err := NewReader(d, ReaderConfig{Start: StartSeq, BootTime: fixedBoot})
	if err != nil {
		t.Fatal(err)
	}
	var c Converter
	ev := next(t, r)
	e := c.Entry(&ev, 42)
	if string(e.Source) != "kmsg" || e.Facility != 0 || e.Severity != 3 || e.Time != 42 || e.OrigTime != testBoot+2_000_000_000 {
		t.Fatalf("entry %+v", e)
	}
	if want := `disk "sda" failed \ ok` + "\u2019"; string(e.Msg) != want {
		t.Fatalf("msg %q, want %q", e.Msg, want)
	}
	if want := `[kmsg@32473 seq="0" SUBSYSTEM="scsi" DEVICE="+scsi:0:0:0:0 \"q\""]`; string(e.SD) != want {
		t.Fatalf("sd %s, want %s", e.SD, want)
	}
	ev2 := next(t, r)
	e2 := c.Entry(&ev2, 43)
	if e2.Facility != 1 || e2.Severity != 3 || string(e2.SD) != `[kmsg@32473 seq="1" prio="2043"]` {
		t.Fatalf("clamped entry: facility %d severity %d sd %s", e2.Facility, e2.Severity, e2.SD)
	}
	// The first entry is still intact (separate parts of the buffer).
	if string(e.SD) != `[kmsg@32473 seq="0" SUBSYSTEM="scsi" DEVICE="+scsi:0:0:0:0 \"q\""]` {
		t.Fatalf("first entry overwritten: %s", e.SD)
	}
	loss := Event{Loss: &Loss{Count: 3, First: 5, Last: 7, Known: true, Reason: LossOverwritten}}
	le := c.Entry(&loss, 44)
	if string(le.Msg) != "kmsg: 3 kernel log records lost (seq 5-7): overwritten in the kernel's ring before they were read" ||
		string(le.SD) != `[kmsg@32473 lost="3" first="5" last="7"]` || le.Severity != ring.SevWarning {
		t.Fatalf("loss entry %q %q", le.Msg, le.SD)
	}
}

func TestSDBounded(t *testing.T) {
	var dict []string
	for i := 0; i < 200; i++ {
		dict = append(dict, fmt.Sprintf("KEY%d=%s", i, strings.Repeat("v", 60)))
	}
	d := NewFakeDevice(2, 0)
	d.Add(6, 1, "many", dict...)
	r, _ := NewReader(d, ReaderConfig{Start: StartSeq, BootTime: fixedBoot})
	ev := next(t, r)
	sd := AppendSD(nil, &ev.Record)
	if len(sd) > ring.MaxSDLen || !strings.HasSuffix(string(sd), `"]`) || !strings.Contains(string(sd), "KEY0=") {
		t.Fatalf("SD of %d bytes: %.80s...%s", len(sd), sd, sd[len(sd)-20:])
	}
	if seq, ok := SeqFromSD(sd); !ok || seq != 0 {
		t.Fatalf("SeqFromSD: %d %v", seq, ok)
	}
}

func runWith(t *testing.T, ctx context.Context, d *FakeDevice, cfg Config, sink Sink) chan error {
	t.Helper()
	cfg.OpenDevice = func(string) (Device, error) { return d.Reopen(), nil }
	cfg.BootTime = fixedBoot
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, sink) }()
	return done
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Run into a real ring, with state: a restart in the same boot continues
// exactly after the last delivered record; another boot replays.
func TestRunStateResume(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "sub", "state")
	d := NewFakeDevice(100, 0)
	fill(d, 5)
	rg, err := ring.New(ring.Config{MaxEntries: 1000, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.StatePath = state
	cfg.BootID = "boot-a"
	ctx, cancel := context.WithCancel(context.Background())
	done := runWith(t, ctx, d, cfg, rg)
	waitFor(t, "5 entries", func() bool { _, n := rg.Bounds(); return n == 6 })
	waitFor(t, "state saved", func() bool { st, ok, _ := LoadState(state); return ok && st.Seq == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fill(d, 3) // seq 5..7 while stopped
	ctx, cancel = context.WithCancel(context.Background())
	done = runWith(t, ctx, d, cfg, rg)
	waitFor(t, "8 entries", func() bool { _, n := rg.Bounds(); return n == 9 })
	d.Add(6, 1, "live")
	waitFor(t, "9 entries", func() bool { _, n := rg.Bounds(); return n == 10 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var b ring.Batch
	rg.Read(1, &b, 100, 1<<20)
	var seqs []uint64
	for _, e := range b.Entries {
		s, ok := SeqFromSD(e.SD)
		if !ok {
			t.Fatalf("entry without seq: %q %q", e.Msg, e.SD)
		}
		seqs = append(seqs, s)
	}
	if fmt.Sprint(seqs) != "[0 1 2 3 4 5 6 7 8]" {
		t.Fatalf("kernel seqs in the ring: %v; want each of 0..8 once", seqs)
	}
	if st, _, _ := LoadState(state); st.Seq != 8 || st.Boot != "boot-a" {
		t.Fatalf("state %+v", st)
	}
	// Another boot: the state is ignored, the ring replayed.
	sink := &sliceSink{}
	cfg.BootID = "boot-b"
	ctx, cancel = context.WithCancel(context.Background())
	done = runWith(t, ctx, d, cfg, sink)
	waitFor(t, "replay", func() bool { st, _, _ := LoadState(state); return st.Boot == "boot-b" && st.Seq == 8 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(sink.es) != 9 {
		t.Fatalf("new boot: %d entries, want a replay of 9", len(sink.es))
	}
}

func TestRunMinLevelAndNoReplay(t *testing.T) {
	d := NewFakeDevice(100, 0)
	fill(d, 3)
	sink := &sliceSink{}
	cfg := DefaultConfig()
	cfg.Replay = false
	cfg.MinLevel = 4 // warning
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runWith(t, ctx, d, cfg, sink)
	// The reader is at the end once it has tried to read.
	waitFor(t, "reader at the end", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.EAGAINs > 0 })
	d.Add(6, 1, "info: dropped")
	d.Add(4, 2, "warning: kept")
	d.Add(0, 3, "emerg: kept")
	waitFor(t, "2 entries", func() bool { return sink.len() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(sink.es[0].Msg) != "warning: kept" || string(sink.es[1].Msg) != "emerg: kept" {
		t.Fatalf("entries %q %q", sink.es[0].Msg, sink.es[1].Msg)
	}
}

func TestRunOpenErrors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Device = filepath.Join(t.TempDir(), "no-kmsg")
	err := Run(context.Background(), cfg, &sliceSink{})
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), cfg.Device) {
		t.Fatalf("missing device: %v", err)
	}
	cfg.MinLevel = 9
	if err := Run(context.Background(), cfg, &sliceSink{}); err == nil || !strings.Contains(err.Error(), "0..7") {
		t.Fatalf("bad level: %v", err)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "7": 7, "err": 3, "WARNING": 4, "debug": 7, "emerg": 0} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"8", "-1", "loud", ""} {
		if _, err := ParseLevel(in); err == nil {
			t.Errorf("ParseLevel(%q) accepted", in)
		}
	}
}

func TestResume(t *testing.T) {
	cfg, _ := Resume(State{Boot: "a", Seq: 41}, true, "a", true)
	if cfg.Start != StartSeq || cfg.Next != 42 {
		t.Fatalf("same boot: %+v", cfg)
	}
	cfg, _ = Resume(State{Boot: "a", Seq: 41}, true, "b", true)
	if cfg.Start != StartSeq || cfg.Next != 0 {
		t.Fatalf("other boot, replay: %+v", cfg)
	}
	cfg, _ = Resume(State{}, false, "b", false)
	if cfg.Start != StartEnd {
		t.Fatalf("no replay: %+v", cfg)
	}
}

func TestStateCorrupt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state")
	if _, ok, err := LoadState(p); ok || err != nil {
		t.Fatalf("missing: %v %v", ok, err)
	}
	if err := SaveState(p, State{Boot: "x", Seq: 7}); err != nil {
		t.Fatal(err)
	}
	if st, ok, err := LoadState(p); !ok || err != nil || st != (State{Boot: "x", Seq: 7}) {
		t.Fatalf("round trip: %+v %v %v", st, ok, err)
	}
	if err := writeFile(p, "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := LoadState(p); ok || err == nil {
		t.Fatalf("corrupt: %v %v", ok, err)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o644) }
