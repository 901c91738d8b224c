package logforward

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/testutil"
)

// Sources and messages that are not valid UTF-8 reach VictoriaLogs over
// JSON lines, _bulk, Loki and OTLP with every good line of their batches:
// sources c\xff and c\xfe stay apart (their exact bytes in *_b64 fields),
// and so do the messages' bytes where the format has a field for them.
func TestVictoriaLogsHostileBytes(t *testing.T) {
	v := startVictoriaLogs(t)
	d := testutil.Start(t, "-max-lines", "20000")
	type drainCase struct {
		tenant            int
		url               string
		sourceB64, msgB64 string // VictoriaLogs field names; "" if the format has none
	}
	drains := []drainCase{
		{1, "http://" + v.Addr + "/insert/jsonline?sources=app,c*&header.AccountID=1&arg._msg_field=msg&arg._time_field=time", "source_b64", "msg_b64"},
		{2, "elasticsearch+http://" + v.Addr + "/insert/elasticsearch/?sources=app,c*&header.AccountID=2&arg._msg_field=message&arg._time_field=@timestamp", "source_b64", "message_b64"},
		{3, "loki+http://" + v.Addr + "/insert?sources=app,c*&header.AccountID=3", "source_b64", ""},
		{4, "otlp+http://" + v.Addr + "/insert/opentelemetry?sources=app,c*&header.AccountID=4", "lklog.source_b64", "lklog.msg_b64"},
	}
	var args []string
	for _, dr := range drains {
		args = append(args, "-drain", dr.url)
	}
	f := startForward(t, d, t.TempDir(), args...)
	const n, m = 300, 50
	good := d.Socketpair("app")
	hostile := []string{"c\xff", "c\xfe", "c\uFFFD"}
	for i := range n {
		fmt.Fprintf(good, "app line %d\n", i)
		if i < m {
			for k, src := range hostile {
				w := d.Socketpair(src)
				fmt.Fprintf(w, "hostile %d \xfe%d\n", k, i)
				w.Close()
			}
		}
	}
	for _, dr := range drains {
		if rows, distinct := v.waitCount(dr.tenant, `"app line"`, n, 90*time.Second); rows != n || distinct != n {
			t.Fatalf("%s: %d rows, %d distinct good lines, want %d; log:\n%s", dr.url, rows, distinct, n, f.Output())
		}
		if rows, _ := v.waitCount(dr.tenant, `"hostile"`, len(hostile)*m, 60*time.Second); rows != len(hostile)*m {
			t.Fatalf("%s: %d hostile rows, want %d; log:\n%s", dr.url, rows, len(hostile)*m, f.Output())
		}
		r, err := v.query(dr.tenant, `"hostile" | stats count_uniq(`+strconv.Quote(dr.sourceB64)+`) u`)
		if err != nil || len(r) != 1 || r[0]["u"] != "2" {
			all, _ := v.query(dr.tenant, `"hostile" | limit 3`)
			t.Fatalf("%s: distinct %s: %v %v; some rows: %v", dr.url, dr.sourceB64, r, err, all)
		}
		if dr.msgB64 == "" {
			continue
		}
		r, err = v.query(dr.tenant, `"hostile 1" | fields `+strconv.Quote(dr.msgB64)+`, `+strconv.Quote(dr.sourceB64)+` | limit 1`)
		if err != nil || len(r) != 1 {
			t.Fatalf("%s: %v %v", dr.url, r, err)
		}
		msg, _ := base64.StdEncoding.DecodeString(r[0][dr.msgB64])
		src, _ := base64.StdEncoding.DecodeString(r[0][dr.sourceB64])
		if string(src) != "c\xfe" || len(msg) < 11 || string(msg[:11]) != "hostile 1 \xfe" {
			t.Fatalf("%s: exact bytes %q %q from %v", dr.url, src, msg, r[0])
		}
	}
}
