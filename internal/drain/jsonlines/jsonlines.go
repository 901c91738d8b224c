// Package jsonlines is the plain HTTP(S) destination: a batch of JSON
// lines (application/x-ndjson), one object per entry with every field
// memlogd has, or (format=syslog) octet-counted RFC 5424 frames as
// logplex-style HTTPS drains take them.
package jsonlines

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/syslogfmt"
)

// JSON is the JSON lines protocol.
type JSON struct {
	Meta httpdrain.Meta
}

// Endpoint implements httpdrain.Protocol: the URL as given.
func (*JSON) Endpoint() string { return "" }

// ContentType implements httpdrain.Protocol.
func (*JSON) ContentType() string { return "application/x-ndjson" }

// Encode implements httpdrain.Protocol.
func (p *JSON) Encode(dst []byte, msgs []drain.Message, _ http.Header) []byte {
	f := httpdrain.NewFields(&p.Meta, "time", "msg")
	for i := range msgs {
		dst = append(dst, '{')
		dst = f.Append(dst, &msgs[i])
		dst = append(dst, '}', '\n')
	}
	return dst
}

// Check implements httpdrain.Protocol: a 2xx takes the batch.
func (*JSON) Check(int, []byte, int) batch.Result { return batch.Result{} }

// Syslog is the logplex protocol: RFC 6587 octet-counted RFC 5424 frames.
type Syslog struct {
	Format syslogfmt.Formatter
}

// Endpoint implements httpdrain.Protocol.
func (*Syslog) Endpoint() string { return "" }

// ContentType implements httpdrain.Protocol.
func (*Syslog) ContentType() string { return "application/logplex-1" }

// Encode implements httpdrain.Protocol. Logplex-Frame-Id names the batch
// by its first entry and count, so a resent batch has the same id and a
// receiver can drop it.
func (p *Syslog) Encode(dst []byte, msgs []drain.Message, h http.Header) []byte {
	var msg []byte
	for i := range msgs {
		f := p.Format
		f.Instance = msgs[i].Instance
		m := syslogfmt.FromRecord(&msgs[i].Rec)
		msg = f.Append(msg[:0], &m)
		dst = syslogfmt.AppendFrame(dst, syslogfmt.OctetCounting, msg)
	}
	h.Set("Logplex-Msg-Count", strconv.Itoa(len(msgs)))
	if len(msgs) > 0 {
		h.Set("Logplex-Frame-Id", fmt.Sprintf("%s-%d-%d", msgs[0].Instance, msgs[0].Rec.Seq, len(msgs)))
	}
	return dst
}

// Check implements httpdrain.Protocol.
func (*Syslog) Check(int, []byte, int) batch.Result { return batch.Result{} }
