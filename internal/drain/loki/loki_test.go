package loki

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/logproto"
)

// Interleaved sources become one stream per label set, each stream's
// values in the batch's order, timestamps in nanoseconds as strings.
func TestStreams(t *testing.T) {
	t0 := time.Unix(1700000000, 5)
	var msgs []drain.Message
	for i, src := range []string{"a", "b", "a", "b", "a"} {
		msgs = append(msgs, drain.Message{Rec: logproto.Record{Time: t0.Add(time.Duration(i)), Source: src, Msg: src + string(rune('0'+i)), Severity: 6}})
	}
	msgs[4].Rec.Severity = 3
	p := &Push{Labels: []string{"host", "source", "severity"}, Meta: httpdrain.Meta{Host: "vm1"}}
	var body struct {
		Streams []struct {
			Stream map[string]string `json:"stream"`
			Values [][2]string       `json:"values"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(p.Encode(nil, msgs, nil), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Streams) != 3 {
		t.Fatalf("%d streams: %+v", len(body.Streams), body)
	}
	a := body.Streams[0]
	if a.Stream["host"] != "vm1" || a.Stream["source"] != "a" || a.Stream["severity"] != "info" || len(a.Values) != 2 ||
		a.Values[0] != [2]string{"1700000000000000005", "a0"} || a.Values[1][1] != "a2" {
		t.Fatalf("stream a: %+v", a)
	}
	if e := body.Streams[2]; e.Stream["severity"] != "err" || e.Values[0][1] != "a4" {
		t.Fatalf("stream a/err: %+v", e)
	}
	if CheckLabels([]string{"host", "pid"}) == nil || CheckLabels(nil) == nil {
		t.Fatal("CheckLabels")
	}
}

// Runs of entries with the same labels, and runs broken by each label in
// turn, land in the right streams: every entry once, in order, under its
// own labels, one stream per distinct label set.
func TestStreamRuns(t *testing.T) {
	p := &Push{Labels: []string{"host", "source", "severity", "facility", "instance"}, Meta: httpdrain.Meta{Host: "vm1"}}
	var msgs []drain.Message
	for i := range 300 {
		m := drain.Message{Instance: "i1", Rec: logproto.Record{Time: time.Unix(1700000000, int64(i)), Source: "a", Msg: strconv.Itoa(i), Severity: 6, Facility: 3}}
		switch (i / 5) % 6 { // runs of 5
		case 1:
			m.Rec.Source = "b"
		case 2:
			m.Rec.Severity = 3
		case 3:
			m.Rec.Facility = 4
		case 4:
			m.Instance = "i2"
		}
		msgs = append(msgs, m)
	}
	var body struct {
		Streams []struct {
			Stream map[string]string `json:"stream"`
			Values [][2]string       `json:"values"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(p.Encode(nil, msgs, nil), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Streams) != 5 {
		t.Fatalf("%d streams, want 5", len(body.Streams))
	}
	seen := 0
	for _, s := range body.Streams {
		prev := -1
		for _, v := range s.Values {
			i, err := strconv.Atoi(v[1])
			if err != nil || i <= prev {
				t.Fatalf("value %q after %d", v[1], prev)
			}
			prev = i
			seen++
			m := &msgs[i]
			for _, l := range p.Labels {
				if s.Stream[l] != p.label(m, l) {
					t.Fatalf("entry %d in stream %v (its %s is %s)", i, s.Stream, l, p.label(m, l))
				}
			}
		}
	}
	if seen != len(msgs) {
		t.Fatalf("%d entries in the streams, want %d", seen, len(msgs))
	}
}

func BenchmarkEncode(b *testing.B) {
	p := &Push{Labels: []string{"host", "source", "severity"}, Meta: httpdrain.Meta{Host: "vm1"}}
	msgs := make([]drain.Message, 1000)
	now := time.Now()
	for i := range msgs {
		msgs[i] = drain.Message{Instance: "x", Rec: logproto.Record{Seq: uint64(i + 1), Time: now, Source: "w" + strconv.Itoa(i/250), Msg: strings.Repeat("x", 79), Severity: 6, Facility: 3}}
	}
	var buf []byte
	b.ReportAllocs()
	for range b.N {
		buf = p.Encode(buf[:0], msgs, nil)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkGzip is what gzip (at the level the HTTP drains use) adds
// per entry to a push of 1000 lines like the VictoriaLogs benchmark's.
func BenchmarkGzip(b *testing.B) {
	p := &Push{Labels: []string{"host", "source", "severity"}, Meta: httpdrain.Meta{Host: "vm1"}}
	msgs := make([]drain.Message, 1000)
	now := time.Now()
	for i := range msgs {
		line := fmt.Sprintf("w%d line %07d ", i%4, i)
		msgs[i] = drain.Message{Instance: "x", Rec: logproto.Record{Seq: uint64(i + 1), Time: now.Add(time.Duration(i) * time.Microsecond), Source: "w" + strconv.Itoa(i%4), Msg: line + strings.Repeat("x", 79-len(line)), Severity: 6, Facility: 3}}
	}
	body := p.Encode(nil, msgs, nil)
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestSpeed)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for range b.N {
		out.Reset()
		zw.Reset(&out)
		zw.Write(body)
		zw.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/entry")
	b.ReportMetric(float64(out.Len())/float64(len(body)), "ratio")
}
