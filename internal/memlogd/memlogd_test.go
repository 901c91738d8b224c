package memlogd_test

// Integration tests: they run the built memlogd and logread binaries on
// sockets in temporary directories, pass descriptors as LinuxKit's init
// does and read the query socket with both protocols.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	tu "github.com/lklog/lklog/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(tu.BuildAndRun(m)) }

// writeLines writes prefix+i for i in [from, to) to w, one per line.
func writeLines(t testing.TB, w *os.File, prefix string, from, to int) {
	t.Helper()
	var b bytes.Buffer
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s%d\n", prefix, i)
		if b.Len() > 32<<10 {
			if _, err := w.Write(b.Bytes()); err != nil {
				t.Errorf("writing lines: %v", err)
				return
			}
			b.Reset()
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		t.Errorf("writing lines: %v", err)
	}
}

// numbered checks that msgs are exactly prefix+from .. prefix+(to-1).
func numbered(t testing.TB, what string, msgs []string, prefix string, from, to int) {
	t.Helper()
	if len(msgs) != to-from {
		t.Errorf("%s: %d lines, want %d", what, len(msgs), to-from)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf("%s%d", prefix, from+i); m != want {
			t.Errorf("%s: line %d is %q, want %q", what, i, m, want)
			return
		}
	}
}

