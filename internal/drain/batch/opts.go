package batch

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Opts reads a destination's options (a drain URL's query, or its YAML
// options) and reports the ones nobody asked for.
type Opts struct {
	v    url.Values
	used map[string]bool
	err  error
}

// NewOpts returns a reader of v.
func NewOpts(v url.Values) *Opts { return &Opts{v: v, used: map[string]bool{}} }

func (o *Opts) get(k string) (string, bool) {
	o.used[k] = true
	vs, ok := o.v[k]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

func (o *Opts) fail(k, v, want string) {
	if o.err == nil {
		o.err = fmt.Errorf("option %s=%q: want %s", k, v, want)
	}
}

// Str returns option k, or def.
func (o *Opts) Str(k, def string) string {
	if v, ok := o.get(k); ok {
		return v
	}
	return def
}

// OneOf returns option k (def if unset), which must be one of choices.
func (o *Opts) OneOf(k, def string, choices ...string) string {
	v := o.Str(k, def)
	for _, c := range choices {
		if v == c {
			return v
		}
	}
	o.fail(k, v, "one of "+strings.Join(choices, ", "))
	return def
}

// Int returns option k in [lo, hi], or def.
func (o *Opts) Int(k string, def, lo, hi int) int {
	v, ok := o.get(k)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		o.fail(k, v, fmt.Sprintf("a number from %d to %d", lo, hi))
		return def
	}
	return n
}

// Bool returns option k, or def.
func (o *Opts) Bool(k string, def bool) bool {
	v, ok := o.get(k)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		o.fail(k, v, "true or false")
		return def
	}
	return b
}

// Duration returns option k (positive, at most max), or def.
func (o *Opts) Duration(k string, def, max time.Duration) time.Duration {
	v, ok := o.get(k)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > max {
		o.fail(k, v, "a duration such as 500ms, at most "+max.String())
		return def
	}
	return d
}

// List returns option k split at commas, or def.
func (o *Opts) List(k string, def []string) []string {
	v, ok := o.get(k)
	if !ok {
		return def
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Prefixed returns the options whose names start with prefix (such as
// "header."), without it.
func (o *Opts) Prefixed(prefix string) url.Values {
	out := url.Values{}
	for k, vs := range o.v {
		if name, ok := strings.CutPrefix(k, prefix); ok && name != "" {
			o.used[k] = true
			out[name] = vs
		}
	}
	return out
}

// Err returns the first bad value, or names the options nobody used.
func (o *Opts) Err() error {
	if o.err != nil {
		return o.err
	}
	var unknown []string
	for k := range o.v {
		if !o.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("unknown option(s) %s", strings.Join(unknown, ", "))
	}
	return nil
}

// Read fills the batching options from o: batch (entries), batch_bytes,
// linger, parallel, max_wait (longest retry wait).
func (opt *Options) Read(o *Opts, parallel int) {
	opt.MaxCount = o.Int("batch", 1000, 1, 100000)
	opt.MaxBytes = o.Int("batch_bytes", 1<<20, 1024, 64<<20)
	opt.Linger = o.Duration("linger", 500*time.Millisecond, time.Minute)
	opt.Parallel = o.Int("parallel", parallel, 1, 64)
	opt.MaxWait = o.Duration("max_wait", 30*time.Second, time.Hour)
}
