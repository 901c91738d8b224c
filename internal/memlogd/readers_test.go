package memlogd_test

// Readers that fall behind, stall, stay silent or are too many.

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tu "github.com/lklog/lklog/internal/testutil"
)

// writePadded writes lines "prefix<i> <padding>" of about size bytes.
func writePadded(t testing.TB, w *os.File, prefix string, from, to, size int) {
	t.Helper()
	pad := strings.Repeat("x", max(size-len(prefix)-8, 0))
	var b bytes.Buffer
	for i := from; i < to; i++ {
		b.WriteString(prefix)
		b.WriteString(strconv.Itoa(i))
		b.WriteByte(' ')
		b.WriteString(pad)
		b.WriteByte('\n')
		if b.Len() > 64<<10 {
			if _, err := w.Write(b.Bytes()); err != nil {
				t.Errorf("writing: %v", err)
				return
			}
			b.Reset()
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		t.Errorf("writing: %v", err)
	}
}

// lineNumber returns i of a message "prefix<i> ...".
func lineNumber(t testing.TB, msg, prefix string) int {
	t.Helper()
	rest, ok := strings.CutPrefix(msg, prefix)
	if !ok {
		t.Fatalf("message %.60q does not start with %q", msg, prefix)
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		t.Fatalf("message %.60q: %v", msg, err)
	}
	return n
}

// waitTail waits until the newest entry of source is msgPrefix+"N ...".
func waitLast(t testing.TB, d *tu.Daemon, source, prefix string, n int, timeout time.Duration) {
	t.Helper()
	var got string
	if !tu.Eventually(timeout, func() bool {
		c := tu.Request(t, d.Query, fmt.Sprintf(`{"mode":"dump","tail":1,"sources":[%q]}`, source))
		defer c.Close()
		recs := c.ReadAll(10 * time.Second)
		if len(recs) == 3 {
			got = recs[1].Msg
			return strings.HasPrefix(got, prefix+strconv.Itoa(n)+" ")
		}
		return false
	}) {
		t.Fatalf("last line %s%d from %s not in the ring within %v (newest: %.60q)", prefix, n, source, timeout, got)
	}
}

// TestGapCountsExtended: a follower that stops reading while thousands of
// lines pass through a 100-entry ring is told exactly what it missed.
func TestGapCountsExtended(t *testing.T) {
	d := tu.Start(t, "-max-lines", "100", "-pace-wait", "0")
	w := d.Socketpair("gap")
	c := tu.Request(t, d.Query, `{"mode":"follow"}`)
	hello := c.Next(10 * time.Second)
	if hello.Type != "hello" {
		t.Fatalf("hello: %s", hello.Line)
	}
	const total = 20000
	writePadded(t, w, "gap ", 0, total, 100)
	waitLast(t, d, "gap", "gap ", total-1, 20*time.Second)

	expect := hello.Next
	var seen, lost, gaps uint64
	prev := -1
	var pending uint64
	deadline := time.Now().Add(20 * time.Second)
	for prev != total-1 {
		if time.Now().After(deadline) {
			t.Fatalf("follower did not reach the last line within 20 s (at %d)", prev)
		}
		r := c.Next(10 * time.Second)
		switch r.Type {
		case "gap":
			gaps++
			if r.Lost == 0 || r.Seq-expect != r.Lost {
				t.Fatalf("gap record %s: expected next seq was %d, so lost should be %d", r.Line, expect, r.Seq-expect)
			}
			lost += r.Lost
			pending += r.Lost
			expect = r.Seq
		case "":
			if r.Seq != expect {
				t.Fatalf("entry seq %d, want %d (no gap record in between)", r.Seq, expect)
			}
			expect++
			seen++
			if r.Source != "gap" {
				continue
			}
			n := lineNumber(t, r.Msg, "gap ")
			if missing := uint64(n - prev - 1); missing != pending {
				t.Fatalf("line %d after line %d: %d lines missing, gap records said %d", n, prev, missing, pending)
			}
			pending = 0
			prev = n
		default:
			t.Fatalf("unexpected record %s", r.Line)
		}
	}
	if gaps == 0 {
		t.Fatalf("no gap: the follower was not made to fall behind (test too weak)")
	}
	if got := seen + lost; got != expect-hello.Next {
		t.Errorf("seen %d + lost %d = %d, want %d entries", seen, lost, got, expect-hello.Next)
	}
	t.Logf("seen %d, lost %d in %d gaps", seen, lost, gaps)
}

// TestGapCountsLegacy: a legacy follower gets an entry from memlogd with
// the exact number of lines it missed.
func TestGapCountsLegacy(t *testing.T) {
	d := tu.Start(t, "-max-lines", "100", "-pace-wait", "0")
	w := d.Socketpair("gap")
	c := tu.Dial(t, d.Query, []byte{1})
	syncFollower(t, c, w, "gap")
	const total = 20000
	writePadded(t, w, "gap ", 0, total, 100)
	waitLast(t, d, "gap", "gap ", total-1, 20*time.Second)

	prev := -1
	var pending, gaps, seen uint64
	deadline := time.Now().Add(20 * time.Second)
	for prev != total-1 {
		if time.Now().After(deadline) {
			t.Fatalf("follower did not reach the last line within 20 s (at %d)", prev)
		}
		line, err := c.Line(10 * time.Second)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		var e legacyEntry
		if err := jsonUnmarshal(line, &e); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		switch {
		case e.Source == "memlogd":
			var n uint64
			if _, err := fmt.Sscanf(e.Msg, "memlogd: %d entries lost here", &n); err != nil {
				t.Fatalf("memlogd entry %q: not a gap report", e.Msg)
			}
			gaps++
			pending += n
		case e.Source == "gap" && strings.HasPrefix(e.Msg, "probe "):
		case e.Source == "gap":
			n := lineNumber(t, e.Msg, "gap ")
			if missing := uint64(n - prev - 1); missing != pending {
				t.Fatalf("line %d after line %d: %d lines missing, memlogd said %d", n, prev, missing, pending)
			}
			seen++
			pending = 0
			prev = n
		default:
			t.Fatalf("unexpected entry %q", line)
		}
	}
	if gaps == 0 {
		t.Fatalf("no gap entry: the follower was not made to fall behind (test too weak)")
	}
	t.Logf("seen %d lines, %d gap entries", seen, gaps)
}

// TestPacingSteadyFollower: with the default -pace-wait, a follower that
// reads steadily loses nothing while writers write far more than the ring
// holds.
func TestPacingSteadyFollower(t *testing.T) {
	d := tu.Start(t, "-max-lines", "1000")
	c := tu.Request(t, d.Query, `{"mode":"follow","sources":["pace.*"]}`)
	hello := c.Next(10 * time.Second)
	if hello.Type != "hello" {
		t.Fatalf("hello: %s", hello.Line)
	}
	const perWriter = 25000
	names := []string{"pace.a", "pace.b"}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for _, name := range names {
		w := d.Socketpair(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			writePadded(t, w, name+" ", 0, perWriter, 80)
		}()
	}
	next := map[string]int{}
	deadline := time.Now().Add(40 * time.Second)
	for n := 0; n < len(names)*perWriter; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("follower got only %d lines within 40 s", n)
		}
		line, err := c.Line(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d lines: %v", n, err)
		}
		// Cheap parsing keeps the reader steady under -race.
		if bytes.HasPrefix(line, []byte(`{"type":"gap"`)) {
			t.Fatalf("steady follower lost entries after %d lines: %s", n, line)
		}
		i := bytes.Index(line, []byte(`"msg":"`))
		if i < 0 {
			t.Fatalf("no msg in %q", line)
		}
		name, rest, _ := strings.Cut(string(line[i+7:min(len(line), i+40)]), " ")
		num, _, _ := strings.Cut(rest, " ")
		if want := strconv.Itoa(next[name]); num != want {
			t.Fatalf("from %s: line %s, want %s", name, num, want)
		}
		next[name]++
	}
	wg.Wait()
}

