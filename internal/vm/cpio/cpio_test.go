package cpio

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
)

type entry struct {
	name       string
	mode       uint32
	data       string
	rmaj, rmin uint32
}

// parse is an independent newc reader used to check what Writer wrote.
func parse(t *testing.T, b []byte) []entry {
	t.Helper()
	var out []entry
	off := 0
	field := func(i int) uint32 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+6+8*i+8]), 16, 32)
		if err != nil {
			t.Fatalf("field %d at %d: %v", i, off, err)
		}
		return uint32(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) {
			t.Fatalf("truncated header at %d", off)
		}
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, b[off:off+6])
		}
		mode, size, rmaj, rmin, nsize := field(1), int(field(6)), field(9), field(10), int(field(11))
		name := string(b[off+110 : off+110+nsize-1])
		if b[off+110+nsize-1] != 0 {
			t.Fatalf("name of %q not NUL-terminated", name)
		}
		dataOff := align(off + 110 + nsize)
		data := string(b[dataOff : dataOff+size])
		off = align(dataOff + size)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after trailer", len(b)-off)
			}
			return out
		}
		out = append(out, entry{name, mode, data, rmaj, rmin})
	}
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	steps := []error{
		w.File("/usr/bin/tool", 0o755, []byte("abcde")),
		w.Dir("etc", 0o700),
		w.File("etc/x", 0o644, nil),
		w.Symlink("bin/sh", "busybox"),
		w.CharDev("dev/console", 0o600, 5, 1),
		w.Dir("usr", 0o755), // already implied: not repeated
		w.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got := parse(t, buf.Bytes())
	want := []entry{
		{"usr", TypeDir | 0o755, "", 0, 0},
		{"usr/bin", TypeDir | 0o755, "", 0, 0},
		{"usr/bin/tool", TypeReg | 0o755, "abcde", 0, 0},
		{"etc", TypeDir | 0o700, "", 0, 0},
		{"etc/x", TypeReg | 0o644, "", 0, 0},
		{"bin", TypeDir | 0o755, "", 0, 0},
		{"bin/sh", TypeSymlink | 0o777, "busybox", 0, 0},
		{"dev", TypeDir | 0o755, "", 0, 0},
		{"dev/console", TypeChar | 0o600, "", 5, 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries:\n got %v\nwant %v", got, want)
	}
}

func TestPaddingAllSizes(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for n := 0; n < 9; n++ {
		name := fmt.Sprintf("f%0*d", n+1, n) // names of varying length
		if err := w.File(name, 0o644, bytes.Repeat([]byte{'x'}, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := parse(t, buf.Bytes())
	if len(got) != 9 {
		t.Fatalf("got %d entries", len(got))
	}
	for n, e := range got {
		if len(e.data) != n {
			t.Errorf("entry %d: %d bytes", n, len(e.data))
		}
	}
}

func TestErrors(t *testing.T) {
	w := NewWriter(&bytes.Buffer{})
	if err := w.File("/", 0o644, nil); err == nil {
		t.Error("empty name accepted")
	}
	if err := w.File("TRAILER!!!", 0o644, nil); err == nil {
		t.Error("trailer name accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.File("late", 0o644, nil); err == nil {
		t.Error("write after Close accepted")
	}
}
