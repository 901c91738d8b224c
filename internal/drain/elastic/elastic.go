// Package elastic is the Elasticsearch _bulk destination: `create`
// actions with a document id made of memlogd's instance and sequence
// number (so a resend is a no-op where the server honours ids: it answers
// 409, which counts as taken), each item's result checked, and only the
// failed items retried.
package elastic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/drain"
	"github.com/lklog/lklog/internal/drain/batch"
	"github.com/lklog/lklog/internal/drain/httpdrain"
	"github.com/lklog/lklog/internal/drain/jsonw"
)

// DefaultIndex is used when the URL names none.
const DefaultIndex = "lklog-%Y.%m.%d"

// Bulk is the _bulk protocol.
type Bulk struct {
	// Index may hold %Y, %m, %d and %H, taken from each entry's time
	// (UTC).
	Index string
	Meta  httpdrain.Meta
}

// CheckIndex reports an index name Elasticsearch would refuse: empty,
// upper case, a space, control byte or one of \"*<|,>/?#:, a leading
// _, - or +, "." or "..", over 255 bytes, or not valid UTF-8.
func CheckIndex(index string) error {
	if index == "" || index != strings.ToLower(index) || strings.ContainsAny(index, ` "*\<|,>/?#:`) || strings.IndexByte("_-+", index[0]) >= 0 ||
		index == "." || index == ".." || len(index) > 255 || !utf8.ValidString(index) || strings.ContainsFunc(index, unicode.IsControl) {
		return fmt.Errorf("index %q: want lower case, at most 255 bytes, no spaces, control bytes or \"*\\<|,>/?#:, not starting with _, - or +, and not \".\" or \"..\" (Elasticsearch refuses it)", index)
	}
	return nil
}

// Endpoint implements httpdrain.Protocol.
func (*Bulk) Endpoint() string { return "/_bulk" }

// ContentType implements httpdrain.Protocol.
func (*Bulk) ContentType() string { return "application/x-ndjson" }

// ExpandIndex replaces %Y, %m, %d, %H and %% in pattern by t's (UTC).
func ExpandIndex(dst []byte, pattern string, t time.Time) []byte {
	t = t.UTC()
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '%' || i+1 == len(pattern) {
			dst = append(dst, c)
			continue
		}
		i++
		switch pattern[i] {
		case 'Y':
			dst = strconv.AppendInt(dst, int64(t.Year()), 10)
		case 'm':
			dst = two(dst, int(t.Month()))
		case 'd':
			dst = two(dst, t.Day())
		case 'H':
			dst = two(dst, t.Hour())
		default:
			dst = append(dst, '%', pattern[i])
		}
	}
	return dst
}

func two(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }

// ID is an entry's document id: instance and sequence number (entries
// logforward makes itself, with no sequence number, get none).
func ID(m *drain.Message) string {
	if m.Rec.Seq == 0 || m.Instance == "" {
		return ""
	}
	return m.Instance + "-" + strconv.FormatUint(m.Rec.Seq, 10)
}

// Encode implements httpdrain.Protocol. The index name is expanded once
// per hour of entry time (the finest its pattern can vary), the document
// id written in place: nothing is allocated per entry.
func (p *Bulk) Encode(dst []byte, msgs []drain.Message, _ http.Header) []byte {
	var (
		idx    []byte // the action's start, with the quoted index
		idxFor int64  = -1
	)
	f := httpdrain.NewFields(&p.Meta, "@timestamp", "message")
	for i := range msgs {
		m := &msgs[i]
		if h := hourOf(m.Rec.Time); h != idxFor || idxFor < 0 {
			name := ExpandIndex(nil, p.Index, m.Rec.Time)
			idx = append(idx[:0], `{"create":{"_index":`...)
			idx = jsonw.String(idx, string(name))
			idxFor = h
		}
		dst = append(dst, idx...)
		if m.Rec.Seq != 0 && m.Instance != "" {
			// ID(m), quoted: the digits and '-' need no escaping.
			dst = append(dst, `,"_id":`...)
			dst = append(dst, f.Instance(m.Instance)...)
			dst = append(dst[:len(dst)-1], '-')
			dst = strconv.AppendUint(dst, m.Rec.Seq, 10)
			dst = append(dst, '"')
		}
		dst = append(dst, "}}\n{"...)
		dst = f.Append(dst, m)
		dst = append(dst, '}', '\n')
	}
	return dst
}

// hourOf is t's hour since the epoch (floor), the unit the index varies
// by; times before the epoch give negative hours, which floor division
// keeps distinct.
func hourOf(t time.Time) int64 {
	s := t.Unix()
	h := s / 3600
	if s%3600 < 0 {
		h--
	}
	return h
}

type bulkReply struct {
	Errors bool `json:"errors"`
	Items  []map[string]struct {
		Status int             `json:"status"`
		Error  json.RawMessage `json:"error"`
	} `json:"items"`
}

// Check implements httpdrain.Protocol: 2xx and 409 (already there) items
// are taken, 429 and 5xx items are retried, other items rejected.
func (*Bulk) Check(_ int, body []byte, n int) batch.Result {
	// Most replies say "errors":false before the items: that is
	// enough, without decoding an item per entry.
	head := body[:min(len(body), 256)]
	if i := bytes.Index(head, []byte(`"errors":false`)); i >= 0 && !bytes.Contains(head[:i], []byte(`"items"`)) {
		return batch.Result{}
	}
	var r bulkReply
	if err := json.Unmarshal(body, &r); err != nil {
		// A server that does not answer as Elasticsearch does (or
		// VictoriaLogs with an empty reply): a 2xx takes the batch.
		return batch.Result{}
	}
	if !r.Errors {
		return batch.Result{}
	}
	if len(r.Items) != n {
		return batch.Result{Err: fmt.Errorf("_bulk reply has %d items for %d actions and errors", len(r.Items), n)}
	}
	var res batch.Result
	var reasons []string
	for i, it := range r.Items {
		if len(it) != 1 {
			return batch.Result{Err: fmt.Errorf("_bulk reply item %d has %d actions", i, len(it))}
		}
		for _, a := range it {
			switch s := a.Status; {
			case s >= 200 && s < 300, s == 409:
			case s == 429 || s >= 500:
				res.Retry = append(res.Retry, i)
				if len(reasons) < 3 {
					reasons = append(reasons, fmt.Sprintf("item %d: %d %s", i, s, a.Error))
				}
			default:
				res.Rejected++
				if len(reasons) < 3 {
					reasons = append(reasons, fmt.Sprintf("item %d: %d %s", i, s, a.Error))
				}
			}
		}
	}
	res.Reason = strings.Join(reasons, "; ")
	return res
}
