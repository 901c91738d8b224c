package memlogd

import (
	"bytes"
	"time"

	"github.com/lklog/lklog/internal/logproto"
)

// consoleFormat writes console lines exactly as logproto.TextFormatter's
// AppendBytes does. Entries read from one stream in one read share their
// receive time and source, so it keeps the last time and source it
// formatted: the console, which echoes every entry, formats them once
// per read, not once per line.
type consoleFormat struct {
	text   logproto.TextFormatter
	ns     int64
	source []byte // the last source
	// head is text.AppendTime of ns, ';', logproto.AppendEscapedBytes of
	// source and ';'.
	head []byte
}

// append appends one line, time;source;msg and a newline, escaped. A
// plain message (ring.FlagPlain) needs no escaping: it is copied.
func (f *consoleFormat) append(dst []byte, ns int64, source, msg []byte, plain bool) []byte {
	if f.head == nil || ns != f.ns || !bytes.Equal(source, f.source) {
		f.source = append(f.source[:0], source...)
		f.head = f.text.AppendTime(f.head[:0], time.Unix(0, ns))
		f.head = append(f.head, ';')
		f.head = logproto.AppendEscapedBytes(f.head, source, true)
		f.head = append(f.head, ';')
		f.ns = ns
	}
	dst = append(dst, f.head...)
	if plain {
		dst = append(dst, msg...)
	} else {
		dst = logproto.AppendEscapedBytes(dst, msg, false)
	}
	return append(dst, '\n')
}
