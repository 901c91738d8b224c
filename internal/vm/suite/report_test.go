package suite

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestReportPutsTheReasonFirst: a failed load case's output is thousands
// of console echo lines; the report shows its FAIL lines first, the
// guest's other last lines, and where all of it is, without the echo.
func TestReportPutsTheReasonFirst(t *testing.T) {
	var serial bytes.Buffer
	serial.WriteString("\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2)\r\n")
	serial.WriteString("vmtest-init: starting services\r\n")
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&serial, "2026-12-01T22:31:%02d.%06dZ;load2.out;n %d\r\n", i%60, i, i)
	}
	serial.WriteString("gap in load3.out: after 2586 came 5725\r\n")
	fmt.Fprintf(&serial, "2026-12-01T22:32:00+01:00;load1.out;done 9\n")
	serial.WriteString("FAIL: the follower lost lines\n")
	serial.WriteString("vmtest-init: check: exit status 1\n")
	serial.WriteString("VMTEST-RESULT: FAIL\n")
	r := &CaseResult{
		Case: &Case{Name: "002_load"}, Elapsed: 31500 * time.Millisecond,
		Detail: "fail (qemu exit code 3)", Serial: serial.Bytes(), SerialPath: "/x/002_load/serial.log",
	}
	var out bytes.Buffer
	Report(&out, r)
	got := out.String()
	lines := strings.Split(strings.TrimRight(got, "\n"), "\n")
	if lines[0] != "FAIL 002_load (31.5s): fail (qemu exit code 3)" {
		t.Errorf("first line %q", lines[0])
	}
	if lines[1] != "    FAIL: the follower lost lines" || lines[2] != "    vmtest-init: check: exit status 1" {
		t.Errorf("reason lines not first:\n%s", got)
	}
	if strings.Contains(got, "load2.out;n ") || strings.Contains(got, "load1.out;done") {
		t.Errorf("console echo in the report:\n%s", got)
	}
	for _, want := range []string{"| gap in load3.out: after 2586 came 5725\n", "| vmtest-init: starting services\n", "5001 lines", "all of it (5007 lines): /x/002_load/serial.log\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.ContainsAny(got, "\r\x1b") {
		t.Errorf("carriage returns or escape codes in the report:\n%q", got)
	}
	if len(lines) > 40 {
		t.Errorf("report of %d lines", len(lines))
	}

	// A crash with no output at all still names the case and reason.
	out.Reset()
	Report(&out, &CaseResult{Case: &Case{Name: "x"}, Detail: "crash: qemu: exit code 1"})
	if out.String() != "FAIL x (0.0s): crash: qemu: exit code 1\n" {
		t.Errorf("empty serial: %q", out.String())
	}
}