// TestPacingStalledFollower: followers that never read hold writers up
// only for about -pace-wait, not for ever.
func TestPacingStalledFollower(t *testing.T) {
	d := tu.Start(t, "-max-lines", "1000", "-pace-wait", "300ms")
	c1 := tu.Request(t, d.Query, `{"mode":"follow"}`)
	if h := c1.Next(10 * time.Second); h.Type != "hello" {
		t.Fatalf("hello: %s", h.Line)
	}
	w := d.Socketpair("stall")
	c2 := tu.Dial(t, d.Query, []byte{1})
	syncFollower(t, c2, w, "stall")
	const total = 50000 // 5 MB: far more than the ring and socket buffers
	start := time.Now()
	writePadded(t, w, "stall ", 0, total, 100)
	waitLast(t, d, "stall", "stall ", total-1, 30*time.Second)
	el := time.Since(start)
	t.Logf("%d lines ingested in %v with two stalled followers", total, el)
	// Bounded (10 x -pace-wait = 3 s per wait) rather than for ever; the
	// limit leaves room for a busy machine.
	if el > 30*time.Second {
		t.Errorf("writing took %v: stalled followers held the writer up", el)
	}
	// The stalled extended follower learns what it missed, after what its
	// socket held (query.SendBuffer and a batch).
	var gap bool
	for i := 0; i < total && !gap; i++ {
		r := c1.Next(10 * time.Second)
		gap = r.Type == "gap"
	}
	if !gap {
		t.Errorf("stalled follower got no gap record")
	}
}

