package logread_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	tu "github.com/lklog/lklog/internal/testutil"
)

// benchLines entries of about 100 bytes from 4 sources, as in the issue's
// measurement.
const benchLines = 200000

func fullRing(b *testing.B) *tu.Daemon {
	d := tu.Start(b, "-max-lines", fmt.Sprint(benchLines+100), "-max-bytes", "67108864", "-pace-wait", "0")
	pad := strings.Repeat("x", 80)
	for s := range 4 {
		w := d.Socketpair(fmt.Sprintf("bench%d.out", s))
		var sb strings.Builder
		for i := s; i < benchLines; i += 4 {
			fmt.Fprintf(&sb, "n %06d %s\n", i, pad)
		}
		if _, err := w.WriteString(sb.String()); err != nil {
			b.Fatal(err)
		}
	}
	want := fmt.Sprintf("n %06d ", benchLines-1)
	if !tu.Eventually(60*time.Second, func() bool {
		_, recs := tu.Dump(b, d.Query, `"tail":1,"sources":["bench*"]`)
		return len(recs) == 1 && strings.HasPrefix(recs[0].Msg, want)
	}) {
		b.Fatal("the ring did not fill")
	}
	return d
}

// BenchmarkDump: one logread dump of a full ring to /dev/null, as text
// and as -json (memlogd's records unchanged: the floor for text).
func BenchmarkDump(b *testing.B) {
	d := fullRing(b)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	for _, mode := range []string{"text", "json"} {
		b.Run(mode, func(b *testing.B) {
			args := []string{"-socket", d.Query}
			if mode == "json" {
				args = append(args, "-json")
			}
			var cpu time.Duration
			for b.Loop() {
				cmd := exec.Command(tu.LogreadBin(), args...)
				cmd.Stdout = null
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(cpu.Seconds()*1e6/float64(benchLines)/float64(b.N), "cpu-s/Mlines")
		})
	}
}
