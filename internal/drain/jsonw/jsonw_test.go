package jsonw

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

// Every string comes back from encoding/json as it decodes Go strings
// (invalid UTF-8 as U+FFFD).
func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x1f\n\r\t", "\xff\xfe bad", "é€😀", "\u2028\u2029", "<a&b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := String(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		want, _ := json.Marshal(s)
		var w string
		json.Unmarshal(want, &w)
		if got != w {
			t.Fatalf("%q: got %q want %q", s, got, w)
		}
		b2, lossy := StringLossy(nil, s)
		if string(b2) != string(b) || lossy != !utf8.ValidString(s) {
			t.Fatalf("%q: StringLossy gave %s, lossy %v", s, b2, lossy)
		}
	})
}

func TestObject(t *testing.T) {
	b := []byte{'{'}
	b = Key(b, "a")
	b = Int(b, -3)
	b = Key(b, "t")
	b = Time(b, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC))
	b = Key(b, "u")
	b = Uint(b, 7)
	b = append(b, '}')
	if string(b) != `{"a":-3,"t":"2026-01-02T03:04:05.000000006Z","u":7}` {
		t.Fatalf("%s", b)
	}
}

// Every ASCII byte is written exactly as encoding/json writes it.
func TestStringASCII(t *testing.T) {
	for c := range 128 {
		s := "a" + string(rune(c)) + "b"
		want, _ := json.Marshal(s)
		if got := String(nil, s); string(got) != string(want) {
			t.Errorf("byte %#x: %s, want %s", c, got, want)
		}
	}
}

func BenchmarkString(b *testing.B) {
	s := "w1 line 0001234 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for range b.N {
		buf = String(buf[:0], s)
	}
}

// Time writes what time.RFC3339Nano writes, across the years Time
// formats itself (0-9999) and beyond them.
func FuzzTime(f *testing.F) {
	for _, t := range []time.Time{
		time.Unix(0, 0), time.Unix(-1, 0), time.Unix(-1, 999999999), time.Unix(951782400, 1), // 2000-02-29
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(1600, 3, 1, 0, 0, 0, 120, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 12, 31, 23, 59, 59, 5e8, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 1e6, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 2, 28, 12, 0, 0, 10, time.FixedZone("x", 3600)),
	} {
		f.Add(t.Unix(), int64(t.Nanosecond()))
	}
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		want := `"` + tm.UTC().Format(time.RFC3339Nano) + `"`
		if got := string(Time(nil, tm)); got != want {
			t.Fatalf("%d.%09d: %s, want %s", sec, nsec, got, want)
		}
		// A local time is written in UTC.
		if got := string(Time(nil, tm.In(time.FixedZone("x", -7*3600)))); got != want {
			t.Fatalf("%d.%09d in a zone: %s, want %s", sec, nsec, got, want)
		}
	})
}

// Every window of 8 bytes is judged as the byte loop judges it: one
// special byte at each position, among plain ones, comes out as
// encoding/json writes it.
func TestStringWords(t *testing.T) {
	for c := range 256 {
		for pos := range 16 {
			b := []byte("abcdefghijklmnop")
			b[pos] = byte(c)
			s := string(b)
			want, _ := json.Marshal(s)
			var w string
			json.Unmarshal(want, &w)
			var got string
			if err := json.Unmarshal(String(nil, s), &got); err != nil || got != w {
				t.Fatalf("byte %#x at %d: %s (%v), want %s", c, pos, String(nil, s), err, want)
			}
			if c < 128 && string(String(nil, s)) != string(want) {
				t.Fatalf("byte %#x at %d: %s, want %s", c, pos, String(nil, s), want)
			}
		}
	}
}

func BenchmarkTime(b *testing.B) {
	t := time.Now()
	buf := make([]byte, 0, 64)
	for range b.N {
		buf = Time(buf[:0], t)
	}
}

// Base64 writes a key and the exact bytes, after a comma unless the
// object just opened.
func TestBase64(t *testing.T) {
	b := Base64([]byte{'{'}, "source_b64", "c\xff")
	b = Base64(b, "x", "")
	if got, want := string(b), `{"source_b64":"Y/8=","x":""`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
