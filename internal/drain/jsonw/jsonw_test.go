package jsonw

import (
	"encoding/json"
	"testing"
	"time"
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
