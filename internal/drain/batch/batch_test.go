package batch

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/logproto"
)

// gate is a Sender whose deliveries wait until the test releases them.
type gate struct {
	mu      sync.Mutex
	release map[uint64]chan batchResult // by first seq of the batch
	seen    chan uint64
}

type batchResult = Result

func (g *gate) ch(seq uint64) chan batchResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.release[seq] == nil {
		g.release[seq] = make(chan batchResult, 4)
	}
	return g.release[seq]
}

type gateSender struct{ g *gate }

func (s gateSender) Deliver(ctx context.Context, msgs []drain.Message) Result {
	seq := msgs[0].Rec.Seq
	s.g.seen <- seq
	select {
	case r := <-s.g.ch(seq):
		return r
	case <-ctx.Done():
		return Result{Err: ctx.Err()}
	}
}
func (gateSender) Close() error { return nil }

func msgs(from, n int) []drain.Message {
	var out []drain.Message
	for i := range n {
		out = append(out, drain.Message{Instance: "i", Rec: logproto.Record{Seq: uint64(from + i), Msg: "x"}})
	}
	return out
}

func waitAcked(t *testing.T, c drain.Conn, want uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		n, err := c.Acked(context.Background(), 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if n > want {
			t.Fatalf("acked %d, want %d", n, want)
		}
	}
	t.Fatalf("acked never reached %d", want)
}

// Batches finish out of order on two workers; acknowledgement stays in
// order; a failed batch is retried (only its failed items when the sender
// says which) and rejected items count as taken.
func TestOrderAndRetry(t *testing.T) {
	g := &gate{release: map[uint64]chan batchResult{}, seen: make(chan uint64, 100)}
	d := New(Options{MaxCount: 10, Parallel: 2, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, NewSender: func() Sender { return gateSender{g} }})
	if d.Window() != 30 {
		t.Fatalf("window %d", d.Window())
	}
	c, _ := d.Connect(context.Background())
	defer c.Close()
	if err := c.Send(msgs(1, 20)); err != nil { // two full batches: 1-10, 11-20
		t.Fatal(err)
	}
	g.ch(11) <- Result{}
	// The second batch is done, the first is not: nothing acknowledged.
	if n, _ := c.Acked(context.Background(), 200*time.Millisecond); n != 0 {
		t.Fatalf("acked %d before the first batch", n)
	}
	// The first fails, then items 2 and 5 fail again, then they are taken.
	g.ch(1) <- Result{Err: errors.New("HTTP 503")}
	g.ch(1) <- Result{Retry: []int{2, 5}, Rejected: 1, Reason: "item 7 bad"}
	g.ch(3) <- Result{} // the retry of items 2 and 5 starts with seq 3
	waitAcked(t, c, 20)
	r := d.Report()
	if r.Batches != 2 || r.Retries != 2 || r.Rejected != 1 || r.Retrying {
		t.Fatalf("report %+v", r)
	}
	// A partial batch goes out after the linger.
	c.Send(msgs(21, 3))
	g.ch(21) <- Result{}
	waitAcked(t, c, 23)
}

// recorder takes every batch at once and keeps the sequence numbers it
// saw.
type recorder struct {
	mu   sync.Mutex
	seqs []uint64
}

func (r *recorder) Deliver(_ context.Context, msgs []drain.Message) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range msgs {
		r.seqs = append(r.seqs, msgs[i].Rec.Seq)
	}
	return Result{}
}
func (*recorder) Close() error { return nil }

// Batches reuse the arrays of acknowledged ones: every message arrives
// once, intact, and batching allocates (almost) nothing per batch.
func TestReusedBatches(t *testing.T) {
	rec := &recorder{}
	d := New(Options{MaxCount: 100, Parallel: 1, Linger: time.Hour, NewSender: func() Sender { return rec }})
	c, err := d.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := 1
	var acked uint64
	round := func() {
		if err := c.Send(msgs(next, 100)); err != nil {
			t.Fatal(err)
		}
		next += 100
		deadline := time.Now().Add(30 * time.Second)
		for acked < uint64(next-1) {
			if time.Now().After(deadline) {
				t.Fatalf("acknowledged %d of %d", acked, next-1)
			}
			n, err := c.Acked(context.Background(), 50*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			acked = n
		}
	}
	for range 20 {
		round()
	}
	in := msgs(0, 100)
	// Without reuse each batch allocates its array of 100 messages.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const rounds = 50
	for range rounds {
		if err := c.Send(in); err != nil {
			t.Fatal(err)
		}
		next += 100
		deadline := time.Now().Add(30 * time.Second)
		for acked < uint64(next-1) && time.Now().Before(deadline) {
			acked, _ = c.Acked(context.Background(), 50*time.Millisecond)
		}
	}
	runtime.ReadMemStats(&after)
	array := 100 * unsafe.Sizeof(drain.Message{})
	if per := (after.TotalAlloc - before.TotalAlloc) / rounds; per >= uint64(array)/2 {
		t.Errorf("%d bytes allocated per batch (its array is %d)", per, array)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seqs) != next-1 {
		t.Fatalf("delivered %d messages, want %d", len(rec.seqs), next-1)
	}
	for i, s := range rec.seqs[:2000] {
		if s != uint64(i+1) {
			t.Fatalf("message %d has seq %d", i, s)
		}
	}
}
