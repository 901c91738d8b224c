package logforward

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

// victoriaLogsBin builds VictoriaLogs once (scripts/victorialogs.sh caches
// it under .cache/bin) and returns its path.
func victoriaLogsBin(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "victorialogs.sh")
	out, err := exec.Command(script).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("VictoriaLogs is the receiver of these tests and could not be built by %s: %v\n%s", script, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// vlogs is a VictoriaLogs process (a single node, or one node of a
// cluster).
type vlogs struct {
	t    testing.TB
	bin  string
	args []string
	Addr string
	p    *testutil.Proc
}

func startVictoriaLogs(t testing.TB, extra ...string) *vlogs {
	t.Helper()
	v := &vlogs{t: t, bin: victoriaLogsBin(t)}
	port := freePort(t, "tcp")
	v.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	v.args = append([]string{"-storageDataPath=" + t.TempDir(), "-httpListenAddr=" + v.Addr, "-retentionPeriod=100y", "-loggerLevel=WARN"}, extra...)
	v.start()
	return v
}

func (v *vlogs) start() {
	v.t.Helper()
	v.p = testutil.StartProc(v.t, v.bin, v.args...)
	if !testutil.Eventually(60*time.Second, func() bool {
		resp, err := http.Get("http://" + v.Addr + "/health")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.TrimSpace(string(b)) == "OK"
	}) {
		v.t.Fatalf("VictoriaLogs did not become healthy: %s", v.p.Output())
	}
}

// query runs a LogsQL query for a tenant and returns the JSON lines.
func (v *vlogs) query(tenant int, q string) ([]map[string]string, error) {
	req, _ := http.NewRequest("POST", "http://"+v.Addr+"/select/logsql/query", strings.NewReader(url.Values{"query": {q}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("AccountID", strconv.Itoa(tenant))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("query %q: %s: %s", q, resp.Status, b)
	}
	var out []map[string]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("query reply %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// waitQuery runs q until it returns want rows (rows become visible a
// second or two after they are counted).
func (v *vlogs) waitQuery(tenant int, q string, want int) ([]map[string]string, error) {
	var r []map[string]string
	var err error
	testutil.Eventually(30*time.Second, func() bool {
		r, err = v.query(tenant, q)
		return err == nil && len(r) >= want
	})
	return r, err
}

// counts returns how many rows match q and how many distinct messages.
func (v *vlogs) counts(tenant int, q string) (rows, distinct int, err error) {
	r, err := v.query(tenant, q+" | stats count() rows, count_uniq(_msg) msgs")
	if err != nil || len(r) != 1 {
		return 0, 0, fmt.Errorf("%v (%d rows)", err, len(r))
	}
	rows, _ = strconv.Atoi(r[0]["rows"])
	distinct, _ = strconv.Atoi(r[0]["msgs"])
	return rows, distinct, nil
}

// waitCount waits until tenant holds want rows matching q and returns
// the rows and distinct messages it last saw.
func (v *vlogs) waitCount(tenant int, q string, want int, timeout time.Duration) (rows, distinct int) {
	v.t.Helper()
	var err error
	testutil.Eventually(timeout, func() bool {
		rows, distinct, err = v.counts(tenant, q)
		return err == nil && rows >= want
	})
	if err != nil {
		v.t.Logf("counting: %v", err)
	}
	return rows, distinct
}

// JSON lines (gzipped), Elasticsearch _bulk, Loki and OTLP drains (each into its own
// VictoriaLogs tenant) each deliver every numbered line once, with the
// fields mapped as the README says.
func TestVictoriaLogsHTTP(t *testing.T) {
	v := startVictoriaLogs(t)
	d := testutil.Start(t, "-max-lines", "20000")
	drains := []struct {
		tenant int
		url    string
	}{
		{1, "http://" + v.Addr + "/insert/jsonline?sources=app&gzip=true&header.AccountID=1&arg._stream_fields=host,source&arg._msg_field=msg&arg._time_field=time"},
		{2, "elasticsearch+http://" + v.Addr + "/insert/elasticsearch/?sources=app&header.AccountID=2&arg._stream_fields=host,source&arg._msg_field=message&arg._time_field=@timestamp"},
		{3, "loki+http://" + v.Addr + "/insert?sources=app&header.AccountID=3"},
		{4, "otlp+http://" + v.Addr + "/insert/opentelemetry?sources=app&header.AccountID=4"},
	}
	var args []string
	for _, dr := range drains {
		args = append(args, "-drain", dr.url)
	}
	f := startForward(t, d, t.TempDir(), args...)
	const n = 10000
	writeLines(t, d.Socketpair("app"), "app", 0, n)
	for _, dr := range drains {
		rows, distinct := v.waitCount(dr.tenant, `"app line"`, n, 90*time.Second)
		if rows != n || distinct != n {
			t.Fatalf("%s: %d rows, %d distinct, want %d; log:\n%s", dr.url, rows, distinct, n, f.Output())
		}
	}
	// Fields.
	for _, dr := range drains[:2] {
		r, err := v.waitQuery(dr.tenant, `"app line 1234" | fields _time, _msg, _stream, source, severity, facility, seq, instance, boot, host`, 1)
		if err != nil || len(r) != 1 {
			all, _ := v.query(dr.tenant, `* | limit 2`)
			t.Fatalf("%v %v; some rows: %v", r, err, all)
		}
		m := r[0]
		if m["_msg"] != "app line 1234" || m["source"] != "app" || m["severity"] != "6" || m["facility"] != "3" || m["host"] != "vm1" || m["instance"] == "" || m["boot"] == "" || m["_stream"] != `{host="vm1",source="app"}` {
			t.Fatalf("%s: fields %v", dr.url, m)
		}
		if seq, err := strconv.Atoi(m["seq"]); err != nil || seq < 1235 {
			t.Fatalf("seq %q", m["seq"])
		}
		if ts, err := time.Parse(time.RFC3339Nano, m["_time"]); err != nil || time.Since(ts) > 10*time.Minute {
			t.Fatalf("_time %q: %v", m["_time"], err)
		}
	}
	r, err := v.waitQuery(3, `"app line 1234" | fields _msg, _stream`, 1)
	if err != nil || len(r) != 1 || r[0]["_stream"] != `{host="vm1",severity="info",source="app"}` {
		t.Fatalf("loki: %v %v", r, err)
	}
	r, err = v.waitQuery(4, `"app line 1234" | limit 1`, 1)
	if err != nil || len(r) != 1 {
		t.Fatalf("otlp: %v %v", r, err)
	}
	if m := r[0]; m["host.name"] != "vm1" || m["service.name"] != "app" || m["severity_text"] != "INFO" || m["severity_number"] != "9" ||
		m["lklog.instance"] == "" || m["lklog.seq"] == "" || m["syslog.facility"] != "3" || m["host.boot_id"] == "" {
		t.Fatalf("otlp fields: %v", m)
	}
}

// A VictoriaLogs cluster (two storage nodes, an insert node, a select
// node): the insert node is stopped and started again while lines flow
// over _bulk, and every line arrives.
//
// VictoriaLogs' insert node answers a request once it holds the rows and
// passes them to the storage nodes within a second; when it stops it
// drops what it still holds (v1.52.1 netinsert: the final flush runs with
// a context its own stop has cancelled, "dropping N bytes of data"). No
// sender can help that, so the first half of the lines is stored before
// the insert node stops; the second half is written while it is down.
func TestVictoriaLogsClusterRestart(t *testing.T) {
	s1, s2 := startVictoriaLogs(t), startVictoriaLogs(t)
	nodes := "-storageNode=" + s1.Addr + "," + s2.Addr
	ins := startVictoriaLogs(t, nodes, "-select.disable")
	sel := startVictoriaLogs(t, nodes, "-insert.disable")
	d := testutil.Start(t, "-max-lines", "5000")
	url := "elasticsearch+http://" + ins.Addr + "/insert/elasticsearch?sources=app&batch=200&arg._msg_field=message&arg._time_field=@timestamp&arg._stream_fields=host,source"
	f := startForward(t, d, t.TempDir(), "-drain", url)
	waitReading(t, f)
	w := d.Socketpair("app")
	const n, chunk = 20000, 100
	write := func(from, to int) {
		for i := from; i < to; i += chunk {
			writeLines(t, w, "app", i, chunk)
			time.Sleep(10 * time.Millisecond)
		}
	}
	write(0, n/2)
	if rows, _ := sel.waitCount(0, `"app line"`, n/2, 90*time.Second); rows < n/2 {
		t.Fatalf("%d rows before the restart; log:\n%s", rows, f.Output())
	}
	ins.p.Stop(t, syscall.SIGTERM)
	down := time.Now()
	write(n/2, n)
	if wait := 2*time.Second - time.Since(down); wait > 0 {
		time.Sleep(wait) // the insert node is away at least 2 s
	}
	ins.start()
	rows, distinct := sel.waitCount(0, `"app line"`, n, 120*time.Second)
	if distinct != n {
		t.Fatalf("%d distinct lines of %d (%d rows), missing %s; log:\n%s", distinct, n, rows, missing(sel, n), f.Output())
	}
	if !strings.Contains(f.Output(), "connection refused; retrying") {
		t.Fatalf("the restart was not noticed:\n%s", f.Output())
	}
	for _, s := range []*vlogs{s1, s2} {
		if r, _, err := s.counts(0, `"app line"`); err != nil || r == 0 {
			t.Fatalf("storage node %s holds %d rows (%v)", s.Addr, r, err)
		}
	}
	t.Logf("%d lines, %d rows", n, rows)
}

// missing lists the ranges of "app line N" a select node lacks.
func missing(v *vlogs, n int) string {
	r, err := v.query(0, `"app line" | fields _msg`)
	if err != nil {
		return err.Error()
	}
	have := make([]bool, n)
	for _, m := range r {
		var i int
		if _, err := fmt.Sscanf(m["_msg"], "app line %d", &i); err == nil && i >= 0 && i < n {
			have[i] = true
		}
	}
	var out []string
	for i := 0; i < n; i++ {
		if !have[i] {
			j := i
			for j+1 < n && !have[j+1] {
				j++
			}
			out = append(out, fmt.Sprintf("%d-%d", i, j))
			i = j
		}
	}
	return strings.Join(out, ",")
}
