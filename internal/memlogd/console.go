package memlogd

import (
	"time"

	"github.com/lklog/lklog/internal/logproto"
)

// consoleFormat writes console lines exactly as logproto.TextFormatter's
// AppendBytes does. Entries read from one stream in one read share their
// receive time, so it keeps the last time it formatted: the console,
// which echoes every entry, formats a time per read, not per line.
type consoleFormat struct {
	text  logproto.TextFormatter
	ns    int64
	stamp []byte // text.AppendTime of ns
}

// append appends one line, time;source;msg and a newline, escaped.
func (f *consoleFormat) append(dst []byte, ns int64, source, msg []byte) []byte {
	if f.stamp == nil || ns != f.ns {
		f.stamp = f.text.AppendTime(f.stamp[:0], time.Unix(0, ns))
		f.ns = ns
	}
	dst = append(dst, f.stamp...)
	dst = append(dst, ';')
	dst = logproto.AppendEscapedBytes(dst, source, true)
	dst = append(dst, ';')
	dst = logproto.AppendEscapedBytes(dst, msg, false)
	return append(dst, '\n')
}
