package logproto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
)

// Legacy mode bytes, as LinuxKit's logread sends them.
const (
	LegacyDump       byte = 0
	LegacyFollow     byte = 1
	LegacyDumpFollow byte = 2
)

// Modes of an extended request.
const (
	ModeDump       = "dump"
	ModeFollow     = "follow"
	ModeDumpFollow = "dump+follow"
)

// Limits of an extended request.
const (
	MaxRequestLen = 4096
	MaxPatterns   = 32
)

// Cursor names a position in one memlogd instance's sequence: the last
// entry a reader has processed.
type Cursor struct {
	Instance string `json:"instance"`
	Seq      uint64 `json:"seq"`
}

// Request is what a reader asks for. Legacy requests are one byte; an
// extended request is one line of JSON starting with '{'.
type Request struct {
	// Legacy is set for one-byte requests; the reply is then exactly
	// LinuxKit's format.
	Legacy bool `json:"-"`
	// Mode is dump, follow or dump+follow.
	Mode string `json:"mode"`
	// After continues after this cursor. If the cursor's instance is not
	// the running one, the reply starts at the oldest entry held.
	After *Cursor `json:"after,omitempty"`
	// Tail starts with the last Tail (matching) entries.
	Tail int `json:"tail,omitempty"`
	// Sources keeps only entries whose source matches one of these globs
	// (path.Match syntax); empty keeps all.
	Sources []string `json:"sources,omitempty"`
	// Exclude drops entries whose source matches one of these globs.
	Exclude []string `json:"exclude,omitempty"`
	// Severity keeps entries at least this severe (0 emerg .. 7 debug);
	// nil keeps all.
	Severity *int `json:"severity,omitempty"`
}

// Follow reports whether the reply continues with new entries.
func (r *Request) Follow() bool { return r.Mode != ModeDump }

// Dump reports whether the reply starts with entries already held.
func (r *Request) Dump() bool { return r.Mode != ModeFollow }

// Marshal returns the request as it goes on the wire.
func (r *Request) Marshal() ([]byte, error) {
	if r.Legacy {
		switch r.Mode {
		case ModeDump:
			return []byte{LegacyDump}, nil
		case ModeFollow:
			return []byte{LegacyFollow}, nil
		case ModeDumpFollow:
			return []byte{LegacyDumpFollow}, nil
		}
		return nil, fmt.Errorf("legacy request: unknown mode %q", r.Mode)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return append(b, '\n'), nil
}

// ErrBadRequest wraps every reason a request is refused.
var ErrBadRequest = errors.New("bad request")

func badf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, a...)...)
}

// ReadRequest reads one request. It reads nothing past the request, so a
// client may send it and start reading at once.
func ReadRequest(br *bufio.Reader) (Request, error) {
	b, err := br.ReadByte()
	if err != nil {
		return Request{}, fmt.Errorf("reading request: %w", err)
	}
	switch b {
	case LegacyDump:
		return Request{Legacy: true, Mode: ModeDump}, nil
	case LegacyFollow:
		return Request{Legacy: true, Mode: ModeFollow}, nil
	case LegacyDumpFollow:
		return Request{Legacy: true, Mode: ModeDumpFollow}, nil
	case '{':
	default:
		return Request{}, badf("first byte 0x%02x is neither a mode byte (0, 1, 2) nor '{'", b)
	}
	line := []byte{'{'}
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxRequestLen {
			return Request{}, badf("longer than %d bytes", MaxRequestLen)
		}
		if err == nil {
			break
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return Request{}, badf("no newline at the end of the request")
		}
		return Request{}, fmt.Errorf("reading request: %w", err)
	}
	return ParseRequest(line)
}

// ParseRequest parses and validates an extended request line.
func ParseRequest(line []byte) (Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, badf("%v", err)
	}
	if rest := bytes.TrimSpace(line[dec.InputOffset():]); len(rest) > 0 {
		return Request{}, badf("trailing data after the JSON object")
	}
	if err := r.Validate(); err != nil {
		return Request{}, err
	}
	// An empty list filters nothing, as a missing one: one form for both,
	// so that a request read, written and read again is the same.
	if len(r.Sources) == 0 {
		r.Sources = nil
	}
	if len(r.Exclude) == 0 {
		r.Exclude = nil
	}
	return r, nil
}

// Validate checks an extended request.
func (r *Request) Validate() error {
	switch r.Mode {
	case ModeDump, ModeFollow, ModeDumpFollow:
	case "":
		return badf(`"mode" is required: %q, %q or %q`, ModeDump, ModeFollow, ModeDumpFollow)
	default:
		return badf("mode %q: want %q, %q or %q", r.Mode, ModeDump, ModeFollow, ModeDumpFollow)
	}
	if r.Tail < 0 {
		return badf("tail %d is negative", r.Tail)
	}
	if r.Tail > 0 && r.After != nil {
		return badf(`"tail" and "after" exclude each other`)
	}
	if (r.Tail > 0 || r.After != nil) && r.Mode == ModeFollow {
		return badf(`"tail" and "after" need mode %q or %q`, ModeDump, ModeDumpFollow)
	}
	if r.Severity != nil && (*r.Severity < 0 || *r.Severity > 7) {
		return badf("severity %d is not in 0..7", *r.Severity)
	}
	if len(r.Sources)+len(r.Exclude) > MaxPatterns {
		return badf("more than %d source patterns", MaxPatterns)
	}
	for _, p := range append(append([]string(nil), r.Sources...), r.Exclude...) {
		if _, err := path.Match(p, ""); err != nil {
			return badf("source pattern %q: %v", p, err)
		}
	}
	return nil
}

// Match reports whether an entry with this source and severity passes the
// request's filters.
func (r *Request) Match(source []byte, severity uint8) bool {
	if r.Severity != nil && int(severity) > *r.Severity {
		return false
	}
	if len(r.Sources) == 0 && len(r.Exclude) == 0 {
		return true
	}
	s := string(source)
	for _, p := range r.Exclude {
		if ok, _ := path.Match(p, s); ok {
			return false
		}
	}
	if len(r.Sources) == 0 {
		return true
	}
	for _, p := range r.Sources {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// Filtered reports whether Match can ever return false.
func (r *Request) Filtered() bool {
	return r.Severity != nil || len(r.Sources) > 0 || len(r.Exclude) > 0
}
