package logforward

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/forward"
	"github.com/lklog/lklog/internal/testutil"
)

// hit is one request a test server got.
type hit struct {
	at     time.Time
	header http.Header
	body   []byte
}

// scripted is a test HTTP server that answers each request with the next
// step of a script (then with ok) and records what it got.
type scripted struct {
	mu   sync.Mutex
	hits []hit
	// taken holds the bodies the server answered 2xx to.
	taken [][]byte
	steps []func(w http.ResponseWriter, r *http.Request, body []byte) bool // true: taken
	ok    func(w http.ResponseWriter, r *http.Request, body []byte)
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.hits = append(s.hits, hit{time.Now(), r.Header.Clone(), body})
	var step func(http.ResponseWriter, *http.Request, []byte) bool
	if len(s.steps) > 0 {
		step, s.steps = s.steps[0], s.steps[1:]
	}
	s.mu.Unlock()
	taken := true
	if step != nil {
		taken = step(w, r, body)
	} else if s.ok != nil {
		s.ok(w, r, body)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	if taken {
		s.mu.Lock()
		s.taken = append(s.taken, body)
		s.mu.Unlock()
	}
}

func (s *scripted) snapshot() ([]hit, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hit(nil), s.hits...), append([][]byte(nil), s.taken...)
}

// jsonLines decodes the JSON lines of the bodies the server took.
func jsonLines(t *testing.T, bodies [][]byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range bodies {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			out = append(out, m)
		}
	}
	return out
}

func status429(after string) func(http.ResponseWriter, *http.Request, []byte) bool {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		w.Header().Set("Retry-After", after)
		w.WriteHeader(http.StatusTooManyRequests)
		return false
	}
}

func statusCode(code int, text string) func(http.ResponseWriter, *http.Request, []byte) bool {
	return func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		http.Error(w, text, code)
		return false
	}
}

// closeMidBody sends the start of a 200 reply and hangs up.
func closeMidBody(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
	c, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"took\":")
	buf.Flush()
	c.Close()
	return false
}

func slow(d time.Duration) func(http.ResponseWriter, *http.Request, []byte) bool {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		return false
	}
}

// The HTTP error paths against a server of our own: 429 with Retry-After
// is waited for, 500, a reply cut mid-body and a server slower than the
// timeout are retried, a 400 rejects that batch for good (logged and
// counted, not sent again); every other line arrives with its fields;
// the password is sent to the server but never logged or shown.
func TestHTTPErrorPaths(t *testing.T) {
	s := &scripted{steps: []func(http.ResponseWriter, *http.Request, []byte) bool{
		status429("2"), statusCode(500, "internal trouble"), statusCode(400, "bad batch here"),
		closeMidBody, slow(10 * time.Second),
	}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	d := testutil.Start(t)
	const secret = "pw-Secret-71"
	url := "http://user:" + secret + "@" + srv.Listener.Addr().String() + "/in/logs?sources=app&batch=10&parallel=1&timeout=2s&header.X-Test=yes"
	f := startForward(t, d, t.TempDir(), "-drain", url)
	writeLines(t, d.Socketpair("app"), "app", 0, 50)
	const want = 40 // one batch of 10 is refused with 400
	var got []map[string]any
	if !testutil.Eventually(60*time.Second, func() bool {
		_, taken := s.snapshot()
		got = jsonLines(t, taken)
		return len(got) >= want
	}) {
		t.Fatalf("%d of %d lines; log:\n%s", len(got), want, f.Output())
	}
	hits, _ := s.snapshot()
	if len(hits) != 5+4 {
		t.Errorf("%d requests, want 9 (5 failing, 4 taken)", len(hits))
	}
	if gap := hits[1].at.Sub(hits[0].at); gap < 1900*time.Millisecond {
		t.Errorf("retried %v after a 429 with Retry-After: 2", gap)
	}
	for _, h := range hits {
		if u, p, ok := (&http.Request{Header: h.header}).BasicAuth(); !ok || u != "user" || p != secret || h.header.Get("X-Test") != "yes" || h.header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("request headers %v", h.header)
		}
	}
	// The batch refused with 400 is the one after 429 and 500: lines
	// 0-9 (parallel=1, batches in order) never arrive; the others
	// arrive once, in order.
	seen := map[string]bool{}
	for i, m := range got {
		msg, _ := m["msg"].(string)
		if seen[msg] {
			t.Fatalf("%q twice", msg)
		}
		seen[msg] = true
		if wantMsg := fmt.Sprintf("app line %d", i+10); msg != wantMsg {
			t.Fatalf("line %d is %q, want %q", i, msg, wantMsg)
		}
		if m["source"] != "app" || m["host"] != "vm1" || m["severity"] != 6.0 || m["facility"] != 3.0 || m["seq"] == nil || m["instance"] == "" || m["boot"] == "" {
			t.Fatalf("fields %v", m)
		}
		if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
			t.Fatalf("time %v", m["time"])
		}
	}
	// The counts follow the replies: wait until all 50 entries (the
	// rejected ones too) are acknowledged.
	testutil.Eventually(30*time.Second, func() bool { return status(t, f).Drains[0].Acked == 50 })
	st := status(t, f)
	dl := st.Drains[0].Delivery
	if dl == nil || st.Drains[0].Acked != 50 || dl.Rejected != 10 || dl.Retries != 4 || dl.Batches != 5 {
		t.Fatalf("delivery counts %+v %+v", st.Drains[0], dl)
	}
	stOut, _ := cli(t, f, "status")
	log := f.Output()
	for _, re := range []string{`HTTP 429`, `HTTP 500 internal trouble`, `rejected 10 of 10 entries for good \(not sent again\): HTTP 400 bad batch here`,
		`(EOF|connection reset|unexpected)`, `(Timeout|deadline)`} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("no log line matching %q in:\n%s", re, log)
		}
	}
	if strings.Contains(log, secret) || strings.Contains(stOut, secret) {
		t.Fatalf("the password shows:\n%s\n%s", log, stOut)
	}
}

