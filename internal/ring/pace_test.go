package ring

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stepClock is a simulated monotonic clock that moves on by step every
// time pacing looks at it: each look of a waiting writer sees step pass,
// as on a machine where the writer gets the CPU only that rarely.
type stepClock struct {
	now   atomic.Int64
	step  atomic.Int64
	looks atomic.Int64
}

func newStepClock(step time.Duration) *stepClock {
	c := &stepClock{}
	c.step.Store(int64(step))
	return c
}

func (c *stepClock) clock() time.Duration {
	c.looks.Add(1)
	return time.Duration(c.now.Add(c.step.Load()))
}

// fakeProc is a reader process as a Probe sees it.
type fakeProc struct {
	mu sync.Mutex
	st ProcState
	ok bool
}

func (p *fakeProc) probe() (ProcState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st, p.ok
}

// overrun starts a writer that appends n entries, far more than the
// ring holds; the returned channel is closed when it is done.
func overrun(r *Ring, n int) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			r.Append(entry("w", fmt.Sprint(i)))
		}
	}()
	return done
}

func waitDone(t *testing.T, done chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: writer still blocked after 60 s", what)
	}
}

// waitLooks waits (60 s at most) until pacing has looked at the clock n
// times.
func waitLooks(t *testing.T, c *stepClock, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for c.looks.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("pacing looked at the clock %d times in 60 s, want %d", c.looks.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// readAllFollower reads f until it has want entries, failing on any loss.
func readAllFollower(t *testing.T, r *Ring, f *Follower, want int) {
	t.Helper()
	var b Batch
	got := 0
	deadline := time.Now().Add(60 * time.Second)
	for got < want {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d in 60 s", got, want)
		}
		r.ReadFollower(f, &b, 50, 1<<16)
		if b.Lost != 0 {
			t.Fatalf("follower lost %d entries after %d", b.Lost, got)
		}
		for _, e := range b.Entries {
			if string(e.Msg) != fmt.Sprint(got) {
				t.Fatalf("entry %d: %q", got, e.Msg)
			}
			got++
		}
		if len(b.Entries) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestStarvedReaderIsWaitedFor: on a starved machine the reader's process
// is runnable but gets no CPU while a second passes at every look of the
// writer. It could not have read, so writers keep waiting for it, far
// beyond PaceWait, and it loses nothing once it runs.
func TestStarvedReaderIsWaitedFor(t *testing.T) {
	c := newStepClock(time.Second)
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16, PaceWait: time.Second, PaceMax: time.Hour, Clock: c.clock})
	f := r.Follow(1)
	defer r.Unfollow(f)
	p := &fakeProc{st: ProcState{Runnable: true}, ok: true}
	r.SetProbe(f, p.probe)
	done := overrun(r, 1000)
	waitLooks(t, c, 30) // 30 s of simulated starvation
	select {
	case <-done:
		t.Fatal("the writer gave up on a reader that could not run")
	default:
	}
	readAllFollower(t, r, f, 1000)
	waitDone(t, done, "starved reader")
}

// TestStoppedReaderIsGivenUpInTime: a stopped reader (SIGSTOP) is given
// up on after PaceWait, then learns what it lost.
func TestStoppedReaderIsGivenUpInTime(t *testing.T) {
	const step = 10 * time.Millisecond
	c := newStepClock(step)
	wait := 100 * time.Millisecond
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16, PaceWait: wait, PaceMax: time.Hour, Clock: c.clock})
	f := r.Follow(1)
	defer r.Unfollow(f)
	p := &fakeProc{st: ProcState{Stopped: true}, ok: true}
	r.SetProbe(f, p.probe)
	waitDone(t, overrun(r, 1000), "stopped reader")
	if el := time.Duration(c.now.Load()); el < wait || el > wait+3*step {
		t.Errorf("writers waited %v of clock for a stopped reader, want %v", el, wait)
	}
	var b Batch
	r.ReadFollower(f, &b, 1000, 1<<20)
	if b.Lost != 900 || len(b.Entries) != 100 {
		t.Errorf("lost %d, read %d; want 900 lost and 100 read", b.Lost, len(b.Entries))
	}
	if why := r.GiveUpReason(f); !strings.Contains(why, "client stopped") || !strings.Contains(why, "100ms of it with the chance to read") {
		t.Errorf("reason %q", why)
	}
	if why := r.GiveUpReason(f); why != "" {
		t.Errorf("reason given twice: %q", why)
	}
}

