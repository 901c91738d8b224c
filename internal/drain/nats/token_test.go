package nats

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Every source makes one token a subject can hold: non-empty, valid UTF-8,
// no '.', '*', '>', whitespace or control byte; valid UTF-8 letters stay.
func FuzzToken(f *testing.F) {
	for _, s := range []string{"", "a.b", "*", ">", "x y", "c\xff", "\x1b[31m", "é", "\x7f", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := Token(s)
		if tok == "" || !utf8.ValidString(tok) || strings.ContainsAny(tok, ".*>") || CheckSubject("logs."+tok) != nil {
			t.Fatalf("%q -> %q", s, tok)
		}
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] == 0x7f {
				t.Fatalf("%q -> %q", s, tok)
			}
		}
		if utf8.ValidString(s) && utf8.RuneCountInString(tok) != max(1, utf8.RuneCountInString(s)) {
			t.Fatalf("%q -> %q changed length", s, tok)
		}
	})
}

func TestTokenInvalidUTF8(t *testing.T) {
	for in, want := range map[string]string{"c\xff": "c_", "c\xfe\xfd": "c__", "é.x": "é_x", "": "_", "a\x00b": "a_b"} {
		if got := Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckSubjectControl(t *testing.T) {
	for _, bad := range []string{"logs.a\x00b", "logs.\x1b", "logs.\xff", "logs.a\x7f"} {
		if CheckSubject(bad) == nil {
			t.Errorf("CheckSubject(%q) took it", bad)
		}
	}
}
