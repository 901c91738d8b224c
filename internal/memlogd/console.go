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
	stamp  []byte // text.AppendTime of ns, then ';'
	source []byte // the last source
	src    []byte // logproto.AppendEscapedBytes of source, then ';'
}

// append appends one line, time;source;msg and a newline, escaped. A
// plain message (ring.FlagPlain) needs no escaping: it is copied.
func (f *consoleFormat) append(dst []byte, ns int64, source, msg []byte, plain bool) []byte {
	if f.stamp == nil || ns != f.ns {
		f.stamp = f.text.AppendTime(f.stamp[:0], time.Unix(0, ns))
		f.stamp = append(f.stamp, ';')
		f.ns = ns
	}
	if f.src == nil || !bytes.Equal(source, f.source) {
		f.source = append(f.source[:0], source...)
		f.src = logproto.AppendEscapedBytes(f.src[:0], source, true)
		f.src = append(f.src, ';')
	}
	dst = append(dst, f.stamp...)
	dst = append(dst, f.src...)
	if plain {
		dst = append(dst, msg...)
	} else {
		dst = logproto.AppendEscapedBytes(dst, msg, false)
	}
	return append(dst, '\n')
}
