package logforward

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.BuildAndRun(m)) }

// fwd is a logforward process under test.
type fwd struct {
	*testutil.Proc
	control, state string
}

func startForward(t *testing.T, d *testutil.Daemon, state string, args ...string) *fwd {
	t.Helper()
	bin := testutil.Bin(t, "logforward")
	control := filepath.Join(testutil.ShortTempDir(t), "ctl.sock")
	all := append([]string{"-socket", d.Query, "-state-dir", state, "-control", control, "-hostname", "vm1", "-max-backoff", "500ms"}, args...)
	p := testutil.StartProc(t, bin, all...)
	f := &fwd{Proc: p, control: control, state: state}
	if !testutil.Eventually(30*time.Second, func() bool {
		_, err := os.Stat(control)
		return err == nil
	}) {
		t.Fatalf("logforward did not start: %s", p.Output())
	}
	return f
}

// writeLines writes n numbered lines "<src> line <i>" to w.
func writeLines(t *testing.T, w *os.File, src string, from, n int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "%s line %d\n", src, i)
		if b.Len() > 32<<10 {
			if _, err := w.WriteString(b.String()); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if _, err := w.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

var lineRE = regexp.MustCompile(`^(\S+) line (\d+)$`)

// tally checks numbered lines per source: in order (counting repeats of
// earlier lines as duplicates) and returns, per source, how many distinct
// lines arrived and how many arrived again.
func tally(ms []received) (distinct map[string]int, dups int, outOfOrder []string) {
	distinct = map[string]int{}
	seen := map[string]map[int]bool{}
	last := map[string]int{}
	for _, m := range ms {
		sm := lineRE.FindStringSubmatch(m.Msg)
		if sm == nil {
			continue
		}
		src := sm[1]
		n, _ := strconv.Atoi(sm[2])
		if seen[src] == nil {
			seen[src] = map[int]bool{}
			last[src] = -1
		}
		if seen[src][n] {
			dups++
			continue
		}
		if n != last[src]+1 && len(outOfOrder) < 10 {
			outOfOrder = append(outOfOrder, fmt.Sprintf("%s: %d after %d", src, n, last[src]))
		}
		seen[src][n] = true
		last[src] = n
		distinct[src]++
	}
	return distinct, dups, outOfOrder
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

const tcpInput = `module(load="imtcp")
`

// Numbered lines from several sources, a syslog entry with structured
// data and a pid, and hostile bytes arrive over TCP with the right
// RFC 5424 fields, in order per source.
func TestSyslogTCP(t *testing.T) {
	r := startRsyslog(t, "tcp", "", tcpInput, `input(type="imtcp" address="127.0.0.1" port="%PORT%" ruleset="r")`)
	d := testutil.StartWith(t, testutil.Options{Syslog: true, Args: []string{"-max-line-len", "70000"}})
	f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf("syslog+tcp://127.0.0.1:%d", r.Port))
	checkDelivery(t, r, d, f)
}

// checkDelivery writes numbered lines and special entries and checks
// what r received.
func checkDelivery(t *testing.T, r *rsyslog, d *testutil.Daemon, f *fwd) {
	t.Helper()
	const per = 300
	srcs := []string{"onboot.001-a.out", "svc", "sshd.out"}
	for _, s := range srcs {
		writeLines(t, d.Socketpair(s), s, 0, per)
	}
	// A syslog client with structured data, a pid, a newline.
	c, err := net.Dial("unixgram", d.Syslog)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(`<35>1 2026-12-01T10:11:12.123456Z h ntpd 81 - [x@32473 a="1\]"] two` + "\nlines"))
	c.Close()
	// Hostile bytes: control characters, invalid UTF-8, a 64 KiB line.
	h := d.Socketpair("hostile")
	h.WriteString("ctl \x01\x1b[31m red \xff\xfe end\n")
	long := strings.Repeat("x", 64<<10)
	h.WriteString(long + "\n")
	ms := r.waitFor(60*time.Second, func(ms []received) bool { return len(ms) >= 3*per+3 })
	distinct, dups, ooo := tally(ms)
	if total(distinct) != 3*per || dups != 0 || len(ooo) > 0 {
		t.Fatalf("numbered lines: %v, %d duplicates, out of order %q; logforward:\n%s", distinct, dups, ooo, f.Output())
	}
	var sd, ctl, big *received
	for i := range ms {
		m := &ms[i]
		switch {
		case m.App == "ntpd":
			sd = m
		case strings.HasPrefix(m.Msg, "ctl "):
			ctl = m
		case len(m.Msg) >= 64<<10:
			big = m
		}
		if lineRE.MatchString(m.Msg) {
			src := lineRE.FindStringSubmatch(m.Msg)[1]
			if m.App != src || m.PRI != "30" || m.Host != "vm1" || m.ProcID != "-" || !regexp.MustCompile(`^\[lklog@32473 instance="[0-9a-f]+" seq="\d+"\]$`).MatchString(m.SD) {
				t.Fatalf("fields of %+v", *m)
			}
		}
	}
	if sd == nil || sd.PRI != "35" || sd.ProcID != "81" || !strings.HasPrefix(sd.SD, `[x@32473 a="1\]"][lklog@32473 `) || sd.Msg != "two\nlines" || !strings.HasPrefix(sd.Time, "2026-12-01T10:11:12.123456") {
		t.Fatalf("syslog entry: %+v", sd)
	}
	if ctl == nil || ctl.Msg != "ctl \x01\x1b[31m red \ufffd\ufffd end" && ctl.Msg != "ctl \x01\x1b[31m red \xff\xfe end" {
		t.Fatalf("control characters: %+v", ctl)
	}
	if big == nil || big.Msg != long {
		t.Fatalf("64 KiB line did not arrive whole (%d messages)", len(ms))
	}
	_ = syscall.SIGTERM
}
