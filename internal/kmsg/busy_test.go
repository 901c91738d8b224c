package kmsg

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

// TestAskMemlogdRetriesBusy: a memlogd refusing the question because every
// reader slot is taken is asked again, not taken for having no answer.
func TestAskMemlogdRetriesBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		replies := []string{
			`{"type":"error","code":"busy","error":"too many readers (limit 1); try again later"}`,
			`{"type":"error","error":"too many readers (limit 1); try again later"}`, // before codes
			`{"type":"hello","instance":"i","boot":"boot-y","first":1,"next":3,"resumed":false,"kmsg":true}` + "\n" +
				`{"type":"end","seq":3}`,
		}
		for i := 0; i < len(replies); {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b := make([]byte, 4096)
			n, _ := c.Read(b)
			if n > 0 && b[0] == '{' {
				// LinuxKit's request sent beside it is left unanswered.
				c.Write([]byte(replies[i] + "\n"))
				i++
			}
			c.Close()
		}
	}()
	info, err := askMemlogd(context.Background(), path, 30*time.Second)
	if err != nil || !info.kmsg || info.boot != "boot-y" {
		t.Fatalf("askMemlogd = %+v, %v; want the third answer", info, err)
	}
}

// LinuxKit's memlogd never answers the extended request but answers its
// own dump request: the service knows within logclient.LegacyGrace, not
// at the query timeout.
func TestAskMemlogdLinuxKitQuickly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.sock")
	testutil.ServeUnix(t, path, func(c net.Conn) {
		b := make([]byte, 1)
		if n, _ := c.Read(b); n == 1 && b[0] == 0 {
			c.Write([]byte(`{"time":"2026-01-01T00:00:00Z","source":"memlogd","msg":"memlogd started"}` + "\n"))
			c.Close()
		}
	})
	const timeout = 20 * time.Second
	start := time.Now()
	_, err := askMemlogd(context.Background(), path, timeout)
	if err == nil || !strings.Contains(err.Error(), "LinuxKit") {
		t.Fatalf("askMemlogd: %v; want LinuxKit's memlogd named", err)
	}
	if el := time.Since(start); el >= timeout/2 {
		t.Fatalf("took %v of the %v timeout", el, timeout)
	}
}
