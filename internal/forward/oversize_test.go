package forward

import (
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/forward/spool"
	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

// An entry line too long for a spool record (2.9 MB of control bytes is
// 17 MB of JSON) becomes the same entry with its message cut to fit and
// marked truncated; lines that fit are passed on as they are.
func TestFitEntry(t *testing.T) {
	var enc logproto.Encoder
	e := ring.Entry{Seq: 42, Time: time.Date(2026, 12, 1, 0, 0, 0, 5, time.UTC).UnixNano(), OrigTime: 7, Source: []byte("big\xff"),
		Msg: []byte(strings.Repeat("\x01", 2900000)), SD: []byte(`[a@1 b="c"]`), PID: 9, Facility: 3, Severity: 6, Flags: ring.FlagHasPID | ring.FlagPartial}
	line := enc.AppendEntry(nil, &e)
	line = line[:len(line)-1]
	if len(line) < spool.MaxPayload {
		t.Fatalf("the test line is only %d bytes", len(line))
	}
	got := fitEntry(line)
	if len(got)+1 > spool.MaxPayload {
		t.Fatalf("%d bytes still", len(got))
	}
	r, err := logproto.DecodeRecord(got)
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 42 || r.Source != "big\xff" || r.SD != `[a@1 b="c"]` || r.PID != 9 || r.Facility != 3 || r.Severity != 6 || !r.Truncated || !r.Partial ||
		!r.Time.Equal(time.Unix(0, e.Time)) || r.TS.UnixNano() != 7 || len(r.Msg) != keepOfOversized || r.Msg != string(e.Msg[:keepOfOversized]) {
		t.Fatalf("%+v (msg %d bytes)", r, len(r.Msg))
	}
	small := []byte(`{"seq":1,"time":"2026-12-01T00:00:00Z","source":"a","msg":"x","facility":3,"severity":6}`)
	if got := fitEntry(small); string(got) != string(small) {
		t.Fatalf("%s", got)
	}
	// A line that does not decode becomes a notice with its seq.
	bad := append([]byte(`{"seq":77,"msg":"`), strings.Repeat("x", spool.MaxPayload)...)
	r, err = logproto.DecodeRecord(fitEntry(bad))
	if err != nil || r.Seq != 77 || r.Source != "logforward" || !strings.Contains(r.Msg, "did not decode") {
		t.Fatalf("%+v %v", r, err)
	}
}
