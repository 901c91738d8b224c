package logforward

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

// A memlogd whose reader slots are all taken refuses a restarted
// logforward as busy; logforward must keep its cursor and ask again, not
// take the refusal for a refused cursor and forward the whole ring again.
func TestBusyMemlogdKeepsCursor(t *testing.T) {
	r := startRsyslog(t, "relp", "", `module(load="imrelp")`, relpInput)
	d := testutil.Start(t, "-max-lines", "5000", "-max-readers", "1")
	state := t.TempDir()
	drain := "-drain=" + fmt.Sprintf("relp://127.0.0.1:%d?sources=app", r.Port)
	f := startForward(t, d, state, drain)
	w := d.Socketpair("app")
	writeLines(t, w, "app", 0, 100)
	r.waitFor(60*time.Second, func(ms []received) bool { return len(ms) >= 100 })
	f.Stop(t, syscall.SIGTERM)

	// Another reader holds the only slot while logforward restarts.
	var holder net.Conn
	if !testutil.Eventually(30*time.Second, func() bool {
		c, err := net.Dial("unix", d.Query)
		if err != nil {
			return false
		}
		c.Write([]byte(`{"mode":"follow"}` + "\n"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		if !strings.Contains(string(buf[:n]), `"type":"hello"`) {
			c.Close() // logforward's old slot is not free yet
			return false
		}
		holder = c
		return true
	}) {
		t.Fatal("could not take memlogd's only reader slot")
	}
	f = startForward(t, d, state, drain)
	if !testutil.Eventually(30*time.Second, func() bool { return strings.Contains(f.Output(), "too many readers") }) {
		holder.Close()
		t.Fatalf("logforward was not refused as busy:\n%s", f.Output())
	}
	holder.Close()
	writeLines(t, w, "app", 100, 10)
	ms := r.waitFor(60*time.Second, func(ms []received) bool { return len(ms) >= 110 })
	distinct, dups, ooo := tally(ms)
	if distinct["app"] != 110 || dups != 0 || len(ooo) != 0 {
		t.Fatalf("%d of 110 lines, %d duplicates, out of order %q; log:\n%s", distinct["app"], dups, ooo, f.Output())
	}
	if strings.Contains(f.Output(), "refused the cursor") {
		t.Errorf("logforward took a busy memlogd for a refused cursor:\n%s", f.Output())
	}
}
