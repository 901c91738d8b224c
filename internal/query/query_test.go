package query

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/ring"
)

// serve starts a Server on a unix socket in a temporary directory and
// returns the socket's path.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ctx, l)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return path
}

type record struct {
	Type  string `json:"type"`
	Seq   uint64 `json:"seq"`
	Next  uint64 `json:"next"`
	First uint64 `json:"first"`
	Lost  uint64 `json:"lost"`
	Error string `json:"error"`
	Code  string `json:"code"`
}

// request sends req and returns the reply's records until the connection
// ends (at most 30 s).
func request(t *testing.T, path, req string) []record {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	var recs []record
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("reply line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestDumpOfEvictedCursorEndsAtRequest: a dump after a cursor the ring
// no longer holds starts at the oldest entry and still ends where the ring
// ended when the request arrived, however fast writers go meanwhile.
func TestDumpOfEvictedCursorEndsAtRequest(t *testing.T) {
	rg, err := ring.New(ring.Config{MaxEntries: 100, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Ring: rg, Instance: "inst", MaxReaders: 4}
	path := serve(t, s)
	for range 300 {
		rg.Append(ring.Entry{Source: []byte("w"), Msg: []byte("x")})
	}
	stopWriting := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopWriting:
				return
			default:
			}
			rg.Append(ring.Entry{Source: []byte("w"), Msg: []byte("x")})
		}
	}()
	defer func() {
		close(stopWriting)
		wg.Wait()
	}()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		recs := request(t, path, `{"mode":"dump","after":{"instance":"inst","seq":1}}`+"\n")
		if len(recs) < 2 || recs[0].Type != "hello" || recs[len(recs)-1].Type != "end" {
			t.Fatalf("dump %d: reply %+v", i, recs)
		}
		next := recs[0].Next
		if end := recs[len(recs)-1].Seq; end != next {
			t.Fatalf("dump %d: end record %d, hello next %d", i, end, next)
		}
		for _, r := range recs[1 : len(recs)-1] {
			if r.Type == "" && r.Seq >= next {
				t.Fatalf("dump %d: entry %d was added after the request (hello next %d)", i, r.Seq, next)
			}
			if r.Type == "gap" && r.Seq > next {
				t.Fatalf("dump %d: gap up to %d, beyond the request's end %d", i, r.Seq, next)
			}
		}
	}
}

