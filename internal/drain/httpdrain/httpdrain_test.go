package httpdrain

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/iotest"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
)

type okProto struct{}

func (okProto) Endpoint() string                                           { return "" }
func (okProto) ContentType() string                                        { return "text/plain" }
func (okProto) Encode(dst []byte, _ []drain.Message, _ http.Header) []byte { return dst }
func (okProto) Check(int, []byte, int) batch.Result                        { return batch.Result{} }

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {" 7 ", 7 * time.Second}, {"0", 0}, {"-5", 0}, {"99999", 10 * time.Minute}, {"soon", 0},
		{"Tue, 01 Dec 2026 10:00:30 GMT", 30 * time.Second}, {"Tue, 01 Dec 2026 09:00:00 GMT", 0},
	} {
		if got := RetryAfter(c.v, now); got != c.want {
			t.Errorf("%q: %v, want %v", c.v, got, c.want)
		}
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"", "3", "Tue, 01 Dec 2026 10:00:30 GMT", "9223372036854775807", "-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := RetryAfter(v, time.Now()); d < 0 || d > 10*time.Minute {
			t.Fatalf("%q: %v", v, d)
		}
	})
}

// The retry rules: 2xx taken, 408/429/5xx retried with Retry-After,
// configuration errors retried slowly, other 4xx rejected; a 2xx whose
// reply was cut is retried.
func TestClassify(t *testing.T) {
	h := http.Header{"Retry-After": {"4"}}
	if r := Classify(204, nil, nil, nil, 5, okProto{}); r.Err != nil || r.Rejected != 0 {
		t.Fatalf("204: %+v", r)
	}
	if r := Classify(200, nil, nil, errors.New("cut"), 5, okProto{}); r.Err == nil {
		t.Fatalf("cut reply: %+v", r)
	}
	for _, code := range []int{408, 429, 500, 503} {
		if r := Classify(code, h, []byte("busy"), nil, 5, okProto{}); r.Err == nil || r.RetryAfter != 4*time.Second || r.Refused {
			t.Fatalf("%d: %+v", code, r)
		}
	}
	for _, code := range []int{401, 403, 404} {
		if r := Classify(code, nil, nil, nil, 5, okProto{}); r.Err == nil || !r.Refused {
			t.Fatalf("%d: %+v", code, r)
		}
	}
	if r := Classify(400, nil, []byte("bad\x00 thing\n"), nil, 5, okProto{}); r.Err != nil || r.Rejected != 5 || r.Reason != "HTTP 400 bad  thing" {
		t.Fatalf("400: %+v", r)
	}
}

// readAll reads what io.ReadAll reads (or fails as it does), whatever
// the reader's pieces, and fills the buffer it is given without allocating when it
// is large enough.
func TestReadAll(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000)
	for name, r := range map[string]func() io.Reader{
		"plain":   func() io.Reader { return bytes.NewReader(data) },
		"onebyte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data[:3000])) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"limit":   func() io.Reader { return io.LimitReader(bytes.NewReader(data), 777) },
		"timeout": func() io.Reader { return iotest.TimeoutReader(bytes.NewReader(data)) },
		"empty":   func() io.Reader { return bytes.NewReader(nil) },
	} {
		want, werr := io.ReadAll(r())
		got, gerr := readAll(nil, r())
		// On an error the bytes read before it do not matter: the
		// reply counts as cut.
		if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes, %v", name, len(got), gerr, len(want), werr)
		}
		again, aerr := readAll(got[:0], r())
		if aerr == nil && !bytes.Equal(again, want) {
			t.Errorf("%s, into a used buffer: %d bytes, want %d", name, len(again), len(want))
		}
	}
	buf := make([]byte, 0, len(data)+1)
	if a := testing.AllocsPerRun(10, func() { buf, _ = readAll(buf[:0], bytes.NewReader(data)) }); a > 1 { // the reader itself
		t.Fatalf("%.1f allocations reading into a buffer large enough", a)
	}
}
