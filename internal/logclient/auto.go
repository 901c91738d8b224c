package logclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/lklog/lklog/internal/logproto"
)

// LegacyGrace is how long OpenAuto still waits for the hello record once
// the legacy request sent after the extended one has been answered.
const LegacyGrace = 500 * time.Millisecond

// OpenAuto opens req in the extended protocol if the server speaks it,
// else in LinuxKit's, quickly and without losing an entry. A request that
// needs the extended protocol (a cursor, a tail or a filter) is opened
// with Open: it has no legacy form.
//
// LinuxKit's memlogd reads one byte of a request and never answers one
// it does not know ('{'), and it takes connections one at a time, in
// order. So OpenAuto sends the extended request and then, on a second
// connection, the legacy one: mode 0 for a dump, mode 2 for the others.
// If the extended one is answered, that is the stream. If the legacy one
// is answered first (LinuxKit's memlogd always holds at least its own
// "memlogd started" entry), the server has already read the extended
// request and will not answer it: after LegacyGrace without a hello the
// legacy connection is the stream. For a follow request it skips the
// entries of the dump received before OpenAuto was called, so whatever
// arrived while it was deciding is still printed. A server that closes
// the extended connection is legacy at once.
func OpenAuto(ctx context.Context, path string, req logproto.Request) (*Stream, error) {
	if req.Legacy || req.After != nil || req.Tail > 0 || req.Filtered() {
		return Open(ctx, path, req)
	}
	start := time.Now()
	wire, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	ext, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to memlogd at %s: %w", path, err)
	}
	// A reset here is a server that closed at once; reading tells.
	ext.Write(wire)
	mode := logproto.LegacyDumpFollow
	if !req.Follow() {
		mode = logproto.LegacyDump
	}
	leg, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		ext.Close()
		return nil, fmt.Errorf("connecting to memlogd at %s: %w", path, err)
	}
	leg.Write([]byte{mode})

	extBR := bufio.NewReaderSize(ext, 32<<10)
	legBR := bufio.NewReaderSize(leg, 32<<10)
	// The goroutines only peek, so what arrives stays for the stream;
	// closing a connection ends its goroutine.
	extCh := make(chan error, 1)
	legCh := make(chan error, 1)
	go func() { _, err := extBR.Peek(1); extCh <- err }()
	go func() { _, err := legBR.Peek(1); legCh <- err }()
	extPending, legPending := true, true
	drop := func(c net.Conn, ch chan error, pending *bool) {
		c.Close()
		if *pending {
			<-ch
			*pending = false
		}
	}

	timeout := time.NewTimer(HelloTimeout)
	defer timeout.Stop()
	grace := time.NewTimer(time.Hour)
	grace.Stop()
	defer grace.Stop()
	useLegacy := false
	for !useLegacy {
		select {
		case err := <-extCh:
			extPending = false
			if err == nil {
				drop(leg, legCh, &legPending)
				s := newStream(ctx, ext, extBR, req)
				if err := s.readHello(path); err != nil {
					return nil, err
				}
				return s, nil
			}
			// Closed or reset without a word: not our protocol (or a
			// memlogd that just died, which the legacy stream then says).
			useLegacy = true
		case <-legCh:
			legPending = false
			grace.Reset(LegacyGrace)
		case <-grace.C:
			useLegacy = true
		case <-timeout.C:
			drop(ext, extCh, &extPending)
			drop(leg, legCh, &legPending)
			return nil, fmt.Errorf("%w: no answer from memlogd at %s within %v", ErrNotExtended, path, HelloTimeout)
		case <-ctx.Done():
			drop(ext, extCh, &extPending)
			drop(leg, legCh, &legPending)
			return nil, ctx.Err()
		}
	}
	drop(ext, extCh, &extPending)
	if legPending {
		// The extended connection was closed first; the stream reads the
		// legacy one once its goroutine is done with it.
		select {
		case <-legCh:
		case <-timeout.C:
			drop(leg, legCh, &legPending)
			return nil, fmt.Errorf("%w: no answer from memlogd at %s within %v", ErrNotExtended, path, HelloTimeout)
		case <-ctx.Done():
			drop(leg, legCh, &legPending)
			return nil, ctx.Err()
		}
	}
	lreq := req
	lreq.Legacy = true
	lreq.Mode = logproto.ModeDumpFollow
	if !req.Follow() {
		lreq.Mode = logproto.ModeDump
	}
	s := newStream(ctx, leg, legBR, lreq)
	if req.Mode == logproto.ModeFollow {
		s.skipBefore = start
	}
	return s, nil
}

