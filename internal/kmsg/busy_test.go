package kmsg

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
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
		for _, r := range replies {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.Write([]byte(r + "\n"))
			c.Close()
		}
	}()
	info, err := askMemlogd(context.Background(), path, 30*time.Second)
	if err != nil || !info.kmsg || info.boot != "boot-y" {
		t.Fatalf("askMemlogd = %+v, %v; want the third answer", info, err)
	}
}
