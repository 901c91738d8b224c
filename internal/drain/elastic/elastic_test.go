package elastic

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/drain/jsonw"
	"github.com/lklog/lklog/internal/logproto"
)

func TestCheck(t *testing.T) {
	b := &Bulk{}
	if r := b.Check(200, []byte(`{"took":3,"errors":false,"items":[{"create":{"status":201}}]}`), 1); r.Err != nil || r.Rejected != 0 || len(r.Retry) != 0 {
		t.Fatalf("%+v", r)
	}
	// "errors":false inside an item does not count.
	r := b.Check(200, []byte(`{"items":[{"create":{"status":400,"error":{"x":"\"errors\":false"}}}],"errors":true}`), 1)
	if r.Rejected != 1 {
		t.Fatalf("%+v", r)
	}
	if r := b.Check(200, []byte(`{"errors":true,"items":[]}`), 2); r.Err == nil {
		t.Fatalf("item count mismatch not an error: %+v", r)
	}
	if got := string(ExpandIndex(nil, "logs-%Y.%m.%d-%H%%x", time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))); got != "logs-2026.03.04-05%%x" {
		t.Fatal(got)
	}
	if CheckIndex("Logs") == nil || CheckIndex("_x") == nil || CheckIndex("logs-2026.01") != nil {
		t.Fatal("CheckIndex")
	}
}

// Any reply is classified without a panic; a reply with items for every
// action never asks to retry more items than were sent.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":429}},{"create":{"status":400}}]}`), 2)
	f.Add([]byte(`{"errors":false}`), 1)
	f.Add([]byte(`not json`), 3)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		r := (&Bulk{}).Check(200, body, n)
		if len(r.Retry)+r.Rejected > n {
			t.Fatalf("%d retried + %d rejected of %d", len(r.Retry), r.Rejected, n)
		}
		for _, i := range r.Retry {
			if i < 0 || i >= n {
				t.Fatalf("retry index %d of %d", i, n)
			}
		}
	})
}

// reference encodes one action and document the plain way.
func reference(dst []byte, p *Bulk, m *drain.Message) []byte {
	dst = append(dst, `{"create":{"_index":`...)
	dst = jsonw.String(dst, string(ExpandIndex(nil, p.Index, m.Rec.Time)))
	if id := ID(m); id != "" {
		dst = append(dst, `,"_id":`...)
		dst = jsonw.String(dst, id)
	}
	dst = append(dst, "}}\n{"...)
	f := httpdrain.NewFields(&p.Meta, "@timestamp", "message")
	dst = f.Append(dst, m)
	return append(dst, '}', '\n')
}

// Encode writes what the plain encoding does, across hours, days and
// the epoch, with and without ids, and with an instance that needs
// escaping; and it allocates nothing per entry.
func TestEncode(t *testing.T) {
	p := &Bulk{Index: "lklog-%Y.%m.%d-%H", Meta: httpdrain.Meta{Host: "vm1", Boot: "b"}}
	base := time.Date(2026, 12, 31, 22, 59, 59, 999999999, time.UTC)
	var msgs []drain.Message
	for i := range 200 {
		m := drain.Message{Instance: "inst", Rec: logproto.Record{Seq: uint64(i + 1), Time: base.Add(time.Duration(i) * 97 * time.Second), Source: "s", Msg: fmt.Sprintf("line %d", i), Severity: 6, Facility: 3}}
		switch i % 7 {
		case 3:
			m.Rec.Seq = 0
		case 4:
			m.Instance = ""
		case 5:
			m.Instance = `in"st<\`
		}
		msgs = append(msgs, m)
	}
	epoch := time.Unix(0, 0).UTC()
	for _, d := range []time.Duration{-time.Hour - 1, -time.Hour, -1, 0, time.Hour - 1, time.Hour} {
		msgs = append(msgs, drain.Message{Instance: "i", Rec: logproto.Record{Seq: 9, Time: epoch.Add(d), Msg: "e"}})
	}
	var want []byte
	for i := range msgs {
		want = reference(want, p, &msgs[i])
	}
	got := p.Encode(nil, msgs, http.Header{})
	if !bytes.Equal(got, want) {
		g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("line %d:\n got %s\nwant %s", i, g[i], w[i])
			}
		}
		t.Fatalf("%d lines, want %d", len(g), len(w))
	}
	// Within an hour, the index is expanded once.
	same := make([]drain.Message, 100)
	for i := range same {
		same[i] = msgs[0]
		same[i].Rec.Seq = uint64(i + 1)
	}
	buf := make([]byte, 0, 2*len(got))
	if a := testing.AllocsPerRun(10, func() { buf = p.Encode(buf[:0], same, nil) }); a > 10 { // the plain encoding: 2 per entry
		t.Fatalf("%.1f allocations for 100 entries", a)
	}
}

func BenchmarkEncode(b *testing.B) {
	p := &Bulk{Index: DefaultIndex, Meta: httpdrain.Meta{Host: "vm1"}}
	now := time.Now()
	msgs := make([]drain.Message, 1000)
	for i := range msgs {
		msgs[i] = drain.Message{Instance: "0123456789abcdef", Rec: logproto.Record{Seq: uint64(i + 1), Time: now, Source: "w1", Msg: strings.Repeat("x", 79), Severity: 6, Facility: 3}}
	}
	var buf []byte
	b.ReportAllocs()
	for range b.N {
		buf = p.Encode(buf[:0], msgs, nil)
	}
	b.SetBytes(int64(len(buf)))
}
