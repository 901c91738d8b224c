package kmsg

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
	"github.com/lklog/lklog/internal/testutil"
)

// binaries returns the directory holding memlogd, logread and kmsg, built
// once per test binary.
func binaries(t testing.TB) string {
	t.Helper()
	return testutil.Build(t, "memlogd", "logread", "kmsg")
}

// memlogd starts a memlogd on sockets in dir and waits for them.
func startMemlogd(t testing.TB, bin, dir string) *testutil.Proc {
	t.Helper()
	p := testutil.StartProc(t, filepath.Join(bin, "memlogd"), "-socket-log", filepath.Join(dir, "log.sock"),
		"-socket-query", filepath.Join(dir, "q.sock"), "-socket-syslog", filepath.Join(dir, "dev-log"), "-console=false")
	deadline := time.Now().Add(10 * time.Second)
	for !isSocket(filepath.Join(dir, "q.sock")) || !isSocket(filepath.Join(dir, "dev-log")) {
		if time.Now().After(deadline) {
			t.Fatalf("memlogd's sockets did not appear: %s", p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

func startKmsg(t testing.TB, bin, dir string, args ...string) *testutil.Proc {
	t.Helper()
	return testutil.StartProc(t, filepath.Join(bin, "kmsg"), append([]string{
		"-socket-syslog", filepath.Join(dir, "dev-log"), "-socket-query", filepath.Join(dir, "q.sock"),
		"-state", filepath.Join(dir, "state")}, args...)...)
}

// kmsgEntries dumps memlogd's kmsg entries with logread -json.
func kmsgEntries(t testing.TB, bin, dir string) []logproto.Record {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "logread"), "-socket", filepath.Join(dir, "q.sock"), "-json", "-source", Source).Output()
	if err != nil {
		t.Fatalf("logread -json: %v", err)
	}
	var recs []logproto.Record
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		r, err := logproto.DecodeRecord(line)
		if err != nil {
			t.Fatalf("logread line %q: %v", line, err)
		}
		if r.Type == "" {
			recs = append(recs, r)
		}
	}
	return recs
}

// waitEntry waits (10 s at most) for a kmsg entry whose message is msg.
func waitEntry(t testing.TB, bin, dir, msg string) logproto.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range kmsgEntries(t, bin, dir) {
			if r.Msg == msg {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kmsg entry %q arrived in memlogd within 10 s", msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkOnce checks that every kernel sequence number among memlogd's kmsg
// entries appears once, without a hole after the first.
func checkOnce(t *testing.T, recs []logproto.Record) {
	t.Helper()
	seen := map[uint64]int{}
	var seqs []uint64
	for _, r := range recs {
		seq, ok := SeqFromSD([]byte(r.SD))
		if !ok {
			if strings.Contains(r.SD, "lost=") {
				t.Errorf("loss entry: %s %s", r.Msg, r.SD)
			}
			continue
		}
		if seen[seq]++; seen[seq] == 2 {
			t.Errorf("kernel record %d delivered twice: %q", seq, r.Msg)
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1] && seqs[i] != seqs[i-1]+1 {
			t.Errorf("hole: kernel record %d is followed by %d", seqs[i-1], seqs[i])
		}
	}
	if len(seqs) == 0 {
		t.Error("no kernel record with a seq")
	}
}

// The kmsg binary feeds a real memlogd from the real /dev/kmsg: a marker
// written with priority <3> arrives with source kmsg, severity 3, its
// seq, and a timestamp within a second of its write; restarts of the
// binary (SIGTERM, and SIGKILL before it saved its state) neither
// duplicate nor skip a record.
func TestServiceRealDevice(t *testing.T) {
	openReal(t).Close()
	bin := binaries(t)
	dir := t.TempDir()
	startMemlogd(t, bin, dir)
	k := startKmsg(t, bin, dir)

	m := marker(t)
	wrote := time.Now()
	writeKmsg(t, "<3>"+m+" first\n")
	r := waitEntry(t, bin, dir, m+" first")
	if r.Source != Source || r.Severity != 3 || r.Facility != 1 {
		t.Fatalf("marker entry: source %q facility %d severity %d, want kmsg 1 3", r.Source, r.Facility, r.Severity)
	}
	if d := r.TS.Sub(wrote); d < -time.Second || d > time.Second {
		t.Fatalf("marker's timestamp %v is %v from its write", r.TS, d)
	}
	if _, ok := SeqFromSD([]byte(r.SD)); !ok {
		t.Fatalf("marker's sd %q has no seq", r.SD)
	}
	t.Logf("arrived: dated %v after the write, sd %s, received by memlogd %v after the write", r.TS.Sub(wrote), r.SD, r.Time.Sub(wrote))

	// Restart after SIGTERM, with records written while it was down.
	k.Stop(t, syscall.SIGTERM)
	if !strings.Contains(k.Output(), "replaying") {
		t.Errorf("first start did not say it replays the ring: %s", k.Output())
	}
	writeKmsg(t, "<4>"+m+" while down\n")
	k = startKmsg(t, bin, dir)
	waitEntry(t, bin, dir, m+" while down")
	writeKmsg(t, "<6>"+m+" after restart\n")
	waitEntry(t, bin, dir, m+" after restart")
	if !strings.Contains(k.Output(), "continuing after kernel record") {
		t.Errorf("restart did not continue after its state: %s", k.Output())
	}

	// SIGKILL right after delivery, before the state is saved: memlogd's
	// last kmsg entry still prevents duplicates.
	state := filepath.Join(dir, "state")
	before, _, err := LoadState(state)
	if err != nil {
		t.Fatal(err)
	}
	writeKmsg(t, "<6>"+m+" before kill\n")
	waitEntry(t, bin, dir, m+" before kill")
	k.Stop(t, syscall.SIGKILL)
	// Put the state back to before the last record, as if the kill had
	// come before the save.
	if err := SaveState(state, before); err != nil {
		t.Fatal(err)
	}
	k = startKmsg(t, bin, dir)
	writeKmsg(t, "<6>"+m+" after kill\n")
	waitEntry(t, bin, dir, m+" after kill")
	k.Stop(t, syscall.SIGTERM)
	checkOnce(t, kmsgEntries(t, bin, dir))
	var mine []string
	for _, r := range kmsgEntries(t, bin, dir) {
		if strings.HasPrefix(r.Msg, m) {
			mine = append(mine, strings.TrimPrefix(r.Msg, m+" "))
		}
	}
	if got := strings.Join(mine, ","); got != "first,while down,after restart,before kill,after kill" {
		t.Fatalf("markers in memlogd: %s", got)
	}
}

// -replay=false starts at the end: records older than the start are not
// forwarded.
func TestServiceNoReplay(t *testing.T) {
	openReal(t).Close()
	bin := binaries(t)
	dir := t.TempDir()
	startMemlogd(t, bin, dir)
	m := marker(t)
	writeKmsg(t, "<6>"+m+" old\n")
	k := startKmsg(t, bin, dir, "-replay=false")
	// The binary is reading once it has logged its start decision; give
	// it the time to reach the end of the ring.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(k.Output(), "starting with the next kernel record") {
		if time.Now().After(deadline) {
			t.Fatalf("kmsg did not start: %s", k.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	writeKmsg(t, "<6>"+m+" new\n")
	waitEntry(t, bin, dir, m+" new")
	for _, r := range kmsgEntries(t, bin, dir) {
		if r.Msg == m+" old" {
			t.Fatal("a record older than the start was forwarded with -replay=false")
		}
	}
}

// Without a syslog socket (LinuxKit's memlogd), plain lines go to stderr.
func TestServeFallbackLines(t *testing.T) {
	d := NewFakeDevice(10, 0)
	d.Add(3, 1_500_000, "disk \\ failed", "SUBSYSTEM=scsi")
	d.Add(14, 2_000_000, "user note")
	cfg := ServiceConfig{Config: DefaultConfig(), SyslogSocket: filepath.Join(t.TempDir(), "no-dev-log")}
	cfg.OpenDevice = func(string) (Device, error) { return d.Reopen(), nil }
	cfg.BootTime = fixedBoot
	var out testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, &out) }()
	waitFor(t, "two lines", func() bool { return strings.Count(out.String(), " seq=") == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := "2023-11-14T22:13:21.500000Z kern.err seq=0: disk \\ failed\n" +
		"2023-11-14T22:13:22.000000Z user.info seq=1: user note\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Fatalf("stderr:\n%s\nwant it to end with:\n%s", out.String(), want)
	}
}

// fakeMemlogd answers one query with a hello record carrying kmsg, then
// the given entry lines and the end record.
func fakeMemlogd(t *testing.T, hello map[string]any, entries ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := bufio.NewReader(c).ReadBytes('\n'); err != nil {
					return
				}
				h, _ := json.Marshal(hello)
				fmt.Fprintf(c, "%s\n", h)
				for _, e := range entries {
					fmt.Fprintf(c, "%s\n", e)
				}
				fmt.Fprintf(c, "{\"type\":\"end\",\"seq\":9}\n")
			}()
		}
	}()
	return path
}

// A memlogd that reads /dev/kmsg itself makes the service refuse to start.
func TestServeRefusesDoubleLogging(t *testing.T) {
	q := fakeMemlogd(t, map[string]any{"type": "hello", "instance": "i", "boot": "b", "first": 1, "next": 1, "resumed": false, "kmsg": true})
	d := NewFakeDevice(10, 0)
	cfg := ServiceConfig{Config: DefaultConfig(), QuerySocket: q, QueryTimeout: 5 * time.Second}
	cfg.OpenDevice = func(string) (Device, error) { return d.Reopen(), nil }
	err := Serve(context.Background(), cfg, io.Discard)
	if !errors.Is(err, ErrDoubleLogging) || !strings.Contains(err.Error(), q) {
		t.Fatalf("Serve: %v; want ErrDoubleLogging naming %s", err, q)
	}
}

// The last kernel record memlogd holds (in this boot) is where the
// service continues, even without a state file; a hung or absent query
// socket does not stop it.
func TestAskMemlogd(t *testing.T) {
	q := fakeMemlogd(t, map[string]any{"type": "hello", "boot": "boot-x"},
		`{"seq":5,"time":"2026-01-01T00:00:00Z","source":"kmsg","msg":"a","facility":0,"severity":6,"sd":"[kmsg@32473 seq=\"41\"]"}`,
		`{"seq":6,"time":"2026-01-01T00:00:00Z","source":"kmsg","msg":"kmsg: note without sd","facility":0,"severity":6}`,
		`{"seq":7,"time":"2026-01-01T00:00:00Z","source":"kmsg","msg":"b","facility":0,"severity":6,"sd":"[kmsg@32473 seq=\"42\"]"}`)
	info, err := askMemlogd(context.Background(), q, 5*time.Second)
	if err != nil || info.kmsg || info.boot != "boot-x" || !info.haveSeq || info.seq != 42 {
		t.Fatalf("askMemlogd = %+v, %v", info, err)
	}

	d := NewFakeDevice(100, 0)
	fill(d, 45)
	sink := &sliceSink{}
	cfg := DefaultConfig()
	cfg.BootID = "boot-x"
	cfg.StatePath = filepath.Join(t.TempDir(), "state")
	cfg.Delivered = &State{Boot: info.boot, Seq: info.seq}
	ctx, cancel := context.WithCancel(context.Background())
	done := runWith(t, ctx, d, cfg, sink)
	waitFor(t, "two entries", func() bool { return sink.len() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(sink.es[0].Msg) != "r43" || string(sink.es[1].Msg) != "r44" {
		t.Fatalf("continued with %q %q, want r43 r44", sink.es[0].Msg, sink.es[1].Msg)
	}

	// A socket nobody answers on: bounded by the timeout.
	hung := filepath.Join(t.TempDir(), "hung.sock")
	ln, err := net.Listen("unix", hung)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	if _, err := askMemlogd(context.Background(), hung, 200*time.Millisecond); err == nil {
		t.Fatal("a silent query socket gave no error")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("silent socket held the service for %v", el)
	}
	if info, err := askMemlogd(context.Background(), filepath.Join(t.TempDir(), "absent"), time.Second); err != nil || info != (memlogdInfo{}) {
		t.Fatalf("absent socket: %+v %v", info, err)
	}
}

func TestAppendDatagram(t *testing.T) {
	e := ring.Entry{Facility: 0, Severity: 3, OrigTime: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC).UnixNano(),
		SD: []byte(`[kmsg@32473 seq="7"]`), Msg: []byte("hello")}
	if got := string(AppendDatagram(nil, &e)); got != `<3>1 2026-03-01T12:00:00.123456Z - kmsg - - [kmsg@32473 seq="7"] hello` {
		t.Fatalf("datagram %q", got)
	}
	e.SD = nil
	e.Facility = 23
	if got := string(AppendDatagram(nil, &e)); got != `<187>1 2026-03-01T12:00:00.123456Z - kmsg - - - hello` {
		t.Fatalf("datagram %q", got)
	}
}

// Against a real memlogd started with -kmsg, the kmsg binary refuses to
// start and says why.
func TestServiceRefusesMemlogdKmsg(t *testing.T) {
	openReal(t).Close()
	bin := binaries(t)
	dir := t.TempDir()
	testutil.StartProc(t, filepath.Join(bin, "memlogd"), "-socket-log", filepath.Join(dir, "log.sock"),
		"-socket-query", filepath.Join(dir, "q.sock"), "-socket-syslog", filepath.Join(dir, "dev-log"),
		"-console=false", "-kmsg", "-kmsg-state", filepath.Join(dir, "memlogd-kmsg.state"))
	deadline := time.Now().Add(10 * time.Second)
	for !isSocket(filepath.Join(dir, "q.sock")) {
		if time.Now().After(deadline) {
			t.Fatal("memlogd's query socket did not appear")
		}
		time.Sleep(10 * time.Millisecond)
	}
	k := startKmsg(t, bin, dir)
	select {
	case <-k.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("kmsg kept running next to memlogd -kmsg")
	}
	if code := k.Cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(k.Output(), "memlogd already reads /dev/kmsg itself") {
		t.Fatalf("exit %d, output %q", code, k.Output())
	}
}

// TestMain removes the binaries testutil.Build made.
func TestMain(m *testing.M) { os.Exit(testutil.Run(m)) }