// TestSleepingReaderIsGivenUp: a reader that sleeps on something else
// while data waits for it is given up on; while the writer itself looks
// only late (the clock jumps a minute between looks), a look counts two
// ticks, not the minute.
func TestSleepingReaderIsGivenUp(t *testing.T) {
	c := newStepClock(time.Minute)
	wait := 100 * time.Millisecond
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16, PaceWait: wait, PaceMax: 24 * time.Hour, Clock: c.clock})
	f := r.Follow(1)
	defer r.Unfollow(f)
	p := &fakeProc{ok: true}
	r.SetProbe(f, p.probe)
	waitDone(t, overrun(r, 1000), "sleeping reader")
	// 2 ticks (20 ms) per look after the first: 5 looks + 1.
	if looks := c.looks.Load(); looks < 6 || looks > 8 {
		t.Errorf("given up after %d looks, want 6", looks)
	}
	if why := r.GiveUpReason(f); !strings.Contains(why, "client sleeping") {
		t.Errorf("reason %q", why)
	}
}

// TestHardBound: a reader that stays runnable for ever (it never gets a
// CPU, or it runs but never reads) holds writers up at most PaceMax of
// clock.
func TestHardBound(t *testing.T) {
	const step = 50 * time.Millisecond
	c := newStepClock(step)
	pmax := time.Second
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16, PaceWait: 100 * time.Millisecond, PaceMax: pmax, Clock: c.clock})
	f := r.Follow(1)
	defer r.Unfollow(f)
	p := &fakeProc{st: ProcState{Runnable: true}, ok: true}
	r.SetProbe(f, p.probe)
	waitDone(t, overrun(r, 1000), "never-running reader")
	if el := time.Duration(c.now.Load()); el < pmax || el > pmax+3*step {
		t.Errorf("writers waited %v of clock, want PaceMax %v", el, pmax)
	}
	// The default bound is PaceMaxFactor x PaceWait.
	r2 := mustNew(t, Config{MaxEntries: 10, MaxBytes: MinBytes, PaceWait: 300 * time.Millisecond})
	if r2.paceMax != PaceMaxFactor*300*time.Millisecond {
		t.Errorf("default PaceMax %v", r2.paceMax)
	}
}

// TestWallClockStepsDoNotMatter: entries' receive times (wall clock)
// play no part in pacing. Entries stamped an hour ahead (the clock was
// stepped back since) do not make writers wait for ever on a stalled
// follower; entries stamped an hour ago (stepped forward) do not make
// them give up at once on an idle follower that reads steadily.
func TestWallClockStepsDoNotMatter(t *testing.T) {
	wait := 200 * time.Millisecond
	for _, shift := range []time.Duration{time.Hour, -time.Hour} {
		r := mustNew(t, Config{MaxEntries: 50, MaxBytes: 1 << 16, PaceWait: wait})
		stalled := r.Follow(1)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 500; i++ {
				r.Append(Entry{Time: time.Now().Add(shift).UnixNano(), Source: []byte("w"), Msg: []byte(fmt.Sprint(i))})
			}
		}()
		waitDone(t, done, fmt.Sprintf("entries stamped %v", shift))
		var b Batch
		r.ReadFollower(stalled, &b, 1000, 1<<20)
		if b.Lost != 450 {
			t.Errorf("shift %v: stalled follower lost %d, want 450", shift, b.Lost)
		}
		r.Unfollow(stalled)

		// An idle follower, then a burst of entries stamped in the past.
		f := r.Follow(r.next)
		start := r.next
		time.Sleep(2 * wait)
		done = make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 500; i++ {
				r.Append(Entry{Time: time.Now().Add(shift).UnixNano(), Source: []byte("w"), Msg: []byte(fmt.Sprint(i))})
			}
		}()
		got := 0
		deadline := time.Now().Add(60 * time.Second)
		for got < 500 && time.Now().Before(deadline) {
			r.ReadFollower(f, &b, 20, 1<<12)
			if b.Lost != 0 {
				t.Fatalf("shift %v: reading follower lost %d after %d (from %d)", shift, b.Lost, got, start)
			}
			got += len(b.Entries)
			if len(b.Entries) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		waitDone(t, done, "burst")
		if got != 500 {
			t.Fatalf("shift %v: read %d of 500", shift, got)
		}
		r.Unfollow(f)
	}
}

