package logforward

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain/nats"
	"github.com/lklog/lklog/internal/testutil"
)

// natsServer is a nats-server with JetStream started by a test.
type natsServer struct {
	Addr string
	p    *testutil.Proc
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatal("nats-server is not installed: run scripts/deps.sh (make test-go does) to install it")
	}
	port := freePort(t, "tcp")
	n := &natsServer{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	n.p = testutil.StartProc(t, bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", t.TempDir())
	if !testutil.Eventually(30*time.Second, func() bool {
		c, err := nats.Dial(context.Background(), n.Addr, "", "", 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatalf("nats-server did not start: %s", n.p.Output())
	}
	return n
}

// api sends a JetStream API request and decodes the reply.
func (n *natsServer) api(t testing.TB, subject string, req any, reply any) {
	t.Helper()
	c, err := nats.Dial(context.Background(), n.Addr, "", "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, _ := json.Marshal(req)
	m, err := c.Request(subject, b, 30*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	if err := json.Unmarshal(m.Data, reply); err != nil {
		t.Fatalf("%s: %q: %v", subject, m.Data, err)
	}
}

// streamMsgs returns the data of every message in stream name.
func (n *natsServer) streamMsgs(t testing.TB, name string) []map[string]any {
	t.Helper()
	var info struct {
		State struct {
			Messages uint64 `json:"messages"`
			FirstSeq uint64 `json:"first_seq"`
			LastSeq  uint64 `json:"last_seq"`
		} `json:"state"`
	}
	n.api(t, "$JS.API.STREAM.INFO."+name, struct{}{}, &info)
	c, err := nats.Dial(context.Background(), n.Addr, "", "", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []map[string]any
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		b, _ := json.Marshal(map[string]uint64{"seq": seq})
		m, err := c.Request("$JS.API.STREAM.MSG.GET."+name, b, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Message struct {
				Subject string `json:"subject"`
				Data    string `json:"data"`
			} `json:"message"`
		}
		json.Unmarshal(m.Data, &r)
		data, _ := base64.StdEncoding.DecodeString(r.Message.Data)
		var e map[string]any
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("message %d %q: %v", seq, m.Data, err)
		}
		e["_subject"] = r.Message.Subject
		out = append(out, e)
	}
	return out
}

// logforward is killed with SIGKILL three times while lines flow to
// JetStream: the stream holds every line exactly once (the resends carry
// the same Nats-Msg-Id and fall in the duplicate window).
func TestNATSJetStreamKill9(t *testing.T) {
	ns := startNATS(t)
	var created map[string]any
	ns.api(t, "$JS.API.STREAM.CREATE.LOGS", map[string]any{"name": "LOGS", "subjects": []string{"logs.>"}, "storage": "file", "duplicate_window": int64(2 * time.Minute)}, &created)
	if created["error"] != nil {
		t.Fatalf("creating the stream: %v", created)
	}
	d := testutil.Start(t, "-max-lines", "5000")
	state := t.TempDir()
	url := "nats://" + ns.Addr + "?subject=logs.{source}&sources=app*&batch=300"
	f := startForward(t, d, state, "-drain", url)
	waitReading(t, f)
	w := d.Socketpair("app.out")
	const n, chunk = 12000, 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i += chunk {
			writeLines(t, w, "app.out", i, chunk)
			time.Sleep(25 * time.Millisecond)
		}
	}()
	acked := func() uint64 {
		st, err := statusErr(f)
		if err != nil || len(st.Drains) == 0 {
			return 0
		}
		return st.Drains[0].Acked
	}
	for k := 0; k < 3; k++ {
		if !testutil.Eventually(60*time.Second, func() bool { return acked() > 500 }) {
			t.Fatalf("no progress before kill %d: %s", k+1, f.Output())
		}
		f.Kill()
		os.Remove(f.control)
		f = startForward(t, d, state, "-drain", url)
	}
	<-done
	var msgs []map[string]any
	testutil.Eventually(120*time.Second, func() bool {
		var info struct {
			State struct {
				Messages int `json:"messages"`
			} `json:"state"`
		}
		ns.api(t, "$JS.API.STREAM.INFO.LOGS", struct{}{}, &info)
		return info.State.Messages >= n
	})
	msgs = ns.streamMsgs(t, "LOGS")
	seen := map[string]int{}
	for _, m := range msgs {
		msg, _ := m["msg"].(string)
		seen[msg]++
		if m["_subject"] != "logs.app_out" || m["source"] != "app.out" || m["host"] != "vm1" {
			t.Fatalf("message %v", m)
		}
	}
	for i := 0; i < n; i++ {
		if c := seen[fmt.Sprintf("app.out line %d", i)]; c != 1 {
			t.Fatalf("line %d is in the stream %d times (%d messages); log:\n%s", i, c, len(msgs), f.Output())
		}
	}
	if len(msgs) != n {
		t.Fatalf("%d messages for %d lines", len(msgs), n)
	}
}

// statusErr asks f for its status without failing the test.
func statusErr(f *fwd) (StatusReply, error) {
	var st StatusReply
	err := newClient(f.control).do("GET", "/v1/status", nil, &st)
	return st, err
}
