package logforward

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain/redis"
	"github.com/lklog/lklog/internal/testutil"
)

// redisServer is a redis-server started by a test.
type redisServer struct {
	t    testing.TB
	args []string
	Port int
	p    *testutil.Proc
}

func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: run scripts/deps.sh (make test-go does) to install it")
	}
	r := &redisServer{t: t, Port: freePort(t, "tcp")}
	r.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port), "--dir", t.TempDir(), "--save", "", "--daemonize", "no"}, extra...)
	r.args = append([]string{bin}, r.args...)
	r.start()
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	r.p = testutil.StartProc(r.t, r.args[0], r.args[1:]...)
	if !testutil.Eventually(30*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port))
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		r.t.Fatalf("redis-server did not start: %s", r.p.Output())
	}
}

func (r *redisServer) stop() { r.p.Stop(r.t, syscall.SIGTERM) }

// cmd runs one command (after AUTH and SELECT when given).
func (r *redisServer) cmd(auth string, db int, args ...string) (redis.Reply, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), 10*time.Second)
	if err != nil {
		return redis.Reply{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var b []byte
	n := 1
	if auth != "" {
		b = redis.AppendCommand(b, []byte("AUTH"), []byte(auth))
		n++
	}
	b = redis.AppendCommand(b, []byte("SELECT"), []byte(strconv.Itoa(db)))
	var a [][]byte
	for _, s := range args {
		a = append(a, []byte(s))
	}
	b = redis.AppendCommand(b, a...)
	if _, err := c.Write(b); err != nil {
		return redis.Reply{}, err
	}
	br := bufio.NewReader(c)
	var rep redis.Reply
	for range n + 1 {
		if rep, err = redis.ReadReply(br); err != nil {
			return rep, err
		}
		if rep.Kind == '-' {
			return rep, fmt.Errorf("%s", rep.Str)
		}
	}
	return rep, nil
}

// Logtube over Redis: a list of compact events, a list of standard
// events (topic from the source) and a stream, into database 2 of a
// server with a password: every line once, in order, with Logtube's
// fields; the password is never shown.
func TestRedisLogtube(t *testing.T) {
	const secret = "redis-Secret-9"
	r := startRedis(t, "--requirepass", secret)
	d := testutil.Start(t, "-max-lines", "20000")
	base := fmt.Sprintf("redis://:%s@127.0.0.1:%d/2?sources=app", secret, r.Port)
	f := startForward(t, d, t.TempDir(),
		"-drain", base+"&redis_key=lt1&env=prod&project=shop/api",
		"-drain", base+"&redis_key=lt2&format=standard&topic=source",
		"-drain", base+"&redis_key=lt3&type=stream&maxlen=100000")
	const n = 3000
	writeLines(t, d.Socketpair("app"), "app", 0, n)
	for _, c := range [][]string{{"LLEN", "lt1"}, {"LLEN", "lt2"}, {"XLEN", "lt3"}} {
		var rep redis.Reply
		var err error
		if !testutil.Eventually(60*time.Second, func() bool {
			rep, err = r.cmd(secret, 2, c...)
			return err == nil && rep.Int >= n
		}) || rep.Int != n {
			t.Fatalf("%v: %d (%v), want %d; log:\n%s", c, rep.Int, err, n, f.Output())
		}
	}
	events := func(key string) []map[string]any {
		rep, err := r.cmd(secret, 2, "LRANGE", key, "0", "-1")
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, e := range rep.Elems {
			var m map[string]any
			if err := json.Unmarshal([]byte(e.Str), &m); err != nil {
				t.Fatalf("%q: %v", e.Str, err)
			}
			out = append(out, m)
		}
		return out
	}
	for i, m := range events("lt1") {
		x, _ := m["x"].(map[string]any)
		ms, _ := m["t"].(float64)
		if m["m"] != fmt.Sprintf("app line %d", i) || m["h"] != "vm1" || m["e"] != "prod" || m["p"] != "shop_api" || m["o"] != "info" ||
			x["source"] != "app" || x["seq"] == nil || x["instance"] == nil || time.Since(time.UnixMilli(int64(ms))) > 10*time.Minute {
			t.Fatalf("compact event %d: %v", i, m)
		}
	}
	for i, m := range events("lt2") {
		if m["message"] != fmt.Sprintf("app line %d", i) || m["hostname"] != "vm1" || m["env"] != "default" || m["project"] != "lklog" || m["topic"] != "app" || m["x_source"] != "app" {
			t.Fatalf("standard event %d: %v", i, m)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z07:00", m["timestamp"].(string)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := r.cmd(secret, 2, "XRANGE", "lt3", "-", "+", "COUNT", "2")
	if err != nil || len(rep.Elems) != 2 {
		t.Fatalf("%+v %v", rep, err)
	}
	fields := rep.Elems[1].Elems[1].Elems
	if len(fields) != 2 || fields[0].Str != "event" || !strings.Contains(fields[1].Str, `"m":"app line 1"`) {
		t.Fatalf("stream entry %+v", rep.Elems[1])
	}
	stOut, _ := cli(t, f, "status")
	if strings.Contains(f.Output(), secret) || strings.Contains(stOut, secret) {
		t.Fatalf("the password shows:\n%s\n%s", f.Output(), stOut)
	}
}

// Redis (with an append-only file synced at each write) is restarted
// while lines flow: every line arrives.
func TestRedisRestart(t *testing.T) {
	r := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	d := testutil.Start(t, "-max-lines", "5000")
	f := startForward(t, d, t.TempDir(), "-drain", fmt.Sprintf("redis://127.0.0.1:%d?sources=app&batch=200", r.Port))
	waitReading(t, f)
	w := d.Socketpair("app")
	const n, chunk = 20000, 100
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i += chunk {
			writeLines(t, w, "app", i, chunk)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if !testutil.Eventually(60*time.Second, func() bool {
		rep, err := r.cmd("", 0, "LLEN", "logtube")
		return err == nil && rep.Int > 2000
	}) {
		t.Fatalf("nothing arrives: %s", f.Output())
	}
	r.stop()
	time.Sleep(time.Second) // an outage of a second, while lines flow
	r.start()
	<-done
	// Wait for every distinct line: the batch in flight at the restart
	// may arrive twice (at least once), so the list's length alone says
	// too early that all are there.
	var seen map[string]bool
	var dups int
	testutil.Eventually(120*time.Second, func() bool {
		rep, err := r.cmd("", 0, "LRANGE", "logtube", "0", "-1")
		if err != nil {
			return false
		}
		seen, dups = map[string]bool{}, 0
		for _, e := range rep.Elems {
			var m map[string]any
			json.Unmarshal([]byte(e.Str), &m)
			msg, _ := m["m"].(string)
			if seen[msg] {
				dups++
			}
			seen[msg] = true
		}
		return len(seen) >= n
	})
	if len(seen) != n {
		t.Fatalf("%d distinct of %d (%d duplicates); log:\n%s", len(seen), n, dups, f.Output())
	}
	if !strings.Contains(f.Output(), "retrying") {
		t.Fatalf("the restart was not noticed:\n%s", f.Output())
	}
	t.Logf("%d lines, %d sent twice (the batch in flight at the restart)", n, dups)
}
