package kmsg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"
)

// openReal opens /dev/kmsg, skipping the test only when it is absent.
func openReal(t testing.TB) Device {
	t.Helper()
	if _, err := os.Stat(DefaultPath); errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s does not exist on this machine: real-device test skipped", DefaultPath)
	}
	d, err := Open(DefaultPath)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return d
}

// Marker returns a unique marker for test records.
func marker(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "lklog-kmsg-test-" + hex.EncodeToString(b[:])
}

// writeKmsg writes one record to /dev/kmsg as a process does. The line
// must end with a newline: the kernel keeps a record written without one
// open for a continuation, and readers see it only once the next record
// is written.
func writeKmsg(t testing.TB, line string) {
	t.Helper()
	f, err := os.OpenFile(DefaultPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("opening %s for writing: %v", DefaultPath, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(line)); err != nil {
		t.Fatalf("writing to %s: %v", DefaultPath, err)
	}
}

// A record written to the real device is read back with its priority, a
// timestamp within a second of now, and a sequence number after the
// records that were there.
func TestRealDeviceWriteRead(t *testing.T) {
	d := openReal(t)
	r, err := NewReader(d, ReaderConfig{Start: StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := marker(t)
	wrote := time.Now()
	writeKmsg(t, "<3>"+m+" \\ tab\there\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		ev, err := r.Next(ctx, true)
		if err != nil {
			t.Fatalf("waiting for the marker: %v", err)
		}
		if ev.Loss != nil || ev.Malformed != nil {
			continue
		}
		text := Unescape(nil, ev.Record.Text)
		if string(text) != m+" \\ tab\there" {
			continue
		}
		if ev.Record.Level() != 3 || ev.Record.Facility() != 1 {
			t.Fatalf("marker has prio %d, want 11 (user.err)", ev.Record.Prio)
		}
		if d := time.Unix(0, ev.Time).Sub(wrote); d < -time.Second || d > time.Second {
			t.Fatalf("marker dated %v from its write (%v vs %v)", d, time.Unix(0, ev.Time), wrote)
		}
		t.Logf("raw record: %q; dated %v after the write", ev.Record.Raw, time.Unix(0, ev.Time).Sub(wrote))
		return
	}
}

// Resuming by sequence number on the real device skips what was read.
func TestRealDeviceResume(t *testing.T) {
	d := openReal(t)
	r, err := NewReader(d, ReaderConfig{Start: StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	m := marker(t)
	writeKmsg(t, "<6>"+m+" one\n")
	writeKmsg(t, "<6>"+m+" two\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var first uint64
	for first == 0 {
		ev, err := r.Next(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Loss == nil && string(ev.Record.Text) == m+" one" {
			first = ev.Record.Seq
		}
	}
	r.Close()
	r2, err := NewReader(openReal(t), ReaderConfig{Start: StartSeq, Next: first + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for {
		ev, err := r2.Next(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Loss != nil {
			t.Fatalf("unexpected loss: %+v", ev.Loss)
		}
		if ev.Record.Seq <= first {
			t.Fatalf("resume after %d returned %d", first, ev.Record.Seq)
		}
		if string(ev.Record.Text) == m+" two" {
			return
		}
		t.Fatalf("resume after %d: first record is %d %q, want %q", first, ev.Record.Seq, ev.Record.Text, m+" two")
	}
}

// A wait on the real device ends at once when its context is cancelled
// (no goroutine stuck in read()).
func TestRealDeviceCancel(t *testing.T) {
	d := openReal(t)
	defer d.Close()
	r, err := NewReader(d, ReaderConfig{Start: StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	// Drain what may arrive meanwhile.
	for {
		if _, err := r.Next(context.Background(), false); err != nil {
			break
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	for {
		_, err := r.Next(ctx, true)
		if errors.Is(err, context.Canceled) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("records kept coming; cancel not observed")
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("cancel took %v", el)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(t.TempDir() + "/kmsg")
	if !errors.Is(err, ErrNoDevice) {
		t.Fatalf("err %v, want ErrNoDevice", err)
	}
	t.Log(err)
}

// A regular file cannot be waited on: Open refuses it rather than give a
// device whose Wait cannot be cancelled.
func TestOpenNotPollable(t *testing.T) {
	p := t.TempDir() + "/file"
	if err := os.WriteFile(p, []byte("6,1,2,-;x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d, err := Open(p); err == nil {
		d.Close()
		t.Fatal("Open of a regular file succeeded")
	}
}
