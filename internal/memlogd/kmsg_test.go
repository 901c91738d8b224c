package memlogd

import (
	"strings"
	"testing"

	"github.com/lklog/lklog/internal/kmsg"
	"github.com/lklog/lklog/internal/ring"
)

func TestKmsgGuardDropsDuplicatesAndWarnsOnce(t *testing.T) {
	r, err := ring.New(ring.Config{MaxEntries: 100, MaxBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{ring: r}
	g := &kmsgGuard{d: d}
	sd := kmsg.AppendSD(nil, &kmsg.Record{Seq: 7})
	for i := 0; i < 3; i++ {
		g.Append(
			ring.Entry{Source: []byte("kmsg"), SD: sd, Msg: []byte("kernel says")},
			ring.Entry{Source: []byte("sshd"), Msg: []byte("keep me")},
			ring.Entry{Source: []byte("kmsg"), Msg: []byte("a program calling itself kmsg, without the kernel's seq")},
		)
	}
	var b ring.Batch
	r.Read(1, &b, 100, 1<<16)
	var msgs []string
	warnings := 0
	for _, e := range b.Entries {
		if string(e.Source) == Source {
			warnings++
			if !strings.Contains(string(e.Msg), "remove one of the two") {
				t.Errorf("warning %q", e.Msg)
			}
			continue
		}
		msgs = append(msgs, string(e.Msg))
	}
	if warnings != 1 {
		t.Errorf("%d warnings, want 1", warnings)
	}
	if len(msgs) != 6 {
		t.Fatalf("kept %q", msgs)
	}
	for _, m := range msgs {
		if m == "kernel says" {
			t.Errorf("duplicate kernel record kept")
		}
	}
	if seq, ok := kmsg.SeqFromSD(sd); !ok || seq != 7 {
		t.Fatalf("SD %q does not carry the seq", sd)
	}
}
