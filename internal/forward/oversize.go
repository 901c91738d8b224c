package forward

import (
	"fmt"
	"time"

	"github.com/lklog/lklog/internal/forward/spool"
	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

// keepOfOversized is how much of the message of an entry too long for a
// spool record is kept: JSON may write a byte as six (\u0001) and base64
// adds a third, so this always fits.
const keepOfOversized = spool.MaxPayload / 16

// fitEntry returns an entry line memlogd sent, or, when it is too long
// for a spool record (a message of megabytes with -max-line-len raised,
// escaped six times over), the same entry with its message cut to fit
// and marked truncated. Such a line used to fail the spool's append for
// ever, holding the drain at that entry.
func fitEntry(line []byte) []byte {
	if 1+len(line) <= spool.MaxPayload {
		return line
	}
	r, err := logproto.DecodeRecord(line)
	if err != nil {
		r = logproto.Record{Seq: r.Seq, Time: time.Now().UTC(), Source: "logforward", Facility: 5, Severity: 4,
			Msg: fmt.Sprintf("1 entry lost here: a line of %d bytes that did not decode (%v)", len(line), err)}
		if seq, ok := logproto.EntrySeq(line); ok {
			r.Seq = seq
		}
	}
	msg := r.Msg
	if len(msg) > keepOfOversized {
		msg = msg[:keepOfOversized]
	}
	e := ring.Entry{Seq: r.Seq, Time: r.Time.UnixNano(), Source: []byte(r.Source), Msg: []byte(msg), SD: []byte(r.SD),
		PID: int32(r.PID), Facility: uint8(r.Facility), Severity: uint8(r.Severity), Flags: ring.FlagTruncated}
	if !r.TS.IsZero() {
		e.OrigTime = r.TS.UnixNano()
	}
	if r.PID > 0 {
		e.Flags |= ring.FlagHasPID
	}
	if r.Partial {
		e.Flags |= ring.FlagPartial
	}
	if r.Raw {
		e.Flags |= ring.FlagRaw
	}
	var enc logproto.Encoder
	out := enc.AppendEntry(nil, &e)
	return out[:len(out)-1] // without the newline, as reply lines come
}