// TestEmptySocketIsNotTheReadersFault: when nothing waits in the client's
// socket (the goroutine that serves it has not run: memlogd itself is
// short of CPU), the client is idle for want of data, not stalled; a
// client that leaves data unread is given up on.
func TestEmptySocketIsNotTheReadersFault(t *testing.T) {
	for _, unread := range []int{0, 4096} {
		c := newStepClock(time.Second)
		r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16, PaceWait: time.Second, PaceMax: time.Hour, Clock: c.clock})
		var u atomic.Int64
		u.Store(int64(unread))
		f := r.FollowClient(1, func() int { return int(u.Load()) })
		p := &fakeProc{ok: true} // sleeping: neither runnable nor stopped
		r.SetProbe(f, p.probe)
		done := overrun(r, 1000)
		if unread > 0 {
			waitDone(t, done, "client leaving data unread")
			if looks := c.looks.Load(); looks > 10 {
				t.Errorf("gave up on a client leaving data unread only after %d looks", looks)
			}
			r.Unfollow(f)
			continue
		}
		waitLooks(t, c, 30)
		select {
		case <-done:
			t.Fatal("gave up on a client with nothing to read")
		default:
		}
		readAllFollower(t, r, f, 1000)
		waitDone(t, done, "empty socket")
		r.Unfollow(f)
	}
}

// TestReaderIsLookedAtOncePerTick: writers waiting for a follower that
// keeps reading look at the reader's process (which reads /proc) at most
// once per tick of their waiting, however many writers wait.
func TestReaderIsLookedAtOncePerTick(t *testing.T) {
	r := mustNew(t, Config{MaxEntries: 100, MaxBytes: 1 << 16, PaceWait: time.Second, PaceMax: time.Hour})
	f := r.Follow(1)
	defer r.Unfollow(f)
	var probes atomic.Int64
	r.SetProbe(f, func() (ProcState, bool) {
		probes.Add(1)
		return ProcState{Runnable: true}, true
	})
	const writers, each = 4, 5000
	start := time.Now()
	var dones []chan struct{}
	for range writers {
		dones = append(dones, overrun(r, each))
	}
	var b Batch
	got := 0
	deadline := time.Now().Add(60 * time.Second)
	for got < writers*each {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d in 60 s", got, writers*each)
		}
		r.ReadFollower(f, &b, 50, 1<<16)
		if b.Lost != 0 {
			t.Fatalf("follower lost %d entries after %d", b.Lost, got)
		}
		got += len(b.Entries)
		if len(b.Entries) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	for _, d := range dones {
		waitDone(t, d, "paced writer")
	}
	el := time.Since(start)
	// 100 ms ticks; the slack covers the first and last tick.
	if got, limit := probes.Load(), int64(el/(100*time.Millisecond))+2; got > limit {
		t.Errorf("the reader's process was looked at %d times in %v, want at most %d", got, el.Round(time.Millisecond), limit)
	}
}