// Elasticsearch _bulk against a server of our own: create actions with
// ids from memlogd's instance and sequence number and the index pattern
// expanded; an item refused with 400 is rejected for good and counted,
// an item answered 429 is sent again alone; 409 (already there) counts
// as taken; the bearer token is sent and never shown.
func TestElasticItems(t *testing.T) {
	s := &scripted{}
	s.steps = append(s.steps, func(w http.ResponseWriter, _ *http.Request, body []byte) bool {
		n := strings.Count(string(body), "\n") / 2
		items := make([]string, n)
		for i := range items {
			switch i {
			case 1:
				items[i] = `{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse"}}}`
			case 2:
				items[i] = `{"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}}`
			case 3:
				items[i] = `{"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}`
			default:
				items[i] = `{"create":{"status":201}}`
			}
		}
		fmt.Fprintf(w, `{"took":1,"errors":true,"items":[%s]}`, strings.Join(items, ","))
		return true
	})
	s.ok = func(w http.ResponseWriter, _ *http.Request, body []byte) {
		fmt.Fprint(w, `{"took":1,"errors":false,"items":[]}`)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	const secret = "tok-Secret-42"
	os.WriteFile(tok, []byte(secret+"\n"), 0o600)
	d := testutil.Start(t)
	w := d.Socketpair("app")
	writeLines(t, w, "app", 0, 5)
	// The lines are in memlogd before logforward starts: one batch.
	testutil.WaitMsg(t, d.Query, "app", "app line 4", 30*time.Second)
	url := "elasticsearch+http://" + srv.Listener.Addr().String() + "/es/?sources=app&parallel=1&index=logs-%25Y.%25m&token_file=" + tok
	f := startForward(t, d, t.TempDir(), "-drain", url)
	if !testutil.Eventually(60*time.Second, func() bool {
		hits, _ := s.snapshot()
		return len(hits) >= 2
	}) {
		t.Fatalf("no retry; log:\n%s", f.Output())
	}
	hits, _ := s.snapshot()
	first := strings.Split(strings.TrimSuffix(string(hits[0].body), "\n"), "\n")
	if len(first) != 10 {
		t.Fatalf("first bulk has %d lines:\n%s", len(first), hits[0].body)
	}
	idRE := regexp.MustCompile(`^\{"create":\{"_index":"logs-\d{4}\.\d\d","_id":"[0-9a-f]+-(\d+)"\}\}$`)
	for i := 0; i < 10; i += 2 {
		if !idRE.MatchString(first[i]) {
			t.Fatalf("action %q", first[i])
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(first[i+1]), &doc); err != nil || doc["message"] != fmt.Sprintf("app line %d", i/2) || doc["@timestamp"] == nil || doc["source"] != "app" {
			t.Fatalf("document %q: %v", first[i+1], err)
		}
	}
	second := strings.Split(strings.TrimSuffix(string(hits[1].body), "\n"), "\n")
	if len(second) != 2 || second[0] != first[4] || !strings.Contains(second[1], `"app line 2"`) {
		t.Fatalf("retry was not item 2 alone:\n%s", hits[1].body)
	}
	for _, h := range hits {
		if h.header.Get("Authorization") != "Bearer "+secret {
			t.Fatalf("authorization %q", h.header.Get("Authorization"))
		}
	}
	if !testutil.Eventually(30*time.Second, func() bool {
		st := status(t, f)
		return st.Drains[0].Acked == 5
	}) {
		t.Fatalf("status %+v", status(t, f).Drains[0])
	}
	dl := status(t, f).Drains[0].Delivery
	if dl.Rejected != 1 || dl.Retries != 1 || dl.Batches != 1 {
		t.Fatalf("delivery %+v", dl)
	}
	log := f.Output()
	if !strings.Contains(log, "rejected 1 of 5 entries for good") || !strings.Contains(log, "mapper_parsing_exception") || !strings.Contains(log, "1 of 5 entries failed") {
		t.Fatalf("log:\n%s", log)
	}
	stOut, _ := cli(t, f, "status")
	if strings.Contains(log, secret) || strings.Contains(stOut, secret) {
		t.Fatal("the token shows")
	}
}

// An HTTPS drain with format=syslog (logplex style): octet-counted
// RFC 5424 frames, Logplex-Msg-Count and a Logplex-Frame-Id, the
// server's certificate verified against the CA given; a drain without
// that CA is refused and delivers nothing.
func TestHTTPSSyslogDrain(t *testing.T) {
	s := &scripted{}
	srv := httptest.NewTLSServer(s)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pemCert(srv.Certificate().Raw), 0o600); err != nil {
		t.Fatal(err)
	}
	d := testutil.Start(t)
	addr := srv.Listener.Addr().String()
	f := startForward(t, d, t.TempDir(),
		"-drain", "https://"+addr+"/drain?format=syslog&sources=app&servername=example.com&ca="+ca+"&id=good",
		"-drain", "https://"+addr+"/drain?format=syslog&sources=app&id=unverified")
	writeLines(t, d.Socketpair("app"), "app", 0, 100)
	var frames []string
	if !testutil.Eventually(60*time.Second, func() bool {
		_, taken := s.snapshot()
		frames = frames[:0]
		for _, b := range taken {
			for len(b) > 0 {
				sp := strings.IndexByte(string(b), ' ')
				n, err := strconv.Atoi(string(b[:max(sp, 0)]))
				if sp < 0 || err != nil || sp+1+n > len(b) {
					t.Fatalf("not an octet-counted frame: %q", b)
				}
				frames = append(frames, string(b[sp+1:sp+1+n]))
				b = b[sp+1+n:]
			}
		}
		return len(frames) >= 100
	}) {
		t.Fatalf("%d frames; log:\n%s", len(frames), f.Output())
	}
	re := regexp.MustCompile(`^<30>1 \S+ vm1 app - - \[lklog@32473 instance="[0-9a-f]+" seq="\d+"\] app line (\d+)$`)
	for i, fr := range frames {
		if m := re.FindStringSubmatch(fr); m == nil || m[1] != strconv.Itoa(i) {
			t.Fatalf("frame %d: %q", i, fr)
		}
	}
	hits, _ := s.snapshot()
	total := 0
	for _, h := range hits {
		n, _ := strconv.Atoi(h.header.Get("Logplex-Msg-Count"))
		total += n
		if h.header.Get("Content-Type") != "application/logplex-1" || !regexp.MustCompile(`^[0-9a-f]+-\d+-\d+$`).MatchString(h.header.Get("Logplex-Frame-Id")) {
			t.Fatalf("headers %v", h.header)
		}
	}
	if total != 100 || len(frames) != 100 {
		t.Fatalf("Logplex-Msg-Count sums to %d, %d frames", total, len(frames))
	}
	// The unverified drain fails its first delivery (at most a linger
	// after the lines) and takes nothing.
	var bad forward.Status
	if !testutil.Eventually(60*time.Second, func() bool {
		for _, st := range status(t, f).Drains {
			if st.ID == "unverified" {
				bad = st
			}
		}
		return bad.State == "retrying"
	}) || !strings.Contains(bad.LastError, "certificate") || bad.Acked != 0 {
		t.Fatalf("unverified drain: %+v", bad)
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// gzip=true compresses each JSON lines body (Content-Encoding: gzip).
func TestHTTPGzip(t *testing.T) {
	s := &scripted{}
	srv := httptest.NewServer(s)
	defer srv.Close()
	d := testutil.Start(t)
	f := startForward(t, d, t.TempDir(), "-drain", "http://"+srv.Listener.Addr().String()+"/?gzip=true&sources=app")
	writeLines(t, d.Socketpair("app"), "app", 0, 500)
	var got []map[string]any
	if !testutil.Eventually(60*time.Second, func() bool {
		hits, _ := s.snapshot()
		var bodies [][]byte
		for _, h := range hits {
			if h.header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("headers %v", h.header)
			}
			zr, err := gzip.NewReader(bytes.NewReader(h.body))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, b)
		}
		got = jsonLines(t, bodies)
		return len(got) >= 500
	}) || len(got) != 500 || got[499]["msg"] != "app line 499" {
		t.Fatalf("%d lines; log:\n%s", len(got), f.Output())
	}
}
