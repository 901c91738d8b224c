package logforward

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain/nats"
	"github.com/lklog/lklog/internal/testutil"
)

// streamCount returns how many messages stream name holds.
func (n *natsServer) streamCount(t testing.TB, name string) int {
	var info struct {
		State struct {
			Messages int `json:"messages"`
		} `json:"state"`
	}
	n.api(t, "$JS.API.STREAM.INFO."+name, struct{}{}, &info)
	return info.State.Messages
}

// Sources holding '.', '*', '>', spaces, control bytes or bytes that are
// not valid UTF-8 each publish to one valid subject token that the
// stream's logs.* captures, and the message carries the exact source. A
// source whose subject no stream captures (while a stream captures the
// drain's other subjects) is rejected, counted and logged instead of
// being retried for ever in front of the lines after it.
func TestNATSHostileSources(t *testing.T) {
	ns := startNATS(t)
	for name, subj := range map[string]string{"LOGS": "logs.*", "ONLY": "only.good"} {
		var created map[string]any
		ns.api(t, "$JS.API.STREAM.CREATE."+name, map[string]any{"name": name, "subjects": []string{subj}, "storage": "file"}, &created)
		if created["error"] != nil {
			t.Fatalf("creating stream %s: %v", name, created)
		}
	}
	d := testutil.Start(t, "-max-lines", "5000")
	hostile := []string{"a.b", "*", ">", "x y", "c\xff", "c\xfe", "\x1b[31m", "tab\there", "é"}
	f := startForward(t, d, t.TempDir(),
		"-drain", "nats://"+ns.Addr+"?subject=logs.{source}&sources=*&exclude=memlogd,good,evil&batch=1&linger=10ms",
		"-drain", "nats://"+ns.Addr+"?subject=only.{source}&sources=good,evil&batch=1&linger=10ms")
	waitReading(t, f)
	for _, src := range hostile {
		w := d.Socketpair(src)
		fmt.Fprintf(w, "from %q\n", src)
		w.Close()
	}
	evil := d.Socketpair("evil")
	good := d.Socketpair("good")
	const n = 20
	for i := range n {
		fmt.Fprintf(evil, "evil line %d\n", i)
	}
	// The good lines come after the evil ones: each batch is one entry.
	if !testutil.Eventually(60*time.Second, func() bool {
		st, err := statusErr(f)
		return err == nil && len(st.Drains) == 2 && st.Drains[0].Delivery != nil && st.Drains[1].Delivery != nil &&
			st.Drains[0].Delivery.Rejected+st.Drains[1].Delivery.Rejected >= n
	}) {
		st, _ := statusErr(f)
		t.Fatalf("the entries of source evil were not rejected: status %+v\n%s", st, f.Output())
	}
	for i := range n {
		fmt.Fprintf(good, "good line %d\n", i)
	}
	if !testutil.Eventually(60*time.Second, func() bool {
		return ns.streamCount(t, "LOGS") >= len(hostile) && ns.streamCount(t, "ONLY") >= n
	}) {
		t.Fatalf("streams hold %d and %d messages, want %d and %d\n%s", ns.streamCount(t, "LOGS"), ns.streamCount(t, "ONLY"), len(hostile), n, f.Output())
	}
	got := map[string]bool{}
	for _, m := range ns.streamMsgs(t, "LOGS") {
		src, _ := m["source"].(string)
		if b64, ok := m["source_b64"].(string); ok {
			b, _ := base64.StdEncoding.DecodeString(b64)
			src = string(b)
		}
		if want := "logs." + nats.Token(src); m["_subject"] != want {
			t.Errorf("source %q: subject %q, want %q", src, m["_subject"], want)
		}
		if m["msg"] != fmt.Sprintf("from %q", src) {
			t.Errorf("source %q: msg %q", src, m["msg"])
		}
		got[src] = true
	}
	for _, src := range hostile {
		if !got[src] {
			t.Errorf("source %q: no message in the stream", src)
		}
	}
	if c := ns.streamCount(t, "ONLY"); c != n {
		t.Errorf("stream ONLY holds %d messages, want the %d good lines", c, n)
	}
	if !strings.Contains(f.Output(), "only.evil") {
		t.Errorf("the log does not name the subject no stream captures:\n%s", f.Output())
	}
}