// TestSilentAndGarbageClients: a client that connects and sends nothing,
// or sends garbage, delays no one.
func TestSilentAndGarbageClients(t *testing.T) {
	d := tu.Start(t)
	w := d.Socketpair("app")
	writeLines(t, w, "line ", 0, 10)
	tu.WaitMsg(t, d.Query, "app", "line 9", 10*time.Second)

	follower := tu.Request(t, d.Query, `{"mode":"follow","sources":["app"]}`)
	follower.Next(10 * time.Second) // hello
	for i := 0; i < 5; i++ {
		tu.Dial(t, d.Query, nil) // silent, kept open until the test ends
	}
	start := time.Now()
	out, errOut, code := runLogread(t, "-socket", d.Query)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("logread took %v with silent clients connected", el)
	}
	if code != 0 || !strings.Contains(out, ";app;line 9\n") {
		t.Errorf("logread: exit %d, stderr %q, output %q", code, errOut, out)
	}
	g := tu.Dial(t, d.Query, []byte("\x07\x08garbage\n"))
	if r := g.Next(5 * time.Second); r.Type != "error" {
		t.Errorf("garbage: reply %s, want an error record", r.Line)
	}
	writeLines(t, w, "line ", 10, 11)
	if r := follower.Next(5 * time.Second); r.Msg != "line 10" {
		t.Errorf("follower after garbage client: %s", r.Line)
	}
	start = time.Now()
	if _, recs := tu.Dump(t, d.Query, `"sources":["app"]`); len(recs) != 11 {
		t.Errorf("dump after garbage: %d entries", len(recs))
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("dump took %v", el)
	}
}