// ErrProbeClosed is returned by OpenProbe when the server closed the
// extended request's connection unanswered and answered the legacy one:
// LinuxKit's memlogd can do that, and so can one memlogd that stops
// between the two connections while another starts.
var ErrProbeClosed = errors.New("memlogd closed the extended request unanswered and answered LinuxKit's request")

// OpenProbe opens req, which may need the extended protocol (a cursor,
// filters), and in the same moment, on a second connection, the legacy
// request lreq (which sees everything the ring holds then), so that a
// LinuxKit memlogd is recognised without waiting for HelloTimeout and
// without letting its ring wrap meanwhile. Unlike OpenAuto it never takes
// a closed connection for the legacy protocol by itself, since that is
// also what a restarting memlogd does:
//   - the extended request is answered: that stream (the other is closed);
//   - the legacy one is answered and the extended one stays unanswered
//     for LegacyGrace: the legacy stream, whose Legacy() is true;
//   - the legacy one is answered and the extended one closed: the legacy
//     stream is closed and the error wraps ErrNotExtended and
//     ErrProbeClosed; a caller that sees it twice in a row may use the
//     legacy protocol;
//   - both are closed unanswered: an error (memlogd going away);
//   - neither is answered within HelloTimeout: an error wrapping
//     ErrNotExtended.
func OpenProbe(ctx context.Context, path string, req, lreq logproto.Request) (*Stream, error) {
	wire, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	lreq.Legacy = true
	lwire, err := lreq.Marshal()
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	ext, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to memlogd at %s: %w", path, err)
	}
	ext.Write(wire) // a reset here shows when reading
	leg, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		ext.Close()
		return nil, fmt.Errorf("connecting to memlogd at %s: %w", path, err)
	}
	leg.Write(lwire)
	extBR := bufio.NewReaderSize(ext, 32<<10)
	legBR := bufio.NewReaderSize(leg, 32<<10)
	extCh := make(chan error, 1)
	legCh := make(chan error, 1)
	go func() { _, err := extBR.Peek(1); extCh <- err }()
	go func() { _, err := legBR.Peek(1); legCh <- err }()
	extPending, legPending := true, true
	closeAll := func() {
		ext.Close()
		leg.Close()
		if extPending {
			<-extCh
		}
		if legPending {
			<-legCh
		}
	}
	timeout := time.NewTimer(HelloTimeout)
	defer timeout.Stop()
	grace := time.NewTimer(time.Hour)
	grace.Stop()
	defer grace.Stop()
	extClosed, legAnswered, legFailed := false, false, false
	for {
		select {
		case err := <-extCh:
			extPending = false
			if err == nil {
				leg.Close()
				if legPending {
					<-legCh
				}
				s := newStream(ctx, ext, extBR, req)
				if err := s.readHello(path); err != nil {
					return nil, err
				}
				return s, nil
			}
			extClosed = true
		case err := <-legCh:
			legPending = false
			if err != nil {
				// Our memlogd with every reader slot taken but the
				// one the extended request got, or a memlogd going
				// away: the extended request tells.
				legFailed = true
				break
			}
			legAnswered = true
			grace.Reset(LegacyGrace)
		case <-grace.C:
			ext.Close()
			if extPending {
				<-extCh
				extPending = false
			}
			return newStream(ctx, leg, legBR, lreq), nil
		case <-timeout.C:
			closeAll()
			return nil, fmt.Errorf("%w: no answer from memlogd at %s within %v", ErrNotExtended, path, HelloTimeout)
		case <-ctx.Done():
			closeAll()
			return nil, ctx.Err()
		}
		if extClosed && legFailed {
			closeAll()
			return nil, fmt.Errorf("memlogd at %s closed both requests unanswered (stopping or restarting?)", path)
		}
		if extClosed && legAnswered {
			closeAll()
			return nil, fmt.Errorf("%w: %w", ErrNotExtended, ErrProbeClosed)
		}
	}
}
