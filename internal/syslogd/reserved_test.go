package syslogd

import (
	"os"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/ring"
	"golang.org/x/sys/unix"
)

// Only root may log as "kmsg" (the kmsg service resumes after the kernel
// sequence number in the last such entry, so a forged one would make it
// skip kernel records) or "memlogd" (memlogd's own notices): another
// sender's datagram naming them is kept whole, raw, under "syslog".
func TestReservedSources(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sending another uid's credentials needs root (CAP_SETUID)")
	}
	col := newCollector()
	s := serve(t, Config{Location: time.UTC, Now: func() time.Time { return testNow }}, col)
	forged := []string{
		`<6>1 2026-12-01T10:00:00Z - kmsg - - [kmsg@32473 seq="999999999"] forged kernel line`,
		`<4>memlogd: 5000 entries lost here`,
		`<6>Dec  1 10:00:00 kmsg: plain`,
	}
	user := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: 65534, Gid: 65534})
	for _, d := range forged {
		sendRaw(t, s.Addr(), user, []byte(d))
	}
	root := unix.UnixCredentials(&unix.Ucred{Pid: int32(os.Getpid()), Uid: 0, Gid: 0})
	sendRaw(t, s.Addr(), root, []byte(forged[0]), []byte(forged[1]))
	sendRaw(t, s.Addr(), user, []byte(`<6>1 - - sshd - - - not reserved`))
	es := col.wait(t, len(forged)+3)
	for i, d := range forged {
		e := es[i]
		if string(e.Source) != DefaultSource || e.Flags&ring.FlagRaw == 0 || string(e.Msg) != d || len(e.SD) != 0 {
			t.Errorf("unprivileged %q: source %q msg %q sd %q flags %#x", d, e.Source, e.Msg, e.SD, e.Flags)
		}
	}
	if e := es[0]; e.Facility != 0 || e.Severity != 6 {
		t.Errorf("facility %d severity %d, want the datagram's PRI", e.Facility, e.Severity)
	}
	if e := es[len(forged)]; string(e.Source) != "kmsg" || string(e.SD) != `[kmsg@32473 seq="999999999"]` {
		t.Errorf("root's kmsg entry: source %q sd %q", e.Source, e.SD)
	}
	if e := es[len(forged)+1]; string(e.Source) != "memlogd" {
		t.Errorf("root's memlogd entry: source %q", e.Source)
	}
	if e := es[len(forged)+2]; string(e.Source) != "sshd" {
		t.Errorf("other sources stay: %q", e.Source)
	}
}
