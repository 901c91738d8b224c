package suite

import (
	"bytes"
	"fmt"
	"io"
	"regexp"

	"github.com/lklog/lklog/internal/vm/term"
)

// reportTail is how many of the guest's last lines (other than memlogd's
// console echo) a failure report shows.
const reportTail = 25

// echoLine matches memlogd's console echo, "<RFC 3339 time>;source;msg":
// in a load case it is most of the output, and it says nothing about why
// the case failed.
var echoLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d);`)

// failLine matches the lines that say why a case failed: check.sh's
// "FAIL: ..." (from test/lib/common.sh) and the test init's verdict on
// the check.
var failLine = regexp.MustCompile(`^(FAIL\b|vmtest-init: check:)`)

// Report writes a failed case's verdict for a person: its FAIL lines
// first, then the guest's last lines without memlogd's console echo, then
// where the whole output is.
func Report(w io.Writer, r *CaseResult) {
	fmt.Fprintf(w, "FAIL %s (%.1fs): %s\n", r.Case.Name, r.Elapsed.Seconds(), r.Detail)
	var plain bytes.Buffer // without the firmware's escape codes
	st := &term.Stripper{W: &plain}
	st.Write(r.Serial)
	st.Flush()
	lines := bytes.Split(bytes.TrimRight(plain.Bytes(), "\n"), []byte("\n"))
	if plain.Len() == 0 {
		lines = nil
	}
	var fails, rest [][]byte
	echoed := 0
	for _, l := range lines {
		l = bytes.TrimRight(l, "\r")
		switch {
		case failLine.Match(l):
			fails = append(fails, l)
		case echoLine.Match(l):
			echoed++
			continue
		}
		rest = append(rest, l)
	}
	for _, l := range fails {
		fmt.Fprintf(w, "    %s\n", l)
	}
	if len(rest) > 0 {
		n := min(len(rest), reportTail)
		fmt.Fprintf(w, "  last %d lines of the guest's output (without memlogd's console echo, %d lines):\n", n, echoed)
		for _, l := range rest[len(rest)-n:] {
			fmt.Fprintf(w, "    | %s\n", l)
		}
	}
	if r.SerialPath != "" {
		fmt.Fprintf(w, "  all of it (%d lines): %s\n", len(lines), r.SerialPath)
	}
}
