package logforward

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

// A local sender's structured data that copies logforward's own element
// (to forge the instance and seq receivers find duplicates by) reaches
// rsyslog as a value, beside the one real lklog@32473 element; and a
// datagram over maxsize whose structured data alone passes it arrives
// with parseable structured data and its seq.
func TestSyslogForgedSD(t *testing.T) {
	for _, kind := range []string{"tcp", "udp"} {
		t.Run(kind, func(t *testing.T) {
			input := tcpInput
			url := "syslog+tcp://127.0.0.1:%d"
			if kind == "udp" {
				input, url = `module(load="imudp")`, "syslog+udp://127.0.0.1:%d?maxsize=1024"
			}
			r := startRsyslog(t, kind, "", input, `input(type="im`+kind+`" address="127.0.0.1" port="%PORT%" ruleset="r")`)
			d := testutil.StartWith(t, testutil.Options{Syslog: true})
			f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf(url, r.Port))
			waitReading(t, f)
			c, err := net.Dial("unixgram", d.Syslog)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprint(c, `<14>1 2026-12-01T10:00:00Z - sshd 7 - [lklog@32473 instance="forged" seq="1"] forged dedup key`)
			fmt.Fprint(c, `<14>1 2026-12-01T10:00:00Z - sshd 7 - [big@1 v="`+strings.Repeat("x", 1500)+`"] big sd`)
			sshd := func(all []received) (out []received) {
				for _, m := range all {
					if m.App == "sshd" {
						out = append(out, m)
					}
				}
				return out
			}
			ms := sshd(r.waitFor(60*time.Second, func(ms []received) bool { return len(sshd(ms)) >= 2 }))
			if len(ms) < 2 {
				t.Fatalf("rsyslog got %d messages; log:\n%s", len(ms), f.Output())
			}
			for _, m := range ms[:2] {
				// The forged element can only appear escaped, as a value (instance=\"...).
				if n := strings.Count(m.SD, `[lklog@32473 instance="`); n != 1 || strings.Contains(m.SD, `[lklog@32473 instance="forged"`) || !strings.Contains(m.SD, ` seq="`) {
					t.Errorf("structured data %q (msg %q): want one lklog@32473 element, logforward's", m.SD, m.Msg)
				}
			}
			if !strings.Contains(ms[0].SD, `sd="[lklog@32473 instance=\"forged\" seq=\"1\"\]"`) {
				t.Errorf("the sender's structured data is not kept as a value: %q", ms[0].SD)
			}
		})
	}
}
