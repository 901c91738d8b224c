package forward

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/lklog/lklog/internal/forward/spool"
)

// A readBatch keeps every payload intact (kind byte, then the line) when
// lines spill into further buffers, a long line gets a buffer of its own,
// and a reset batch reuses its buffers without allocating.
func TestReadBatch(t *testing.T) {
	var rb readBatch
	line := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"seq":%d,"msg":"%s"}`, i, bytes.Repeat([]byte{'x'}, i%300)))
	}
	long := bytes.Repeat([]byte{'y'}, readBufBytes+10)
	for round := range 3 {
		rb.reset()
		for i := range 1024 {
			rb.add(kindEntry, line(i))
			if i == 500 {
				rb.add(kindGap, long)
			}
		}
		if len(rb.payloads) != 1025 {
			t.Fatalf("round %d: %d payloads", round, len(rb.payloads))
		}
		k := 0
		for i := range 1024 {
			p := rb.payloads[k]
			if p[0] != kindEntry || !bytes.Equal(p[1:], line(i)) {
				t.Fatalf("round %d: payload %d is %.40q", round, k, p)
			}
			k++
			if i == 500 {
				if p := rb.payloads[k]; p[0] != kindGap || !bytes.Equal(p[1:], long) {
					t.Fatalf("round %d: the long payload is wrong", round)
				}
				k++
			}
		}
	}
	rb.reset()
	lines := make([][]byte, 1024)
	for i := range lines {
		lines[i] = line(i)
	}
	fill := func() {
		rb.reset()
		for _, l := range lines {
			rb.add(kindEntry, l)
		}
	}
	fill()
	if a := testing.AllocsPerRun(10, fill); a != 0 {
		t.Fatalf("refilling a batch allocates %.1f times", a)
	}
}

// reserve keeps the items in order, makes the room asked for, and in the
// steady state (as many acknowledged as appended) stops allocating.
func TestReserve(t *testing.T) {
	var arr, q []item
	next, first := uint64(1), uint64(1)
	step := func(add, ack int) {
		arr, q = reserve(arr, q, add)
		if cap(q)-len(q) < add {
			t.Fatalf("reserve(%d) left room for %d", add, cap(q)-len(q))
		}
		for range add {
			q = append(q, item{has: true, seq: next, end: spool.Pos{Off: next}})
			next++
		}
		q = q[min(ack, len(q)):]
		first += uint64(min(ack, int(next-first)))
		for i := range q {
			if q[i].seq != first+uint64(i) {
				t.Fatalf("item %d has seq %d, want %d", i, q[i].seq, first+uint64(i))
			}
		}
	}
	for range 100 {
		step(300, 100) // growing
	}
	if a := testing.AllocsPerRun(1000, func() { step(257, 257) }); a != 0 {
		t.Fatalf("steady state allocates %.2f times per step", a)
	}
}

func BenchmarkReadBatch(b *testing.B) {
	line := []byte(`{"seq":123456,"time":"2026-12-02T00:00:00.123456789Z","source":"w1","msg":"` + string(bytes.Repeat([]byte{'x'}, 80)) + `","facility":3,"severity":6}`)
	var rb readBatch
	b.ReportAllocs()
	b.SetBytes(int64(len(line)) * 1024)
	for range b.N {
		rb.reset()
		for range 1024 {
			rb.add(kindEntry, line)
		}
	}
}