// runLogread runs the built logread and returns stdout, stderr and the exit
// status.
func runLogread(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(tu.LogreadBin(), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("logread %q did not finish within 20 s", args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// textLine formats an entry as LinuxKit's logread prints it.
func textLine(r tu.Record) string {
	return r.Time.Format(time.RFC3339Nano) + ";" + strings.ReplaceAll(r.Source, ";", `\;`) + ";" + r.Msg
}

// parseText splits a logread text line into time, source (unescaped) and
// message.
func parseText(t testing.TB, line string) (time.Time, string, string) {
	t.Helper()
	ts, rest, ok := strings.Cut(line, ";")
	if !ok {
		t.Fatalf("logread line without ';': %q", line)
	}
	tm, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("logread line %q: time: %v", line, err)
	}
	var src strings.Builder
	for i := 0; i < len(rest); i++ {
		switch {
		case rest[i] == '\\' && i+1 < len(rest) && rest[i+1] == ';':
			src.WriteByte(';')
			i++
		case rest[i] == ';':
			return tm, src.String(), rest[i+1:]
		default:
			src.WriteByte(rest[i])
		}
	}
	t.Fatalf("logread line %q: no ';' after the source", line)
	return tm, "", ""
}

// TestLinuxKitFDs passes descriptors exactly as LinuxKit's init does:
// socketpair ends for onboot containers (init keeps its copy of the passed
// end) and FIFO read ends for services; logread shows every line of every
// source, in order, in LinuxKit's text format.
func TestLinuxKitFDs(t *testing.T) {
	d := tu.Start(t)
	const n = 300
	writers := map[string]*os.File{
		"onboot.001-x.out":    d.Socketpair("onboot.001-x.out"),
		"onboot.001-x":        d.Socketpair("onboot.001-x"),
		"onshutdown.002-y":    d.Socketpair("onshutdown.002-y"),
		"sshd.out":            d.FIFO("sshd.out"),
		"sshd":                d.FIFO("sshd"),
		"semi;colon;name.out": d.Socketpair("semi;colon;name.out"),
	}
	var wg sync.WaitGroup
	for name, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writeLines(t, w, name+" line ", 0, n)
			w.Close()
		}()
	}
	wg.Wait()
	var recs []tu.Record
	if !tu.Eventually(10*time.Second, func() bool {
		_, recs = tu.Dump(t, d.Query, "")
		for name := range writers {
			if len(tu.Msgs(recs, name)) < n {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every line arrived within 10 s: %d entries", len(recs))
	}
	for name := range writers {
		numbered(t, name, tu.Msgs(recs, name), name+" line ", 0, n)
	}

	var want strings.Builder
	for _, r := range recs {
		want.WriteString(textLine(r) + "\n")
	}
	for _, args := range [][]string{{"-socket", d.Query}, {"-socket", d.Query, "-legacy"}} {
		out, errOut, code := runLogread(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("logread %q: exit %d, stderr %q", args, code, errOut)
		}
		// Entries memlogd logs after the dump above may follow.
		if !strings.HasPrefix(out, want.String()) {
			t.Errorf("logread %q output differs from the ring's entries in LinuxKit's text format:\n got %.2000q\nwant %.2000q", args, out, want.String())
		}
		got := map[string][]string{}
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			_, src, msg := parseText(t, l)
			got[src] = append(got[src], msg)
		}
		for name := range writers {
			numbered(t, fmt.Sprintf("logread %q: %s", args, name), got[name], name+" line ", 0, n)
		}
	}
	if !strings.Contains(want.String(), `;semi\;colon\;name.out;semi;colon;name.out line 0`+"\n") {
		t.Errorf("';' in a source is not written as '\\;'")
	}
}

type legacyEntry struct {
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	Msg    string    `json:"msg"`
}

func encodeLegacy(t testing.TB, e legacyEntry) []byte {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(e); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var trickyMsgs = []string{
	"plain",
	"<b>&amp;</b> <script>alert(1)</script>",
	`quote " backslash \ slash /`,
	"tab\tvt\vff\fbs\b",
	"nul\x00byte\x00",
	"bad\xffutf8\xc3 and \xe2\x82 cut",
	"line\u2028sep\u2029para",
	"ctrl \x01\x1f\x7f del",
	"emoji 😀 and é",
	"",
	"{\"json\":true}",
}

// TestLegacyDumpByteForByte checks that each mode-0 reply line is exactly
// what encoding/json's Encoder writes for LinuxKit's struct.
func TestLegacyDumpByteForByte(t *testing.T) {
	d := tu.Start(t)
	const src = `we"ird<src>&`
	w := d.Socketpair(src)
	for _, m := range trickyMsgs {
		if _, err := w.Write([]byte(m + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	w.Write([]byte("last\n"))
	tu.WaitMsg(t, d.Query, src, "last", 10*time.Second)

	c := tu.Dial(t, d.Query, []byte{0})
	var lines [][]byte
	for {
		line, err := c.Line(10 * time.Second)
		if err != nil {
			if len(line) != 0 {
				t.Fatalf("partial last line %q: %v", line, err)
			}
			break
		}
		lines = append(lines, line)
	}
	var mine []legacyEntry
	for _, line := range lines {
		if !bytes.HasPrefix(line, []byte(`{"time":"`)) {
			t.Errorf("legacy line does not start with {\"time\": %q", line)
		}
		var e legacyEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("legacy line is not JSON: %v: %q", err, line)
		}
		if !bytes.Contains(line, []byte(`\ufffd`)) {
			if re := encodeLegacy(t, e); !bytes.Equal(re, append(line, '\n')) {
				t.Errorf("legacy line differs from encoding/json's bytes:\n got %q\nwant %q", line, re)
			}
		}
		if e.Source == src {
			mine = append(mine, e)
		}
	}
	if len(mine) != len(trickyMsgs)+1 {
		t.Fatalf("%d entries from %q, want %d", len(mine), src, len(trickyMsgs)+1)
	}
	// Against the original bytes: what LinuxKit's memlogd writes for the
	// message as the container wrote it (invalid UTF-8 becomes \ufffd).
	i := 0
	for _, line := range lines {
		var e legacyEntry
		json.Unmarshal(line, &e)
		if e.Source != src {
			continue
		}
		orig := "last"
		if i < len(trickyMsgs) {
			orig = trickyMsgs[i]
		}
		want := encodeLegacy(t, legacyEntry{Time: e.Time, Source: src, Msg: orig})
		if !bytes.Equal(append(line, '\n'), want) {
			t.Errorf("message %q:\n got %q\nwant %q", orig, line, want)
		}
		if utf8.ValidString(orig) && e.Msg != orig {
			t.Errorf("message %q decoded as %q", orig, e.Msg)
		}
		i++
	}
}

// readLegacyUntil reads legacy lines until one from source has message
// msg, and returns them all.
func readLegacyUntil(t testing.TB, c *tu.Conn, source, msg string, timeout time.Duration) []legacyEntry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got []legacyEntry
	for {
		line, err := c.Line(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for %q from %q: %v after %d entries", msg, source, err, len(got))
		}
		var e legacyEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("legacy line is not JSON: %v: %q", err, line)
		}
		got = append(got, e)
		if e.Source == source && e.Msg == msg {
			return got
		}
	}
}

func legacyMsgs(es []legacyEntry, source string) []string {
	var out []string
	for _, e := range es {
		if e.Source == source {
			out = append(out, e.Msg)
		}
	}
	return out
}

// syncFollower makes sure a follower that has sent its request is
// registered: it writes probe lines until the follower sees one.
func syncFollower(t testing.TB, c *tu.Conn, w *os.File, source string) []legacyEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got []legacyEntry
	for k := 0; ; k++ {
		if time.Now().After(deadline) {
			t.Fatalf("follower saw no probe within 10 s")
		}
		fmt.Fprintf(w, "probe %d\n", k)
		line, err := c.Line(50 * time.Millisecond)
		for err == nil {
			var e legacyEntry
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("legacy line is not JSON: %v: %q", err, line)
			}
			got = append(got, e)
			if e.Source == source && strings.HasPrefix(e.Msg, "probe ") {
				return got
			}
			line, err = c.Line(50 * time.Millisecond)
		}
		if len(line) > 0 {
			c.BR.Reset(c.C) // cannot happen with whole lines; keep it simple
			t.Fatalf("partial line %q", line)
		}
	}
}

func TestLegacyFollowModes(t *testing.T) {
	d := tu.Start(t)
	w := d.Socketpair("app")
	writeLines(t, w, "old ", 0, 100)
	tu.WaitMsg(t, d.Query, "app", "old 99", 10*time.Second)

	// Mode 1: only entries that arrive after the request.
	f1 := tu.Dial(t, d.Query, []byte{1})
	got := syncFollower(t, f1, w, "app")
	for _, e := range got {
		if strings.HasPrefix(e.Msg, "old ") {
			t.Fatalf("mode 1 follower got an old entry %q", e.Msg)
		}
	}
	// Mode 2: the whole ring, then new entries.
	f2 := tu.Dial(t, d.Query, []byte{2})
	dumped := readLegacyUntil(t, f2, "app", "old 99", 10*time.Second)
	numbered(t, "mode 2 dump", legacyMsgs(dumped, "app"), "old ", 0, 100)

	writeLines(t, w, "new ", 0, 500)
	got1 := readLegacyUntil(t, f1, "app", "new 499", 10*time.Second)
	got2 := readLegacyUntil(t, f2, "app", "new 499", 10*time.Second)
	filter := func(es []legacyEntry) []string {
		var out []string
		for _, m := range legacyMsgs(es, "app") {
			if !strings.HasPrefix(m, "probe ") {
				out = append(out, m)
			}
		}
		return out
	}
	numbered(t, "mode 1 follow", filter(got1), "new ", 0, 500)
	numbered(t, "mode 2 follow", filter(got2), "new ", 0, 500)
}

// TestExtended covers the extended request: cursors, tail, filters, end.
func TestExtended(t *testing.T) {
	d := tu.Start(t)
	for _, name := range []string{"app.a", "app.b", "other"} {
		w := d.Socketpair(name)
		writeLines(t, w, name+" ", 0, 20)
		w.Close()
	}
	var hello tu.Record
	var all []tu.Record
	if !tu.Eventually(10*time.Second, func() bool {
		hello, all = tu.Dump(t, d.Query, "")
		return len(tu.Msgs(all, "app.a")) == 20 && len(tu.Msgs(all, "app.b")) == 20 && len(tu.Msgs(all, "other")) == 20
	}) {
		t.Fatalf("lines did not arrive: %d entries", len(all))
	}
	if hello.Instance == "" || hello.First != 1 || hello.Resumed {
		t.Errorf("hello %s: want an instance, first 1, resumed false", hello.Line)
	}
	if int(hello.Next-hello.First) != len(all) {
		t.Errorf("hello %s announces %d entries, dump has %d", hello.Line, hello.Next-hello.First, len(all))
	}
	for i, r := range all {
		if r.Seq != hello.First+uint64(i) {
			t.Fatalf("entry %d has seq %d, want %d", i, r.Seq, hello.First+uint64(i))
		}
		if r.Facility == nil || r.Severity == nil {
			t.Errorf("entry without facility or severity: %s", r.Line)
		}
	}
	// Entries memlogd adds itself (none expected here) must not disturb
	// the counts below: take the bounds from the dump.
	last := all[len(all)-1].Seq

	t.Run("after", func(t *testing.T) {
		k := all[10].Seq
		c := tu.Request(t, d.Query, fmt.Sprintf(`{"mode":"dump","after":{"instance":%q,"seq":%d}}`, hello.Instance, k))
		recs := c.ReadAll(10 * time.Second)
		if recs[0].Type != "hello" || !recs[0].Resumed {
			t.Fatalf("hello %s: want resumed", recs[0].Line)
		}
		ents := recs[1 : len(recs)-1]
		if len(ents) == 0 || ents[0].Seq != k+1 {
			t.Fatalf("after %d: first entry %v", k, ents)
		}
		for i, r := range ents {
			if r.Seq != k+1+uint64(i) || r.Type != "" {
				t.Fatalf("after %d: record %d is %s", k, i, r.Line)
			}
		}
		if ents[len(ents)-1].Seq < last {
			t.Errorf("after %d: stops at %d, before %d", k, ents[len(ents)-1].Seq, last)
		}
		if e := recs[len(recs)-1]; e.Type != "end" || e.Seq != ents[len(ents)-1].Seq+1 {
			t.Errorf("end record %s after entry %d", e.Line, ents[len(ents)-1].Seq)
		}
	})
	t.Run("after-last", func(t *testing.T) {
		// After the newest entry: nothing but hello and end.
		_, now := tu.Dump(t, d.Query, "")
		lastNow := now[len(now)-1].Seq
		c := tu.Request(t, d.Query, fmt.Sprintf(`{"mode":"dump","after":{"instance":%q,"seq":%d}}`, hello.Instance, lastNow))
		recs := c.ReadAll(10 * time.Second)
		if len(recs) != 2 || recs[1].Type != "end" || recs[1].Seq != lastNow+1 || !recs[0].Resumed {
			var lines []string
			for _, r := range recs {
				lines = append(lines, string(r.Line))
			}
			t.Errorf("after the newest entry %d: %q", lastNow, lines)
		}
	})
	t.Run("foreign-instance", func(t *testing.T) {
		c := tu.Request(t, d.Query, `{"mode":"dump","after":{"instance":"0123456789abcdef0123456789abcdef","seq":30}}`)
		recs := c.ReadAll(10 * time.Second)
		if recs[0].Resumed {
			t.Errorf("hello %s: resumed with a foreign instance", recs[0].Line)
		}
		if recs[1].Seq != hello.First {
			t.Errorf("foreign instance: starts at %d, want the oldest %d", recs[1].Seq, hello.First)
		}
	})
	t.Run("tail", func(t *testing.T) {
		c := tu.Request(t, d.Query, `{"mode":"dump","tail":5}`)
		recs := c.ReadAll(10 * time.Second)
		ents := recs[1 : len(recs)-1]
		if len(ents) != 5 {
			t.Fatalf("tail 5: %d entries", len(ents))
		}
		h := recs[0]
		for i, r := range ents {
			if r.Seq != h.Next-5+uint64(i) {
				t.Errorf("tail 5: entry %d seq %d, hello next %d", i, r.Seq, h.Next)
			}
		}
		// tail with a filter counts matching entries.
		c = tu.Request(t, d.Query, `{"mode":"dump","tail":3,"sources":["app.a"]}`)
		recs = c.ReadAll(10 * time.Second)
		var msgs []string
		for _, r := range recs[1 : len(recs)-1] {
			msgs = append(msgs, r.Msg)
		}
		if want := []string{"app.a 17", "app.a 18", "app.a 19"}; fmt.Sprint(msgs) != fmt.Sprint(want) {
			t.Errorf("tail 3 of app.a: %q, want %q", msgs, want)
		}
	})
	t.Run("sources", func(t *testing.T) {
		_, recs := tu.Dump(t, d.Query, `"sources":["app.*"]`)
		for _, r := range recs {
			if !strings.HasPrefix(r.Source, "app.") {
				t.Fatalf("sources app.*: got %s", r.Line)
			}
		}
		numbered(t, "app.a", tu.Msgs(recs, "app.a"), "app.a ", 0, 20)
		numbered(t, "app.b", tu.Msgs(recs, "app.b"), "app.b ", 0, 20)
		_, recs = tu.Dump(t, d.Query, `"sources":["app.*"],"exclude":["*.b"]`)
		if len(recs) != 20 || len(tu.Msgs(recs, "app.a")) != 20 {
			t.Errorf("sources app.* exclude *.b: %d entries, %d from app.a", len(recs), len(tu.Msgs(recs, "app.a")))
		}
		_, recs = tu.Dump(t, d.Query, `"exclude":["app.?","memlogd"]`)
		if len(recs) != 20 || len(tu.Msgs(recs, "other")) != 20 {
			t.Errorf("exclude app.? memlogd: %d entries, %d from other", len(recs), len(tu.Msgs(recs, "other")))
		}
	})
	t.Run("dump+follow-after", func(t *testing.T) {
		c := tu.Request(t, d.Query, fmt.Sprintf(`{"mode":"dump+follow","after":{"instance":%q,"seq":%d},"sources":["late"]}`, hello.Instance, last))
		if h := c.Next(10 * time.Second); h.Type != "hello" || !h.Resumed {
			t.Fatalf("hello %s", h.Line)
		}
		w := d.Socketpair("late")
		writeLines(t, w, "late ", 0, 10)
		for i := 0; i < 10; i++ {
			r := c.Next(10 * time.Second)
			if r.Type != "" || r.Msg != fmt.Sprintf("late %d", i) {
				t.Fatalf("follower record %d: %s", i, r.Line)
			}
		}
	})
}

// TestExtendedSeverity filters by minimum severity (syslog entries carry
// several).
func TestExtendedSeverity(t *testing.T) {
	d := tu.StartWith(t, tu.Options{Syslog: true})
	for sev := 0; sev < 8; sev++ {
		sendSyslog(t, d.Syslog, fmt.Sprintf("<%d>sevtest: severity %d", 8+sev, sev))
	}
	tu.WaitMsg(t, d.Query, "sevtest", "severity 7", 10*time.Second)
	for _, max := range []int{0, 3, 7} {
		_, recs := tu.Dump(t, d.Query, fmt.Sprintf(`"severity":%d,"sources":["sevtest"]`, max))
		if len(recs) != max+1 {
			t.Errorf("severity %d: %d entries, want %d", max, len(recs), max+1)
		}
		for _, r := range recs {
			if *r.Severity > max {
				t.Errorf("severity %d: got %s", max, r.Line)
			}
		}
	}
}

// TestBadRequests: every malformed request gets an error record, then the
// connection is closed; memlogd keeps serving.
func TestBadRequests(t *testing.T) {
	d := tu.Start(t)
	for name, req := range map[string]string{
		"garbage-byte":  "x garbage\n",
		"bad-json":      "{\"mode\":\n",
		"unknown-field": `{"mode":"dump","bogus":1}` + "\n",
		"tail+after":    `{"mode":"dump","tail":3,"after":{"instance":"x","seq":1}}` + "\n",
		"bad-mode":      `{"mode":"sideways"}` + "\n",
		"bad-glob":      `{"mode":"dump","sources":["["]}` + "\n",
		"bad-severity":  `{"mode":"dump","severity":9}` + "\n",
		"trailing":      `{"mode":"dump"} x` + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := tu.Dial(t, d.Query, []byte(req))
			recs := c.ReadAll(5 * time.Second)
			if len(recs) != 1 || recs[0].Type != "error" || recs[0].Error == "" {
				var lines []string
				for _, r := range recs {
					lines = append(lines, string(r.Line))
				}
				t.Fatalf("request %q: reply %q, want one error record", req, lines)
			}
			if line, err := c.Line(5 * time.Second); err == nil || len(line) > 0 {
				t.Errorf("request %q: connection not closed after the error: %q, %v", req, line, err)
			}
		})
	}
	if _, recs := tu.Dump(t, d.Query, ""); len(recs) == 0 {
		t.Errorf("memlogd stopped serving after bad requests")
	}
}

// sendSyslog sends one datagram to a syslog socket.
func sendSyslog(t testing.TB, path, msg string) {
	t.Helper()
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatalf("connecting to %s: %v", path, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("sending to %s: %v", path, err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
