package httpdrain

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/logproto"
)

// Extra headers that would inject another header, or that no server can
// parse, are refused when the drain is made, naming the header.
func TestHeadersRefusedAtLoad(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:1/")
	for _, c := range []struct {
		h    http.Header
		want string
	}{
		{http.Header{"X-A": {"ok\r\nInjected: 1"}}, "X-A"},
		{http.Header{"X-A": {"nul\x00"}}, "X-A"},
		{http.Header{"X-A": {"lf\nonly"}}, "0xa"},
		{http.Header{"Bad Name": {"v"}}, "Bad Name"},
		{http.Header{"X:Y": {"v"}}, "X:Y"},
		{http.Header{"": {"v"}}, "header name"},
	} {
		_, err := New(Options{Base: base, Protocol: okProto{}, Headers: c.h}, batch.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one naming %q", c.h, err, c.want)
		}
	}
	if _, err := New(Options{Base: base, Protocol: okProto{}, Headers: http.Header{"X-Scope-OrgID": {"tenant 1\tx"}}}, batch.Options{}); err != nil {
		t.Errorf("a good header refused: %v", err)
	}
}

// A bearer token with a line break is refused at load and, when the file
// changes later, at the request, which is then not sent.
func TestTokenFileLineBreak(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	base, _ := url.Parse(srv.URL)
	tf := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tf, []byte("secret\nX-Injected: 1\n"), 0o600)
	if _, err := New(Options{Base: base, Protocol: okProto{}, TokenFile: tf}, batch.Options{}); err == nil || !strings.Contains(err.Error(), "token file") {
		t.Fatalf("error %v", err)
	}
	os.WriteFile(tf, []byte("secret\n"), 0o600)
	o := Options{Base: base, Protocol: okProto{}, TokenFile: tf, Timeout: 30 * time.Second}
	if _, err := New(o, batch.Options{}); err != nil {
		t.Fatal(err)
	}
	s := &sender{o: &o, client: srv.Client(), url: srv.URL}
	msgs := []drain.Message{{Rec: logproto.Record{Seq: 1, Msg: "m"}}}
	if res := s.Deliver(context.Background(), msgs); res.Err != nil || hits.Load() != 1 {
		t.Fatalf("%+v, %d requests", res, hits.Load())
	}
	os.WriteFile(tf, []byte("secret\r\nX-Injected: 1"), 0o600)
	res := s.Deliver(context.Background(), msgs)
	if res.Err == nil || !res.Refused || !strings.Contains(res.Err.Error(), "token file") || hits.Load() != 1 {
		t.Fatalf("%+v, %d requests", res, hits.Load())
	}
}
