package logproto

import (
	"fmt"
	"strconv"
	"strings"
)

// SeverityNames are syslog's severity keywords, indexed by severity
// (0 emerg ... 7 debug), as the `severity` fields and flags name them.
var SeverityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// ParseSeverity takes a severity as 0-7 or a keyword of SeverityNames, in
// any case, or one of syslog's aliases panic, error and warn.
func ParseSeverity(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 7 {
			return 0, fmt.Errorf("severity %d is not in 0-7", n)
		}
		return n, nil
	}
	switch l := strings.ToLower(s); l {
	case "panic":
		return 0, nil
	case "error":
		return 3, nil
	case "warn":
		return 4, nil
	default:
		for i, name := range SeverityNames {
			if l == name {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("severity %q: want 0-7 or one of %s", s, strings.Join(SeverityNames[:], ", "))
}
