package elastic

import (
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	b := &Bulk{}
	if r := b.Check(200, []byte(`{"took":3,"errors":false,"items":[{"create":{"status":201}}]}`), 1); r.Err != nil || r.Rejected != 0 || len(r.Retry) != 0 {
		t.Fatalf("%+v", r)
	}
	// "errors":false inside an item does not count.
	r := b.Check(200, []byte(`{"items":[{"create":{"status":400,"error":{"x":"\"errors\":false"}}}],"errors":true}`), 1)
	if r.Rejected != 1 {
		t.Fatalf("%+v", r)
	}
	if r := b.Check(200, []byte(`{"errors":true,"items":[]}`), 2); r.Err == nil {
		t.Fatalf("item count mismatch not an error: %+v", r)
	}
	if got := string(ExpandIndex(nil, "logs-%Y.%m.%d-%H%%x", time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))); got != "logs-2026.03.04-05%%x" {
		t.Fatal(got)
	}
	if CheckIndex("Logs") == nil || CheckIndex("_x") == nil || CheckIndex("logs-2026.01") != nil {
		t.Fatal("CheckIndex")
	}
}

// Any reply is classified without a panic; a reply with items for every
// action never asks to retry more items than were sent.
func FuzzCheck(f *testing.F) {
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":429}},{"create":{"status":400}}]}`), 2)
	f.Add([]byte(`{"errors":false}`), 1)
	f.Add([]byte(`not json`), 3)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		r := (&Bulk{}).Check(200, body, n)
		if len(r.Retry)+r.Rejected > n {
			t.Fatalf("%d retried + %d rejected of %d", len(r.Retry), r.Rejected, n)
		}
		for _, i := range r.Retry {
			if i < 0 || i >= n {
				t.Fatalf("retry index %d of %d", i, n)
			}
		}
	})
}
