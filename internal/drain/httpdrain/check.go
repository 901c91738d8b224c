package httpdrain

import (
	"fmt"
	"net/http"
	"os"
	"strings"
)

// CheckHeaders refuses extra headers that are not RFC 9110 fields: a name
// that is not a token, or a value holding CR, LF, NUL or another control
// byte but tab. Go's client would refuse such a request only when
// sending it, and a value with CRLF is header injection.
func CheckHeaders(h http.Header) error {
	for k, vs := range h {
		if !isToken(k) {
			return fmt.Errorf("header name %q: want letters, digits and !#$%%&'*+-.^_`|~", k)
		}
		for _, v := range vs {
			if i := ctl(v); i >= 0 {
				return fmt.Errorf("header %s: value holds the control byte %#x (CR and LF would start another header)", k, v[i])
			}
		}
	}
	return nil
}

// CheckToken refuses a bearer token (the token file's content, trimmed)
// that a header value cannot carry.
func CheckToken(file string, tok []byte) error {
	t := strings.TrimSpace(string(tok))
	if i := ctl(t); i >= 0 {
		return fmt.Errorf("token file %s: the token holds the control byte %#x (a line break inside it?)", file, t[i])
	}
	return nil
}

// ctl returns the index of the first control byte in v other than tab,
// or -1.
func ctl(v string) int {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return i
		}
	}
	return -1
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// checkTokenFile checks the token file at start when it can be read (it
// is read again at each request, so it may appear later).
func checkTokenFile(file string) error {
	if file == "" {
		return nil
	}
	tok, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	return CheckToken(file, tok)
}
