package logwrite

import (
	"fmt"
	"io"
	"time"
)

// reporter prints trouble to stderr (which reaches memlogd) at most once
// per interval for each kind of trouble, counting what it held back.
type reporter struct {
	out        io.Writer
	interval   time.Duration
	now        func() time.Time
	last       map[string]time.Time
	suppressed map[string]int
}

func newReporter(out io.Writer, interval time.Duration) *reporter {
	return &reporter{out: out, interval: interval, now: time.Now, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

// report prints the message for kind unless one was printed less than an
// interval ago.
func (r *reporter) report(kind, format string, args ...any) {
	now := r.now()
	if t, ok := r.last[kind]; ok && now.Sub(t) < r.interval {
		r.suppressed[kind]++
		return
	}
	msg := fmt.Sprintf(format, args...)
	if n := r.suppressed[kind]; n > 0 {
		msg += fmt.Sprintf(" (%d more like this in the last %v)", n, now.Sub(r.last[kind]).Round(time.Second))
	}
	fmt.Fprintln(r.out, "logwrite: "+msg)
	r.last[kind] = now
	r.suppressed[kind] = 0
}

// clear forgets kind, so that its next trouble is reported at once, and
// prints msg (if not empty) when kind had been reported.
func (r *reporter) clear(kind, format string, args ...any) {
	if _, ok := r.last[kind]; !ok {
		return
	}
	if format != "" {
		fmt.Fprintf(r.out, "logwrite: "+format+"\n", args...)
	}
	delete(r.last, kind)
	delete(r.suppressed, kind)
}
