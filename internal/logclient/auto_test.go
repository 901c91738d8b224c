package logclient

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logproto"
)

// silentServer accepts connections and neither reads nor answers.
func silentServer(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "q.sock")
	if len(path) > 100 {
		t.Skip("temporary directory too long for a socket path")
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return path
}

// TestOpenAutoSilent: a server that answers neither request is reported
// after the hello timeout, not waited for for ever.
func TestOpenAutoSilent(t *testing.T) {
	path := silentServer(t)
	start := time.Now()
	_, err := OpenAuto(context.Background(), path, logproto.Request{Mode: logproto.ModeDump})
	if !errors.Is(err, ErrNotExtended) {
		t.Fatalf("error %v, want ErrNotExtended", err)
	}
	if el := time.Since(start); el < HelloTimeout {
		t.Errorf("gave up after %v, before the hello timeout", el)
	}
}

// TestOpenAutoCancel: cancelling the context ends the wait.
func TestOpenAutoCancel(t *testing.T) {
	path := silentServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := OpenAuto(ctx, path, logproto.Request{Mode: logproto.ModeFollow})
		res <- err
	}()
	cancel()
	select {
	case err := <-res:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("OpenAuto did not return within 30 s of its context's cancellation")
	}
}
