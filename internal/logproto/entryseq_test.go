package logproto

import "testing"

func TestEntrySeq(t *testing.T) {
	for _, c := range []struct {
		line string
		seq  uint64
		ok   bool
	}{
		{`{"seq":1041,"time":"x"}`, 1041, true},
		{`{"seq":0}`, 0, true},
		{`{"seq":18446744073709551615}`, 18446744073709551615, true},
		{`{"seq":x}`, 0, false},
		{`{"type":"gap","lost":1,"seq":5}`, 0, false},
		{`{"seq"`, 0, false},
		{``, 0, false},
	} {
		seq, ok := EntrySeq([]byte(c.line))
		if seq != c.seq || ok != c.ok {
			t.Errorf("EntrySeq(%q) = %d, %v; want %d, %v", c.line, seq, ok, c.seq, c.ok)
		}
	}
}