// TestMaxReaders: over the limit, readers are refused politely in the
// protocol they asked for; once others leave, readers work again.
func TestMaxReaders(t *testing.T) {
	d := tu.Start(t, "-max-readers", "2")
	var stalled []*tu.Conn
	for i := 0; i < 2; i++ {
		// Earlier connections (the start-up probe) may hold their slot
		// for a moment after they close.
		var h tu.Record
		if !tu.Eventually(5*time.Second, func() bool {
			c := tu.Request(t, d.Query, `{"mode":"follow"}`)
			if h = c.Next(10 * time.Second); h.Type != "hello" {
				c.Close()
				return false
			}
			stalled = append(stalled, c)
			return true
		}) {
			t.Fatalf("reader %d: %s", i, h.Line)
		}
	}
	c := tu.Request(t, d.Query, `{"mode":"dump"}`)
	recs := c.ReadAll(5 * time.Second)
	if len(recs) != 1 || recs[0].Type != "error" || !strings.Contains(recs[0].Error, "too many") {
		t.Errorf("third extended reader: %v, want one error record about too many readers", recs)
	}
	l := tu.Dial(t, d.Query, []byte{0})
	var lines [][]byte
	for {
		line, err := l.Line(5 * time.Second)
		if err != nil {
			break
		}
		lines = append(lines, line)
	}
	if len(lines) != 1 {
		t.Fatalf("third legacy reader: %q, want one entry", lines)
	}
	var e legacyEntry
	if err := jsonUnmarshal(lines[0], &e); err != nil || e.Source != "memlogd" || !strings.Contains(e.Msg, "too many readers") || e.Time.IsZero() {
		t.Errorf("third legacy reader: %q, want an entry from memlogd about too many readers", lines[0])
	}
	for _, s := range stalled {
		s.Close()
	}
	if !tu.Eventually(5*time.Second, func() bool {
		c := tu.Request(t, d.Query, `{"mode":"dump"}`)
		defer c.Close()
		recs := c.ReadAll(5 * time.Second)
		return len(recs) > 0 && recs[0].Type == "hello"
	}) {
		t.Fatalf("readers still refused 5 s after the stalled ones left")
	}
	// Both slots are free again, once memlogd has noticed that both
	// stalled clients and the probe above hung up.
	if !tu.Eventually(30*time.Second, func() bool {
		a := tu.Request(t, d.Query, `{"mode":"follow"}`)
		defer a.Close()
		b := tu.Request(t, d.Query, `{"mode":"follow"}`)
		defer b.Close()
		return a.Next(5*time.Second).Type == "hello" && b.Next(5*time.Second).Type == "hello"
	}) {
		t.Errorf("two followers not served within 30 s after the stalled ones left")
	}
}

// TestStalledReadersMemory: four stalled followers and 50 MB of lines do
// not grow memlogd beyond its ring plus a constant.
func TestStalledReadersMemory(t *testing.T) {
	const ringBytes = 8 << 20
	d := tu.Start(t, "-max-lines", "100000", "-max-bytes", strconv.Itoa(ringBytes))
	for i := 0; i < 2; i++ {
		c := tu.Request(t, d.Query, `{"mode":"dump+follow"}`)
		c.Next(10 * time.Second)
	}
	for i := 0; i < 2; i++ {
		tu.Dial(t, d.Query, []byte{2})
	}
	const perWriter, size = 50000, 500
	// An active follower of the two writers sees each one's last line
	// when it is appended: a ring query may not, since one writer can
	// finish well before the other, whose lines then evict all of its.
	f := tu.Request(t, d.Query, `{"mode":"follow","sources":["mem.a","mem.b"]}`)
	if h := f.Next(10 * time.Second); h.Type != "hello" {
		t.Fatalf("follower: %s", h.Line)
	}
	lastSeen := make(chan error, 1)
	go func() {
		want := map[string]bool{}
		for _, name := range []string{"mem.a", "mem.b"} {
			want[fmt.Sprintf(`"msg":"%s %d `, name, perWriter-1)] = true
		}
		// Writers may wait for the stalled followers (up to the hard
		// bound, 10 s each time one is paced again) when this process,
		// their client, is kept busy on a loaded machine: 180 s bounds a
		// hang only.
		deadline := time.Now().Add(180 * time.Second)
		for len(want) > 0 {
			line, err := f.Line(time.Until(deadline))
			if err != nil {
				lastSeen <- fmt.Errorf("%v; still waiting for %v", err, want)
				return
			}
			for w := range want {
				if bytes.Contains(line, []byte(w)) {
					delete(want, w)
				}
			}
		}
		lastSeen <- nil
	}()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for _, name := range []string{"mem.a", "mem.b"} {
		w := d.Socketpair(name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			writePadded(t, w, name+" ", 0, perWriter, size)
		}()
	}
	wg.Wait()
	if err := <-lastSeen; err != nil {
		t.Fatalf("the follower did not get both writers' last lines: %v", err)
	}
	hwm := tu.StatusKB(t, d.PID(), "VmHWM")
	t.Logf("VmHWM %d KiB after %d MB with 4 stalled followers, an active one and a %d MiB ring", hwm, 2*perWriter*size>>20, ringBytes>>20)
	if limit := (ringBytes + 40<<20) >> 10; hwm > limit {
		t.Errorf("VmHWM %d KiB > %d KiB (ring + 40 MiB)", hwm, limit)
	}
}
