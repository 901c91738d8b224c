package logfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestNameKeepsLinuxKitNames(t *testing.T) {
	for _, s := range []string{"fill-the-logs.out", "kmsg", "onboot.000-dhcpcd", "onboot.000-dhcpcd.out", "sshd", "getty.out", "a_b+c@d=e,f"} {
		if got := Name(s); got != s {
			t.Errorf("Name(%q) = %q, want it unchanged", s, got)
		}
	}
	if got := FileName("kmsg"); got != "kmsg.log" {
		t.Errorf("FileName(kmsg) = %q", got)
	}
}

func TestNameHostile(t *testing.T) {
	long := strings.Repeat("x", 300)
	cases := map[string]string{
		"":                 "%empty",
		".":                "%2E",
		"..":               "%2E.",
		"../../etc/passwd": "%2E.%2F..%2Fetc%2Fpasswd",
		"a/b":              "a%2Fb",
		"tab\there":        "tab%09here",
		"nl\n":             "nl%0A",
		"100%":             "100%25",
		"~":                "%7E",
		"space here":       "space%20here",
		"é":                "%C3%A9",
		"\xff":             "%FF",
		".hidden":          "%2Ehidden",
		"x.log":            "x.log",
	}
	for src, want := range cases {
		if got := Name(src); got != want {
			t.Errorf("Name(%q) = %q, want %q", src, got, want)
		}
	}
	got := Name(long)
	if len(got) > MaxNameLen || !strings.Contains(got, "~") {
		t.Errorf("Name(300 x) = %q (%d bytes)", got, len(got))
	}
	if Name(long) != got {
		t.Error("Name is not stable")
	}
	if Name(long+"y") == got {
		t.Error("two long names share a file")
	}
	// A cut must not split an escape.
	esc := Name(strings.Repeat("/", 150))
	if i := strings.IndexByte(esc, '~'); i < 0 || (i%3) != 0 {
		t.Errorf("escape split by the cut: %q", esc)
	}
}

func TestNameSafeAndDistinct(t *testing.T) {
	seen := map[string]string{}
	var srcs []string
	for c := 0; c < 256; c++ {
		srcs = append(srcs, string([]byte{byte(c)}), "a"+string([]byte{byte(c)}), string([]byte{byte(c)})+".log.0")
	}
	srcs = append(srcs, "", "%empty", "%2E", "x.log", "x", "x.log.0", "x.log.0.gz", strings.Repeat("%", 200), strings.Repeat("a", 1000))
	for _, s := range srcs {
		n := FileName(s)
		if prev, ok := seen[n]; ok && prev != s {
			t.Fatalf("%q and %q both map to %q", prev, s, n)
		}
		seen[n] = s
		if len(n)+len(".9999.gz")+25 > 255 {
			t.Errorf("%q: name %d bytes too long", s, len(n))
		}
		if strings.ContainsAny(n, "/\x00") || n[0] == '.' {
			t.Errorf("%q: unsafe name %q", s, n)
		}
		for i := 0; i < len(n); i++ {
			if n[i] < 0x21 || n[i] > 0x7e {
				t.Errorf("%q: byte %#x in name %q", s, n[i], n)
			}
		}
		if _, rot := IsRotated(n); rot {
			t.Errorf("%q: active name %q looks rotated", s, n)
		}
	}
}

func FuzzName(f *testing.F) {
	f.Add("a/../b")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		n := FileName(s)
		if filepath.Base(n) != n || n == "." || n == ".." || len(n) > MaxNameLen+len(Suffix) || strings.HasPrefix(n, ".") {
			t.Fatalf("%q -> %q", s, n)
		}
	})
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(p, GzSuffix) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		b, err = io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

func TestRotateNaming(t *testing.T) {
	dir := t.TempDir()
	for i := 1; i <= 5; i++ {
		writeFile(t, filepath.Join(dir, "x.log"), fmt.Sprint(i))
		if err := Rotate(dir, "x.log", 3); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"x.log.0", "x.log.1", "x.log.2"}
	if got := listDir(t, dir); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	for i, w := range []string{"5", "4", "3"} {
		if got := read(t, filepath.Join(dir, Rotated("x.log", i))); got != w {
			t.Errorf("x.log.%d holds %q, want %q", i, got, w)
		}
	}
}

func TestRotateFillsAFreePlace(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.log.0"), "older")
	writeFile(t, filepath.Join(dir, "x.log.2"), "oldest")
	writeFile(t, filepath.Join(dir, "x.log"), "new")
	// x.log.1 is free (as after an interrupted rotation): nothing is
	// deleted.
	if err := Rotate(dir, "x.log", 3); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"x.log.0": "new", "x.log.1": "older", "x.log.2": "oldest"} {
		if got := read(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestRotateFailureReported(t *testing.T) {
	dir := t.TempDir()
	// No active file: the rename fails and says so.
	err := Rotate(dir, "x.log", 3)
	if err == nil || !strings.Contains(err.Error(), "x.log") {
		t.Fatalf("err = %v", err)
	}
}

func TestCompressRoundTrip(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for i := 0; i < 4; i++ {
		content := strings.Repeat(fmt.Sprintf("line of generation %d\n", i), 500)
		want = append([]string{content}, want...)
		writeFile(t, filepath.Join(dir, "x.log"), content)
		if err := Rotate(dir, "x.log", 3); err != nil {
			t.Fatal(err)
		}
		if err := CompressRotated(dir, "x.log", 3); err != nil {
			t.Fatal(err)
		}
	}
	got := listDir(t, dir)
	if fmt.Sprint(got) != "[x.log.0.gz x.log.1.gz x.log.2.gz]" {
		t.Fatalf("files %v", got)
	}
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, Rotated("x.log", i)+GzSuffix)
		if c := read(t, p); c != want[i] {
			t.Errorf("%s: round trip differs (%d bytes, want %d)", p, len(c), len(want[i]))
		}
		st, _ := os.Stat(p)
		if st.Size() >= int64(len(want[i])) {
			t.Errorf("%s: %d bytes, not compressed", p, st.Size())
		}
	}
	// A crash between the rename and the removal leaves both: the plain
	// copy is removed, the .gz kept.
	writeFile(t, filepath.Join(dir, "x.log.0"), "stale plain copy")
	if err := CompressRotated(dir, "x.log", 3); err != nil {
		t.Fatal(err)
	}
	if c := read(t, filepath.Join(dir, "x.log.0.gz")); c != want[0] {
		t.Error("a stale plain copy replaced the compressed file")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.log.0")); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale plain copy kept")
	}
}

