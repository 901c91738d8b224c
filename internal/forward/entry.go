package forward

import (
	"time"
	"unicode/utf8"

	"github.com/lklog/lklog/internal/logproto"
)

// decoder decodes memlogd's entry lines. Lines in the exact shape memlogd
// writes take a fast path; anything else (or anything the fast path is
// unsure of) goes through logproto.DecodeRecord, so the result is the same
// either way.
type decoder struct {
	lastTime []byte
	lastVal  time.Time
}

func (d *decoder) decode(line []byte) (logproto.Record, error) {
	if r, ok := d.fast(line); ok {
		return r, nil
	}
	return logproto.DecodeRecord(line)
}

// fast parses a flat JSON object of the keys an entry has: numbers,
// strings and true. It reports false for anything else.
func (d *decoder) fast(b []byte) (logproto.Record, bool) {
	var r logproto.Record
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return r, false
	}
	i := 1
	for {
		if i >= len(b) || b[i] != '"' {
			return r, false
		}
		// Keys are plain ASCII.
		j := i + 1
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' || b[j] >= utf8.RuneSelf {
				return r, false
			}
			j++
		}
		if j+1 >= len(b) || b[j+1] != ':' {
			return r, false
		}
		key := string(b[i+1 : j])
		i = j + 2
		var ok bool
		switch key {
		case "seq":
			var v int64
			v, i, ok = number(b, i)
			r.Seq = uint64(v)
			ok = ok && v >= 0
		case "facility":
			var v int64
			v, i, ok = number(b, i)
			r.Facility = int(v)
		case "severity":
			var v int64
			v, i, ok = number(b, i)
			r.Severity = int(v)
		case "pid":
			var v int64
			v, i, ok = number(b, i)
			r.PID = int(v)
		case "source":
			r.Source, i, ok = str(b, i)
		case "msg":
			r.Msg, i, ok = str(b, i)
		case "sd":
			r.SD, i, ok = str(b, i)
		case "time", "ts":
			var raw []byte
			raw, i, ok = rawStr(b, i)
			if !ok {
				return r, false
			}
			t, tok := d.parseTime(raw)
			if !tok {
				return r, false
			}
			if key == "time" {
				r.Time = t
			} else {
				r.TS = t
			}
		case "truncated", "partial", "raw":
			if i+4 > len(b) || string(b[i:i+4]) != "true" {
				return r, false
			}
			i += 4
			ok = true
			switch key {
			case "truncated":
				r.Truncated = true
			case "partial":
				r.Partial = true
			default:
				r.Raw = true
			}
		default:
			return r, false
		}
		if !ok || i >= len(b) {
			return r, false
		}
		if b[i] == '}' {
			return r, i == len(b)-1
		}
		if b[i] != ',' {
			return r, false
		}
		i++
	}
}

func (d *decoder) parseTime(raw []byte) (time.Time, bool) {
	if d.lastTime != nil && string(raw) == string(d.lastTime) {
		return d.lastVal, true
	}
	// The escapes JSON allows never occur in a time; plain ASCII only.
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return time.Time{}, false
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(raw))
	if err != nil {
		return time.Time{}, false
	}
	d.lastTime = append(d.lastTime[:0], raw...)
	d.lastVal = t
	return t, true
}

// number reads a JSON integer (at most 18 digits) at b[i:].
func number(b []byte, i int) (int64, int, bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var v int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		v = v*10 + int64(b[i]-'0')
		i++
	}
	n := i - start
	if n == 0 || n > 18 || n > 1 && b[start] == '0' {
		return 0, i, false
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// rawStr returns the bytes of the JSON string at b[i:] (without quotes,
// escapes left as they are) and the index after it.
func rawStr(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	j := i + 1
	for j < len(b) {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\':
			j += 2
		case c < 0x20:
			return nil, j, false
		default:
			j++
		}
	}
	return nil, j, false
}

// str decodes the JSON string at b[i:]. It gives up (false) on what
// encoding/json would change: invalid UTF-8 and surrogate escapes.
func str(b []byte, i int) (string, int, bool) {
	raw, next, ok := rawStr(b, i)
	if !ok {
		return "", next, false
	}
	plain := true
	ascii := true
	for _, c := range raw {
		if c == '\\' {
			plain = false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(raw) {
		return "", next, false
	}
	if plain {
		return string(raw), next, true
	}
	out := make([]byte, 0, len(raw))
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		k++
		if k >= len(raw) {
			return "", next, false
		}
		switch raw[k] {
		case '"', '\\', '/':
			out = append(out, raw[k])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if k+4 >= len(raw) {
				return "", next, false
			}
			var r rune
			for _, h := range raw[k+1 : k+5] {
				r <<= 4
				switch {
				case h >= '0' && h <= '9':
					r |= rune(h - '0')
				case h >= 'a' && h <= 'f':
					r |= rune(h - 'a' + 10)
				case h >= 'A' && h <= 'F':
					r |= rune(h - 'A' + 10)
				default:
					return "", next, false
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				return "", next, false
			}
			out = utf8.AppendRune(out, r)
			k += 4
		default:
			return "", next, false
		}
	}
	return string(out), next, true
}
