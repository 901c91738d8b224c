package logwrite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/logfile"
	"github.com/lklog/lklog/internal/logproto"
)

// TestSourcesKeptApart: sources that differ only in bytes that are not
// valid UTF-8 (which JSON alone turns into the same U+FFFD) go to files of
// their own, named after their exact bytes, and their lines hold those
// bytes escaped.
func TestSourcesKeptApart(t *testing.T) {
	e := newEnv(t, 10000)
	names := []string{"c\xff", "c\xfe", "c\xef\xbf\xbd", "c\xed\xa0\x80"}
	lw := e.logwrite()
	for _, n := range names {
		f := e.source(n)
		f.WriteString("from " + n + " \x1b[2J\n")
		f.Close()
	}
	waitFor(t, 30*time.Second, "a file per source", func() bool {
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(e.logDir, logfile.FileName(n))); err != nil {
				return false
			}
		}
		return true
	})
	lw.stop(t)
	files := map[string]bool{}
	for _, n := range names {
		p := filepath.Join(e.logDir, logfile.FileName(n))
		files[p] = true
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		src := string(logproto.AppendEscaped(nil, n, false))
		want := " " + src + " from " + src + ` \x1b[2J` + "\n"
		if strings.Count(string(b), "\n") != 1 || !strings.HasSuffix(string(b), want) {
			t.Errorf("%s holds %q, want a line ending in %q", p, b, want)
		}
	}
	if len(files) != len(names) {
		t.Errorf("%d files for %d sources", len(files), len(names))
	}
}
