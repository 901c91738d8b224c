package logclient

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	"github.com/lklog/lklog/internal/logproto"
)

// TestServerErrorCodes: an error record's code says whether a refusal is
// "busy, retry" or "your cursor is refused"; memlogds without codes are
// classified by their messages.
func TestServerErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		line          string
		busy, refused bool
	}{
		{string(logproto.AppendError(nil, logproto.ErrBusy, "too many readers (limit 1); try again later")), true, false},
		{string(logproto.AppendError(nil, logproto.ErrCursor, "cursor 9 is beyond the newest entry 3 of this instance")), false, true},
		{string(logproto.AppendError(nil, logproto.ErrRequest, `mode "x": want ...`)), false, false},
		// Before codes.
		{`{"type":"error","error":"too many readers (limit 64); try again later"}` + "\n", true, false},
		{`{"type":"error","error":"cursor 9 is beyond the newest entry 3 of this instance"}` + "\n", false, true},
		{`{"type":"error","error":"source pattern \"[\": syntax error in pattern"}` + "\n", false, false},
		// A newer memlogd's code this client does not know.
		{`{"type":"error","code":"shutting-down","error":"too many readers"}` + "\n", false, false},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "q.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.Write([]byte(tc.line))
			c.Close()
		}()
		_, err = Open(context.Background(), path, logproto.Request{Mode: logproto.ModeDump})
		l.Close()
		var serr *ServerError
		if !errors.As(err, &serr) {
			t.Errorf("%s: Open returned %v, want a ServerError", tc.line, err)
			continue
		}
		if serr.Busy() != tc.busy || serr.CursorRefused() != tc.refused {
			t.Errorf("%s: busy %v refused %v, want %v %v", tc.line, serr.Busy(), serr.CursorRefused(), tc.busy, tc.refused)
		}
	}
}
