package httpdrain

import (
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/logproto"
)

// Fields writes, entry after entry, exactly what AppendFields writes for
// each, whatever the fields hold and however the instance changes
// between entries.
func FuzzFields(f *testing.F) {
	f.Add("vm1", "boot", "@timestamp", "message", "line", "src", "[a b=\"c\"]", "inst", "other", uint64(7), 42, int64(1764633600), int64(5), true)
	f.Add("", "", "time", "msg", "", "", "", "", "", uint64(0), 0, int64(-1), int64(0), false)
	f.Add("h\"<", "b\x00", "t\u2028", "m\xff", "é\n\t", "s\\", "", "i\"", "i\"", uint64(1<<63), -1, int64(253402300800), int64(999999999), true)
	f.Fuzz(func(t *testing.T, host, boot, timeKey, msgKey, msg, source, sd, inst1, inst2 string, seq uint64, pid int, sec, nsec int64, flags bool) {
		meta := &Meta{Host: host, Boot: boot}
		var msgs []drain.Message
		for i, inst := range []string{inst1, inst1, inst2, "", inst1, inst2, inst2} {
			m := drain.Message{Instance: inst, Rec: logproto.Record{Seq: seq + uint64(i), Time: time.Unix(sec+int64(i), nsec), Source: source, Msg: msg, SD: sd, PID: pid, Severity: i, Facility: i * 3}}
			if flags {
				m.Rec.TS = time.Unix(sec-int64(i), nsec/2)
				m.Rec.Truncated, m.Rec.Partial, m.Rec.Raw = i%2 == 0, i%3 == 0, i%4 == 0
			}
			msgs = append(msgs, m)
		}
		fs := NewFields(meta, timeKey, msgKey)
		var got, want []byte
		for i := range msgs {
			got = append(got, '{')
			got = fs.Append(got, &msgs[i])
			got = append(got, '}', '\n')
			want = append(want, '{')
			want = AppendFields(want, &msgs[i], meta, timeKey, msgKey)
			want = append(want, '}', '\n')
		}
		if string(got) != string(want) {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	})
}