func TestQuotaDeletesOldestRotated(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	mk := func(name string, size int, age int) {
		p := filepath.Join(dir, name)
		writeFile(t, p, strings.Repeat("x", size))
		mt := base.Add(time.Duration(age) * time.Minute)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	mk("a.log", 100, 50)
	mk("a.log.0", 100, 40)
	mk("a.log.1", 100, 10)
	mk("b.log", 100, 50)
	mk("b.log.0.gz", 100, 20)
	mk("b.log.1.gz", 100, 5)
	mk("notes.txt", 50, 0)
	deleted, total, err := EnforceQuota(dir, 400)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(deleted) != "[b.log.1.gz a.log.1 b.log.0.gz]" || total != 350 {
		t.Fatalf("deleted %v, total %d", deleted, total)
	}
	_, total, err = EnforceQuota(dir, 100)
	if !errors.Is(err, ErrOverQuota) || total != 250 {
		t.Fatalf("err %v total %d", err, total)
	}
	if got := listDir(t, dir); fmt.Sprint(got) != "[a.log b.log notes.txt]" {
		t.Fatalf("left %v", got)
	}
}

func TestIsRotatedAndTemp(t *testing.T) {
	for name, want := range map[string]bool{
		"x.log.0": true, "x.log.12.gz": true, "x.log": false, "x.log.": false, "x.log.a": false,
		".log.0": false, "x.log.+1": false, "x.0": false, "x.log.0.gz.gz": false,
	} {
		if _, got := IsRotated(name); got != want {
			t.Errorf("IsRotated(%q) = %v", name, got)
		}
	}
	for name, want := range map[string]bool{
		".x.log.0.gz12345": true, ".logwrite.state99": true, ".x.log.0.gz": false, "x.log.0.gz1": false,
		".x.log12": false, ".other123": false,
	} {
		if got := IsTemp(name, "logwrite.state"); got != want {
			t.Errorf("IsTemp(%q) = %v", name, got)
		}
	}
}

func TestFileFlushKeepsUnwritten(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, "x.log")
	if err != nil {
		t.Fatal(err)
	}
	f.Append([]byte("one\n"))
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Append([]byte("two\n"))
	f.Append([]byte("three\n"))
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if f.Size() != 14 || f.Pending() != 0 {
		t.Fatalf("size %d pending %d", f.Size(), f.Pending())
	}
	f.Close()
	removed, replaced, short, err := Truncate(dir, "x.log", f.Ino(), 4)
	if err != nil || removed != 10 || replaced || short {
		t.Fatalf("Truncate: %d %v %v %v", removed, replaced, short, err)
	}
	if got := read(t, filepath.Join(dir, "x.log")); got != "one\n" {
		t.Fatalf("after truncation: %q", got)
	}
	// Another inode under the name is left alone.
	// (Written before the rename, so the file system cannot reuse the
	// inode number.)
	writeFile(t, filepath.Join(dir, "other"), "someone else's\n")
	if err := os.Rename(filepath.Join(dir, "other"), filepath.Join(dir, "x.log")); err != nil {
		t.Fatal(err)
	}
	if _, replaced, _, err := Truncate(dir, "x.log", f.Ino(), 0); err != nil || !replaced {
		t.Fatalf("replaced=%v err=%v", replaced, err)
	}
	// A symlink planted under a log name is not followed.
	os.Remove(filepath.Join(dir, "y.log"))
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "y.log")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, "y.log"); err == nil {
		t.Fatal("opened a symlink")
	}
}

// SyncLater hands the sync of what was written so far to the caller, to
// run while the file is written to: the file counts as synced at once,
// as not synced again after Unsynced (the sync failed), and a clean file
// has nothing to sync.
func TestSyncLater(t *testing.T) {
	f, err := Open(t.TempDir(), "x.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.SyncLater() != nil {
		t.Fatal("a file nothing was written to has something to sync")
	}
	f.Append([]byte("one\n"))
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	sync := f.SyncLater()
	if sync == nil || f.Dirty() {
		t.Fatalf("after SyncLater: sync %v, dirty %v; want a sync and a clean file", sync != nil, f.Dirty())
	}
	done := make(chan error, 1)
	go func() { done <- sync() }()
	for range 100 {
		f.Append([]byte("more\n"))
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !f.Dirty() {
		t.Error("bytes written while a sync ran count as synced")
	}
	if err := f.Sync(); err != nil || f.Dirty() {
		t.Fatalf("Sync: %v, dirty %v", err, f.Dirty())
	}
	f.Unsynced()
	if !f.Dirty() || f.SyncLater() == nil {
		t.Error("Unsynced did not make the file count as not synced")
	}
}
