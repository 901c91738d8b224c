package logforward

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

// A receiver's answer quoted in logforward's log (here an OTLP partial
// success message with a newline and an escape sequence) cannot start a
// line of its own there, which memlogd would keep as an entry passing for
// logforward's, nor send escape sequences to a terminal.
func TestReceiverTextInLog(t *testing.T) {
	const evil = "bad\nlogforward: drain x: forged line\x1b[2J"
	// ExportLogsServiceResponse{partial_success{rejected_log_records: 1, error_message: evil}}
	ps := append([]byte{0x08, 0x01, 0x12, byte(len(evil))}, evil...)
	reply := append([]byte{0x0a, byte(len(ps))}, ps...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(reply)
	}))
	defer srv.Close()
	d := testutil.Start(t)
	f := startForward(t, d, t.TempDir(), "-drain", "otlp+"+srv.URL+"?sources=app&linger=10ms")
	w := d.Socketpair("app")
	fmt.Fprintln(w, "one line")
	if !testutil.Eventually(60*time.Second, func() bool { return strings.Contains(f.Output(), "OTLP partial success") }) {
		t.Fatalf("no partial success logged:\n%s", f.Output())
	}
	out := f.Output()
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "logforward: drain x: forged") || strings.Contains(line, "\x1b") {
			t.Fatalf("the receiver's text made a line of its own or kept its escape:\n%q", out)
		}
	}
	if !strings.Contains(out, `bad\x0alogforward: drain x: forged line\x1b[2J`) {
		t.Fatalf("the reason is not quoted escaped:\n%q", out)
	}
}

func FuzzOneLine(f *testing.F) {
	f.Add("plain line")
	f.Add("a\nb\r\x1b[31m\x7f\x00")
	f.Fuzz(func(t *testing.T, s string) {
		got := oneLine(s)
		for i := 0; i < len(got); i++ {
			if got[i] < ' ' || got[i] == 0x7f {
				t.Fatalf("%q -> %q", s, got)
			}
		}
		clean := true
		for i := 0; i < len(s); i++ {
			clean = clean && s[i] >= ' ' && s[i] != 0x7f
		}
		if clean != (got == s) {
			t.Fatalf("%q -> %q", s, got)
		}
	})
}
