package forward

import (
	"reflect"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

// sameRecord compares two records, times by instant.
func sameRecord(a, b logproto.Record) bool {
	if !a.Time.Equal(b.Time) || !a.TS.Equal(b.TS) {
		return false
	}
	a.Time, b.Time, a.TS, b.TS = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func TestDecodeFast(t *testing.T) {
	var enc logproto.Encoder
	e := &ring.Entry{Seq: 42, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano(), Source: []byte("a\"b\x00"),
		Msg: []byte("m\n\xff\u2028é\t"), Facility: 4, Severity: 3, PID: 81, Flags: ring.FlagHasPID | ring.FlagTruncated | ring.FlagRaw,
		OrigTime: time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC).UnixNano(), SD: []byte(`[x@1 a="\]"]`)}
	var d decoder
	for _, msg := range []string{"m\n\xff\u2028é\t", "plain"} {
		e.Msg = []byte(msg)
		line := enc.AppendEntry(nil, e)
		line = line[:len(line)-1]
		fast, ok := d.fast(line)
		slow, err := logproto.DecodeRecord(line)
		if err != nil || !ok || !sameRecord(fast, slow) {
			t.Fatalf("fast %v %+v\nslow %+v (%v)\nline %s", ok, fast, slow, err, line)
		}
	}
	// What encoding/json would change goes the slow way.
	if _, ok := d.fast([]byte(`{"seq":1,"msg":"\ud800"}`)); ok {
		t.Fatal("a lone surrogate took the fast path")
	}
	if _, ok := d.fast([]byte("{\"seq\":1,\"msg\":\"\xff\"}")); ok {
		t.Fatal("invalid UTF-8 took the fast path")
	}
	if got, err := d.decode([]byte(`{"seq":1,"unknown":2}`)); err != nil || got.Seq != 1 {
		t.Fatalf("fallback: %+v %v", got, err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte(`{"seq":7,"time":"2026-12-01T10:00:00.5Z","source":"s","msg":"a\u00e9\n","facility":3,"severity":6}`))
	f.Add([]byte(`{"seq":7,"time":"2026-12-01T10:00:00+01:00","source":"s","msg":"\ud83d\ude00","facility":3,"severity":6,"pid":-1,"ts":"2026-12-01T10:00:00Z","sd":"[a]","truncated":true,"partial":true,"raw":true}`))
	f.Add([]byte(`{"seq":01}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var d decoder
		fast, ok := d.fast(line)
		if !ok {
			return
		}
		slow, err := logproto.DecodeRecord(line)
		if err != nil {
			t.Fatalf("fast path took what encoding/json refuses (%v): %q", err, line)
		}
		if !sameRecord(fast, slow) {
			t.Fatalf("fast %+v\nslow %+v\nline %q", fast, slow, line)
		}
	})
}