// TestStalledClientFreesSlot: a client that sends a request and then reads
// nothing is disconnected once it stalled for StallTimeout and another
// client needs its slot, so it cannot hold the only reader slot forever;
// this is counted and reported.
func TestStalledClientFreesSlot(t *testing.T) {
	rg, err := ring.New(ring.Config{MaxEntries: 10000, MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs []string
	s := &Server{Ring: rg, Instance: "inst", MaxReaders: 1, StallTimeout: 300 * time.Millisecond,
		Logf: func(_ uint8, format string, args ...any) {
			mu.Lock()
			logs = append(logs, fmt.Sprintf(format, args...))
			mu.Unlock()
		}}
	path := serve(t, s)
	msg := []byte(strings.Repeat("x", 1000))
	for range 8000 { // 8 MB: far more than the socket buffers hold
		rg.Append(ring.Entry{Source: []byte("w"), Msg: msg})
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"mode":"dump+follow"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	// It reads the start of its reply (so it holds the slot), then
	// nothing more. Another client gets the slot once it is given up on.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := make([]byte, 16)
	if _, err := io.ReadFull(c, start); err != nil || string(start) != `{"type":"hello",` {
		t.Fatalf("start of the reply: %q, %v", start, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs := request(t, path, `{"mode":"dump","tail":1}`+"\n")
		if len(recs) > 0 && recs[0].Type == "hello" {
			break
		}
		if len(recs) != 1 || recs[0].Code != "busy" {
			t.Fatalf("reply while the slot is taken: %+v", recs)
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled client still holds the only reader slot after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.Stalled(); n != 1 {
		t.Errorf("Stalled() = %d, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, l := range logs {
		if strings.Contains(l, "gave up on a reader") && strings.Contains(l, "(1 readers given up on so far)") {
			found = true
		}
	}
	if !found {
		t.Errorf("not reported: %q", logs)
	}
}

// stallingClient fills the ring with 8 MB, far more than the socket
// buffers hold, and opens a dump+follow that reads only the start of its
// reply.
func stallingClient(t *testing.T, s *Server, rg *ring.Ring) net.Conn {
	t.Helper()
	path := serve(t, s)
	msg := []byte(strings.Repeat("x", 1000))
	for range 8000 {
		rg.Append(ring.Entry{Source: []byte("w"), Msg: msg})
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(`{"mode":"dump+follow"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := make([]byte, 16)
	if _, err := io.ReadFull(c, start); err != nil || string(start) != `{"type":"hello",` {
		t.Fatalf("start of the reply: %q, %v", start, err)
	}
	return c
}

// A stalled client whose slot nobody needs is kept past StallTimeout (a
// pager left open): when it reads again it gets its whole reply.
func TestStalledClientKeptWhenSlotNotNeeded(t *testing.T) {
	rg, err := ring.New(ring.Config{MaxEntries: 10000, MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Ring: rg, Instance: "inst", MaxReaders: 2, StallTimeout: 100 * time.Millisecond}
	c := stallingClient(t, s, rg)
	deadline := time.Now().Add(30 * time.Second)
	for s.Idle() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the client is not taken as stalled after 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Ten times StallTimeout more without reading.
	time.Sleep(time.Second)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	entries := 0
	for entries < 8000 && sc.Scan() {
		if strings.HasPrefix(sc.Text(), `{"seq":`) {
			entries++
		}
	}
	if entries < 8000 {
		t.Fatalf("%d entries before the reply ended (%v): the stalled client was cut off", entries, sc.Err())
	}
	if n := s.Stalled(); n != 0 {
		t.Errorf("Stalled() = %d, want 0", n)
	}
	if n := s.Idle(); n != 0 {
		t.Errorf("Idle() = %d after it read again, want 0", n)
	}
}

// A stalled client is disconnected after StallLimit even when nobody
// needs its slot.
func TestStalledClientStallLimit(t *testing.T) {
	rg, err := ring.New(ring.Config{MaxEntries: 10000, MaxBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Ring: rg, Instance: "inst", MaxReaders: 2, StallTimeout: 100 * time.Millisecond, StallLimit: 300 * time.Millisecond}
	stallingClient(t, s, rg)
	deadline := time.Now().Add(30 * time.Second)
	for s.Stalled() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled client is still connected 30 s after StallLimit")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.Idle(); n != 0 {
		t.Errorf("Idle() = %d, want 0", n)
	}
}

// sendBufferWanted is how much reply a query connection should hold at
// least: SendBuffer, or net.core.wmem_max if that is less and this
// process may not go beyond it (no CAP_NET_ADMIN).
func sendBufferWanted(t *testing.T) int {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, SendBuffer) == nil {
		return SendBuffer
	}
	b, err := os.ReadFile("/proc/sys/net/core/wmem_max")
	if err != nil {
		return SendBuffer
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("wmem_max %q: %v", b, err)
	}
	t.Logf("no CAP_NET_ADMIN: send buffers up to net.core.wmem_max, %d", max)
	return min(SendBuffer, max)
}

// TestFollowerSocketHoldsSendBuffer: the connection of a follower that
// reads nothing takes SendBuffer bytes of reply (the kernel's default
// is about 208 KiB), so that a fast follower and the goroutine serving
// it wake each other less often.
func TestFollowerSocketHoldsSendBuffer(t *testing.T) {
	want := sendBufferWanted(t)
	rg, err := ring.New(ring.Config{MaxEntries: 30000, MaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(strings.Repeat("x", 100))
	for i := 0; i < 20000; i++ { // about 3 MB of legacy lines
		rg.Append(ring.Entry{Time: 1, Source: []byte("app"), Msg: msg})
	}
	path := serve(t, &Server{Ring: rg, Instance: "i", MaxReaders: 4})
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{2}); err != nil { // dump, then follow
		t.Fatal(err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	queued := func() int {
		n := -1
		rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		return n
	}
	deadline := time.Now().Add(30 * time.Second)
	for queued() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the reply waiting for the client stayed at %d bytes for 30 s, want %d at least", queued(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
