package elastic

import (
	"strings"
	"testing"
)

// Index names Elasticsearch refuses are refused when the drain is made,
// instead of every batch being rejected by the server.
func TestCheckIndexRules(t *testing.T) {
	for _, bad := range []string{"+logs", "-logs", "_logs", ".", "..", strings.Repeat("a", 256), "lo\x00gs", "lo\ngs", "lo\tgs", "a\xff", "a b", "a#b", "A"} {
		if CheckIndex(bad) == nil {
			t.Errorf("CheckIndex(%q) took it", bad)
		}
	}
	for _, good := range []string{"lklog-2026.01.02", ".hidden-logs", strings.Repeat("a", 255), "journal_é"} {
		if err := CheckIndex(good); err != nil {
			t.Errorf("CheckIndex(%q): %v", good, err)
		}
	}
}
