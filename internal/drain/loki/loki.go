// Package loki is the Loki push destination: JSON bodies (gzip by the
// drain's option), one stream per distinct label set (labels from host,
// source and severity, configurable), entries in order per stream.
package loki

import (
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/drain/jsonw"
	"github.com/lklog/lklog/internal/logproto"
)

// Labels a stream can be keyed by.
var Labels = []string{"host", "source", "severity", "facility", "instance"}

// Push is the push protocol.
type Push struct {
	Labels []string // of Labels
	Meta   httpdrain.Meta
}

// CheckLabels reports a label Push does not know.
func CheckLabels(labels []string) error {
	if len(labels) == 0 {
		return fmt.Errorf("labels: name at least one of %q", Labels)
	}
	for _, l := range labels {
		ok := false
		for _, k := range Labels {
			ok = ok || l == k
		}
		if !ok {
			return fmt.Errorf("label %q: want some of %q", l, Labels)
		}
	}
	return nil
}

// Endpoint implements httpdrain.Protocol.
func (*Push) Endpoint() string { return "/loki/api/v1/push" }

// ContentType implements httpdrain.Protocol.
func (*Push) ContentType() string { return "application/json" }

func (p *Push) label(m *drain.Message, l string) string {
	switch l {
	case "host":
		return p.Meta.Host
	case "source":
		return m.Rec.Source
	case "severity":
		if s := m.Rec.Severity; s >= 0 && s < len(logproto.SeverityNames) {
			return logproto.SeverityNames[s]
		}
		return strconv.Itoa(m.Rec.Severity)
	case "facility":
		return strconv.Itoa(m.Rec.Facility)
	case "instance":
		return m.Instance
	}
	return ""
}

// sameLabels reports whether a and b have the same value of every label.
func (p *Push) sameLabels(a, b *drain.Message) bool {
	for _, l := range p.Labels {
		switch l {
		case "source":
			if a.Rec.Source != b.Rec.Source {
				return false
			}
		case "severity":
			if a.Rec.Severity != b.Rec.Severity {
				return false
			}
		case "facility":
			if a.Rec.Facility != b.Rec.Facility {
				return false
			}
		case "instance":
			if a.Instance != b.Instance {
				return false
			}
		}
	}
	return true
}

// Encode implements httpdrain.Protocol. Streams appear in the order of
// their first entry; each stream's entries keep the batch's order (which
// is memlogd's, so time order).
func (p *Push) Encode(dst []byte, msgs []drain.Message, _ http.Header) []byte {
	type stream struct {
		key  []byte
		msgs []int
	}
	var streams []*stream
	byKey := map[string]*stream{}
	var key []byte
	var last *stream
	for i := range msgs {
		// Runs of entries with the same labels (a source writing
		// lines) skip building and looking up the key.
		if last != nil && p.sameLabels(&msgs[i-1], &msgs[i]) {
			last.msgs = append(last.msgs, i)
			continue
		}
		key = key[:0]
		key = append(key, '{')
		for _, l := range p.Labels {
			key = jsonw.Key(key, l)
			v := p.label(&msgs[i], l)
			key = jsonw.String(key, v)
			if !utf8.ValidString(v) {
				// Label values are UTF-8: the exact bytes in a
				// label of their own keep such sources apart.
				key = jsonw.Base64(key, l+"_b64", v)
			}
		}
		key = append(key, '}')
		s := byKey[string(key)]
		if s == nil {
			s = &stream{key: append([]byte(nil), key...)}
			byKey[string(key)] = s
			streams = append(streams, s)
		}
		s.msgs = append(s.msgs, i)
		last = s
	}
	dst = append(dst, `{"streams":[`...)
	for si, s := range streams {
		if si > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"stream":`...)
		dst = append(dst, s.key...)
		dst = append(dst, `,"values":[`...)
		for k, i := range s.msgs {
			if k > 0 {
				dst = append(dst, ',')
			}
			m := &msgs[i]
			dst = append(dst, `["`...)
			dst = strconv.AppendInt(dst, m.Rec.Time.UnixNano(), 10)
			dst = append(dst, `",`...)
			dst = jsonw.String(dst, m.Rec.Msg)
			dst = append(dst, ']')
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

// Check implements httpdrain.Protocol: a 2xx takes the batch.
func (*Push) Check(int, []byte, int) batch.Result { return batch.Result{} }