// TestWritersWakeWhenFollowerCatchesUp: writers waiting for a follower
// that reads in small steps are woken when it has caught up to where
// they wait for (half the ring), and otherwise once a tick: not at every
// read. Each wake-up of a waiting writer asks how much the follower's
// client has left unread; that count is bounded here.
func TestWritersWakeWhenFollowerCatchesUp(t *testing.T) {
	const size, total, step = 1000, 10000, 10
	r := mustNew(t, Config{MaxEntries: size, MaxBytes: 1 << 20, PaceWait: time.Second, PaceMax: time.Hour})
	var looks atomic.Int64
	f := r.FollowClient(1, func() int {
		looks.Add(1)
		return -1 // unknown
	})
	defer r.Unfollow(f)
	start := time.Now()
	done := overrun(r, total)
	var b Batch
	got := 0
	deadline := time.Now().Add(60 * time.Second)
	for got < total {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d in 60 s", got, total)
		}
		r.ReadFollower(f, &b, step, 1<<16)
		if b.Lost != 0 {
			t.Fatalf("follower lost %d entries after %d", b.Lost, got)
		}
		got += len(b.Entries)
		// A reader that takes its time over each step, as one that
		// writes what it read to a client does.
		time.Sleep(time.Millisecond)
	}
	waitDone(t, done, "paced writer")
	el := time.Since(start)
	// The writer waits at most once per half ring it writes, and looks
	// again at most once per wake-up for the target and once per 100 ms
	// tick. Woken at every read, it would look about size/2/step times
	// per wait.
	waits := int64(total / (size / 2))
	if n, limit := looks.Load(), 2*waits+int64(el/(100*time.Millisecond))+2; n > limit {
		t.Errorf("waiting writers looked at the follower %d times in %v (%d reads of %d entries), want at most %d",
			n, el.Round(time.Millisecond), total/step, step, limit)
	}
}

// TestLateFollowerIsWaitedFor: a follower that registers behind one
// that keeps up (a dump+follow starting at the oldest entry, next to a
// follow) is waited for like any other: it loses nothing, although
// writers had seen every follower past the oldest entry.
func TestLateFollowerIsWaitedFor(t *testing.T) {
	const size = 100
	r := mustNew(t, Config{MaxEntries: size, MaxBytes: 1 << 16, PaceWait: time.Second, PaceMax: time.Hour})
	ahead := r.Follow(1)
	var b Batch
	for i := 0; i <= size; i++ {
		r.Append(entry("w", fmt.Sprint(i)))
		r.ReadFollower(ahead, &b, 2*size, 1<<16) // keeps up
	}
	first, _ := r.Bounds() // one entry evicted past the follower
	late := r.Follow(first)
	r.Unfollow(ahead)
	defer r.Unfollow(late)
	var probes atomic.Int64
	r.SetProbe(late, func() (ProcState, bool) {
		probes.Add(1)
		return ProcState{Runnable: true}, true // never given up on
	})
	const total = 10 * size
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := size + 1; i < total; i++ {
			r.Append(entry("w", fmt.Sprint(i)))
		}
	}()
	// The writer waits for the late follower, as pacing's look at it
	// shows, before it reads a thing.
	deadline := time.Now().Add(60 * time.Second)
	for probes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer never waited for the late follower")
		}
		time.Sleep(time.Millisecond)
	}
	for want := 1; want < total; {
		if time.Now().After(deadline) {
			t.Fatalf("read up to %d of %d in 60 s", want, total)
		}
		r.ReadFollower(late, &b, 50, 1<<16)
		if b.Lost != 0 {
			t.Fatalf("late follower lost %d entries before %d", b.Lost, want)
		}
		for _, e := range b.Entries {
			if string(e.Msg) != fmt.Sprint(want) {
				t.Fatalf("entry %q, want %d", e.Msg, want)
			}
			want++
		}
		if len(b.Entries) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitDone(t, done, "late follower")
}
