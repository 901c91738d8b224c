package logread_test

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logproto"
	tu "github.com/lklog/lklog/internal/testutil"
)

// replayServer answers every extended request (a line starting with '{')
// with reply, byte for byte, and closes; one-byte legacy requests are
// left unanswered, as LinuxKit's memlogd leaves requests it does not
// know. It stands for a memlogd of another version whose replies were
// recorded.
func replayServer(t *testing.T, reply []byte) string {
	path := filepath.Join(tu.ShortTempDir(t), "q.sock")
	tu.ServeUnix(t, path, func(c net.Conn) {
		br := bufio.NewReader(c)
		if first, err := br.Peek(1); err != nil || first[0] != '{' {
			return // held open until the test ends
		}
		if _, err := br.ReadString('\n'); err != nil {
			c.Close()
			return
		}
		c.Write(reply)
		c.Close()
	})
	return path
}

// The memlogd of commit f10a768 (recorded: a dump after an evicted cursor:
// hello, a gap record, entries without _b64 keys, end) is read as it was:
// the gap as memlogd's "N entries lost here", sources and messages
// escaped; -json prints its records unchanged.
func TestOldMemlogdReply(t *testing.T) {
	reply, err := os.ReadFile("testdata/memlogd-f10a768-after-evicted.reply")
	if err != nil {
		t.Fatal(err)
	}
	path := replayServer(t, reply)
	out, errOut, code := runLogread(t, "-socket", path, "-after-cursor", "2dcc98991080b6f083f7f1dda6bed480:1")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || errOut != "" || len(lines) != 5 {
		t.Fatalf("exit %d, stderr %q, %d lines:\n%s", code, errOut, len(lines), out)
	}
	if !strings.HasSuffix(lines[0], ";memlogd;"+logproto.GapMessage(3)) {
		t.Errorf("gap: %q", lines[0])
	}
	if want := `2026-12-02T01:27:02.597038299Z;app\;4;line \x1b[31m 4`; lines[1] != want {
		t.Errorf("entry: %q, want %q", lines[1], want)
	}
	if want := "2026-12-02T01:27:02.619386815Z;c;bad \uFFFD"; lines[4] != want {
		t.Errorf("entry: %q, want %q", lines[4], want)
	}
	out, errOut, code = runLogread(t, "-socket", path, "-json", "-after-cursor", "2dcc98991080b6f083f7f1dda6bed480:1")
	recorded := strings.TrimSuffix(string(reply), `{"type":"end","seq":9}`+"\n")
	if code != 0 || errOut != "" || out != recorded {
		t.Errorf("-json: exit %d, stderr %q\n got %q\nwant %q", code, errOut, out, recorded)
	}
}

// Its refusal of a cursor (an error record without a code) is reported
// as such, exit 1.
func TestOldMemlogdCursorRefused(t *testing.T) {
	path := replayServer(t, []byte(`{"type":"error","error":"cursor 99 is beyond the newest entry 8 of this instance"}`+"\n"))
	out, errOut, code := runLogread(t, "-socket", path, "-after-cursor", "2dcc98991080b6f083f7f1dda6bed480:99")
	if code != 1 || out != "" || !strings.Contains(errOut, "cursor 99 is beyond the newest entry 8") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// A newer memlogd may add fields and record types: unknown fields are
// ignored, and a record of a type logread does not know is not printed
// as an entry (it printed "0001-01-01T00:00:00Z;;"); -json passes it on.
func TestNewerMemlogdRecords(t *testing.T) {
	reply := `{"type":"hello","instance":"abc","boot":"b","first":1,"next":3,"resumed":false,"features":["x"]}` + "\n" +
		`{"seq":1,"time":"2026-12-02T01:00:00Z","source":"a","msg":"one","facility":3,"severity":6,"labels":{"k":"v"}}` + "\n" +
		`{"type":"stats","held":2,"bytes":10}` + "\n" +
		`{"seq":2,"time":"2026-12-02T01:00:01Z","source":"b","msg":"two","facility":3,"severity":6}` + "\n" +
		`{"type":"end","seq":3}` + "\n"
	path := replayServer(t, []byte(reply))
	out, errOut, code := runLogread(t, "-socket", path)
	want := "2026-12-02T01:00:00Z;a;one\n2026-12-02T01:00:01Z;b;two\n"
	if code != 0 || errOut != "" || out != want {
		t.Errorf("exit %d, stderr %q\n got %q\nwant %q", code, errOut, out, want)
	}
	out, _, code = runLogread(t, "-socket", path, "-json")
	if code != 0 || !strings.Contains(out, `{"type":"stats","held":2,"bytes":10}`) {
		t.Errorf("-json: exit %d, %q", code, out)
	}
}

// The requests the readers of commit f10a768 send (recorded byte for byte
// from its logread, logwrite and kmsg) are served by this memlogd: a
// hello and the entries they ask for, never an error record.
func TestOldReadersRequests(t *testing.T) {
	d := setup(t)
	for _, c := range []struct {
		who, req string
		follow   bool
		min      int // entries at least, of a dump
	}{
		{"logread", `{"mode":"dump"}` + "\n", false, 108},
		{"logread -F", `{"mode":"dump+follow"}` + "\n", true, 0},
		{"logread -n 5 -source 'a*' -severity warning", `{"mode":"dump","tail":5,"sources":["a*"],"severity":4}` + "\n", false, 0},
		{"logread -after-cursor abc:5 -f", `{"mode":"dump+follow","after":{"instance":"abc","seq":5}}` + "\n", true, 0},
		{"logwrite", `{"mode":"dump+follow","exclude":["logwrite*"]}` + "\n", true, 0},
		{"kmsg", `{"mode":"dump","tail":16,"sources":["kmsg"]}` + "\n", false, 0},
	} {
		conn := tu.Dial(t, d.Query, []byte(c.req))
		if c.follow {
			if r := conn.Next(10 * time.Second); r.Type != "hello" {
				t.Errorf("%s: first record %q", c.who, r.Line)
			}
			conn.Close()
			continue
		}
		recs := conn.ReadAll(10 * time.Second)
		conn.Close()
		if len(recs) < 2 || recs[0].Type != "hello" || recs[len(recs)-1].Type != "end" || len(recs)-2 < c.min {
			t.Errorf("%s: %d records, first %q, last %q", c.who, len(recs), recs[0].Line, recs[len(recs)-1].Line)
		}
	}
	// Their legacy requests (the mode byte sent beside the extended one).
	conn := tu.Dial(t, d.Query, []byte{0})
	n := 0
	for {
		line, err := conn.Line(10 * time.Second)
		if err != nil {
			break
		}
		if !strings.HasPrefix(string(line), `{"time":"`) {
			t.Fatalf("legacy dump line %q", line)
		}
		n++
	}
	if n < 108 {
		t.Errorf("legacy dump: %d lines", n)
	}
}
