package logproto

import (
	"encoding/json"
	"fmt"
	"time"
)

// Record is one line of a reply, decoded. Type is empty for an entry.
type Record struct {
	Type string `json:"type,omitempty"`

	// Entry fields (legacy replies carry only Time, Source and Msg).
	Seq       uint64    `json:"seq,omitempty"`
	Time      time.Time `json:"time"`
	Source    string    `json:"source,omitempty"`
	Msg       string    `json:"msg,omitempty"`
	Facility  int       `json:"facility,omitempty"`
	Severity  int       `json:"severity,omitempty"`
	PID       int       `json:"pid,omitempty"`
	TS        time.Time `json:"ts"`
	SD        string    `json:"sd,omitempty"`
	Truncated bool      `json:"truncated,omitempty"`
	Partial   bool      `json:"partial,omitempty"`
	Raw       bool      `json:"raw,omitempty"`

	// Hello fields.
	Instance string `json:"instance,omitempty"`
	Boot     string `json:"boot,omitempty"`
	First    uint64 `json:"first,omitempty"`
	Next     uint64 `json:"next,omitempty"`
	Resumed  bool   `json:"resumed,omitempty"`
	Kmsg     bool   `json:"kmsg,omitempty"`

	// Gap field (Seq is the first sequence number after the gap).
	Lost uint64 `json:"lost,omitempty"`

	// Error field.
	Error string `json:"error,omitempty"`
}

// DecodeRecord decodes one reply line.
func DecodeRecord(line []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return Record{}, fmt.Errorf("decoding reply line: %w", err)
	}
	return r, nil
}

// OrigTime is the sender's timestamp if it has one, else receive time.
func (r *Record) OrigTime() time.Time {
	if !r.TS.IsZero() {
		return r.TS
	}
	return r.Time
}
