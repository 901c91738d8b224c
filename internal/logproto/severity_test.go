package logproto

import "testing"

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]int{
		"0": 0, "7": 7, "emerg": 0, "panic": 0, "ALERT": 1, "crit": 2, "err": 3, "error": 3,
		"Warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7,
	} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "8", "-1", "verbose", "inf", "07x"} {
		if got, err := ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q) = %d, want an error", in, got)
		}
	}
}
