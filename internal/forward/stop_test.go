package forward

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/drain/jsonlines"
	"github.com/lklog/lklog/internal/drain/relp"
	"github.com/lklog/lklog/internal/forward/config"
	"github.com/lklog/lklog/internal/forward/spool"
	"github.com/lklog/lklog/internal/syslogfmt"
	"github.com/lklog/lklog/internal/testutil"
)

// relpServer is a RELP receiver on loopback that takes syslog frames at
// once but answers them only after release is closed.
type relpServer struct {
	ln      net.Listener
	release chan struct{}
	mu      sync.Mutex
	got     int
}

func startRELP(t *testing.T) *relpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &relpServer{ln: ln, release: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *relpServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	txnrs := make(chan uint64, 1<<16)
	go func() {
		<-s.release
		for n := range txnrs {
			if _, err := c.Write(relp.AppendFrame(nil, n, "rsp", []byte("200 OK"))); err != nil {
				return
			}
		}
	}()
	defer close(txnrs)
	for {
		f, err := relp.ReadFrame(br)
		if err != nil {
			return
		}
		switch f.Command {
		case "open":
			c.Write(relp.AppendFrame(nil, f.Txnr, "rsp", []byte("200 OK\nrelp_version=0\ncommands=syslog")))
		case "syslog":
			s.mu.Lock()
			s.got++
			s.mu.Unlock()
			txnrs <- f.Txnr
		case "close":
			return
		}
	}
}

func (s *relpServer) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got
}

// A drain that stops (SIGTERM) while the destination has taken messages
// but its acknowledgements are still on their way waits for them: the
// spool marks those messages delivered, so a restart does not send them
// again. The receiver here answers only after the Forwarder's context
// ended, so without the wait every message would stay unacknowledged.
func TestStopTakesAcksInFlight(t *testing.T) {
	d := testutil.Start(t)
	srv := startRELP(t)
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fw := New(ctx, Options{Socket: d.Query, StateDir: state, StopGrace: 60 * time.Second,
		New: func(p config.Parsed) (drain.Destination, error) {
			return relp.New(relp.Options{Addr: p.Addr, Format: syslogfmt.Formatter{Hostname: "vm1"}})
		}})
	st, err := fw.Add(config.Drain{URL: "relp://" + srv.ln.Addr().String() + "?sources=app"})
	if err != nil {
		t.Fatal(err)
	}
	w := d.Socketpair("app")
	const n = 50
	for i := range n {
		fmt.Fprintf(w, "app line %d\n", i)
	}
	if !testutil.Eventually(60*time.Second, func() bool { return srv.received() >= n }) {
		t.Fatalf("the receiver got %d of %d messages", srv.received(), n)
	}
	cancel()
	close(srv.release)
	fw.Wait()
	got := fw.List()
	if len(got) != 1 || got[0].Acked != n || got[0].SpooledEntries != 0 {
		t.Fatalf("after stopping: %+v; want %d acknowledged, none spooled", got, n)
	}
	// What a restart would send: nothing.
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(state, "drains", st.ID), MaxBytes: DefaultSpoolBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if e := sp.Stats().Entries; e != 0 {
		t.Fatalf("%d records after the acknowledged position; want none", e)
	}
}

// A receiver that never answers does not hold a stopping drain beyond
// StopGrace, and what it did not acknowledge stays spooled.
func TestStopGraceBounded(t *testing.T) {
	d := testutil.Start(t)
	srv := startRELP(t) // never released
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fw := New(ctx, Options{Socket: d.Query, StateDir: state, StopGrace: 100 * time.Millisecond,
		New: func(p config.Parsed) (drain.Destination, error) {
			return relp.New(relp.Options{Addr: p.Addr, Format: syslogfmt.Formatter{Hostname: "vm1"}})
		}})
	if _, err := fw.Add(config.Drain{URL: "relp://" + srv.ln.Addr().String() + "?sources=app"}); err != nil {
		t.Fatal(err)
	}
	w := d.Socketpair("app")
	const n = 20
	for i := range n {
		fmt.Fprintf(w, "app line %d\n", i)
	}
	if !testutil.Eventually(60*time.Second, func() bool { return srv.received() >= n }) {
		t.Fatalf("the receiver got %d of %d messages", srv.received(), n)
	}
	cancel()
	done := make(chan struct{})
	go func() { fw.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the drain did not stop")
	}
	if got := fw.List(); len(got) != 1 || got[0].Acked != 0 || got[0].SpooledEntries != n {
		t.Fatalf("after stopping: %+v; want none acknowledged, %d spooled", got, n)
	}
}

func TestMain(m *testing.M) { os.Exit(testutil.BuildAndRun(m)) }

// The same for a batching destination (HTTP): the request in flight when
// the drain stops is not cancelled with it, its answer is taken within
// the grace, and the batch counts as delivered.
func TestStopTakesBatchAcksInFlight(t *testing.T) {
	d := testutil.Start(t)
	var mu sync.Mutex
	got := 0
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got += bytes.Count(b, []byte("\n"))
		mu.Unlock()
		<-release
	}))
	defer srv.Close()
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fw := New(ctx, Options{Socket: d.Query, StateDir: t.TempDir(), StopGrace: 60 * time.Second,
		New: func(p config.Parsed) (drain.Destination, error) {
			return httpdrain.New(httpdrain.Options{Base: base, Protocol: &jsonlines.JSON{}}, batch.Options{Linger: 10 * time.Millisecond})
		}})
	if _, err := fw.Add(config.Drain{URL: srv.URL + "/?sources=app"}); err != nil {
		t.Fatal(err)
	}
	w := d.Socketpair("app")
	const n = 50
	for i := range n {
		fmt.Fprintf(w, "app line %d\n", i)
	}
	if !testutil.Eventually(60*time.Second, func() bool { return received() >= n }) {
		t.Fatalf("the receiver got %d of %d entries", received(), n)
	}
	cancel()
	close(release)
	fw.Wait()
	if st := fw.List(); len(st) != 1 || st[0].Acked != n || st[0].SpooledEntries != 0 {
		t.Fatalf("after stopping: %+v; want %d acknowledged, none spooled", st, n)
	}
}

// Removing a drain deletes its spool, so it does not wait for the
// acknowledgements in flight however long the grace.
func TestRemoveDoesNotWaitForAcks(t *testing.T) {
	d := testutil.Start(t)
	srv := startRELP(t) // never released
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fw := New(ctx, Options{Socket: d.Query, StateDir: t.TempDir(), StopGrace: time.Hour,
		New: func(p config.Parsed) (drain.Destination, error) {
			return relp.New(relp.Options{Addr: p.Addr, Format: syslogfmt.Formatter{Hostname: "vm1"}})
		}})
	st, err := fw.Add(config.Drain{URL: "relp://" + srv.ln.Addr().String() + "?sources=app"})
	if err != nil {
		t.Fatal(err)
	}
	w := d.Socketpair("app")
	for i := range 5 {
		fmt.Fprintf(w, "app line %d\n", i)
	}
	if !testutil.Eventually(60*time.Second, func() bool { return srv.received() >= 5 }) {
		t.Fatalf("the receiver got %d of 5 messages", srv.received())
	}
	done := make(chan error, 1)
	go func() { done <- fw.Remove(st.ID) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Remove waited for acknowledgements that can no longer matter")
	}
}
