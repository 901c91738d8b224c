package logwrite

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestBusyMemlogdKeepsCursor: memlogd refusing logwrite because every
// reader slot is taken is a retry, not a refused cursor: once a slot
// frees, logwrite continues after its cursor and writes nothing twice.
func TestBusyMemlogdKeepsCursor(t *testing.T) {
	e := newEnv(t, 10000, "-max-readers", "1")
	lw := e.logwrite("-max-backoff", "200ms")
	src := e.source("svc")
	writeNumbers(t, src, "n", 1, 100)
	waitFor(t, 30*time.Second, "lines 1-100", func() bool { return countLines(t, e.logDir, "svc") == 100 })
	lw.stop(t)

	// Another reader holds the only slot while logwrite restarts.
	var holder net.Conn
	waitFor(t, 30*time.Second, "the reader slot", func() bool {
		c, err := net.Dial("unix", e.querySock())
		if err != nil {
			return false
		}
		c.Write([]byte(`{"mode":"follow"}` + "\n"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		if !strings.Contains(string(buf[:n]), `"type":"hello"`) {
			c.Close() // logwrite's old slot not freed yet
			return false
		}
		holder = c
		return true
	})
	lw = e.logwrite("-max-backoff", "200ms")
	waitFor(t, 30*time.Second, "logwrite to be refused", func() bool { return strings.Contains(lw.Output(), "too many readers") })
	holder.Close()
	writeNumbers(t, src, "n", 101, 110)
	waitFor(t, 30*time.Second, "lines 101-110", func() bool { return countLines(t, e.logDir, "svc") >= 110 })
	lw.stop(t)
	nums, lost := numbers(t, sourceLines(t, e.logDir, "svc"), "svc", "n")
	if lost != 0 {
		t.Errorf("%d entries reported lost", lost)
	}
	exactlyOnce(t, nums, 1, 110)
	if strings.Contains(lw.Output(), "refused the cursor") {
		t.Errorf("logwrite took a busy memlogd for a refused cursor:\n%s", lw.Output())
	}
}
