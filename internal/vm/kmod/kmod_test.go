package kmod

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func names(infos []Info) string {
	var s []string
	for _, i := range infos {
		s = append(s, i.Name)
	}
	return strings.Join(s, " ")
}

func TestParseModinfo(t *testing.T) {
	sec := []byte("license=GPL\x00depends=jbd2,mbcache,crc16\x00softdep=pre: crc32c post: foo\x00name=ext4\x00\x00")
	info := ParseModinfo("kernel/fs/ext4/ext4.ko", sec)
	if info.Name != "ext4" || strings.Join(info.Depends, ",") != "jbd2,mbcache,crc16" || strings.Join(info.SoftPre, ",") != "crc32c" {
		t.Fatalf("got %+v", info)
	}
	if got := CanonicalName("a/b/virtio-pci.ko.xz"); got != "virtio_pci" {
		t.Fatalf("CanonicalName = %q", got)
	}
	if got := ParseModinfo("x/no-deps.ko", []byte("depends=\x00")); got.Name != "no_deps" || len(got.Depends) != 0 {
		t.Fatalf("got %+v", got)
	}
}

func TestResolveOrder(t *testing.T) {
	idx := map[string]Info{
		"ext4":    {Name: "ext4", Depends: []string{"mbcache", "jbd2"}, SoftPre: []string{"crc32c", "absent"}},
		"jbd2":    {Name: "jbd2", Depends: []string{"mbcache"}},
		"mbcache": {Name: "mbcache"},
		"crc32c":  {Name: "crc32c"},
		"vblk":    {Name: "vblk", Depends: []string{"virtio", "builtin_ring"}},
		"virtio":  {Name: "virtio"},
	}
	got, err := Resolve(idx, map[string]bool{"builtin_ring": true}, []string{"vblk", "ext4", "jbd2"})
	if err != nil {
		t.Fatal(err)
	}
	if n := names(got); n != "virtio vblk crc32c mbcache jbd2 ext4" {
		t.Fatalf("order = %q", n)
	}
}

func TestResolveErrors(t *testing.T) {
	idx := map[string]Info{
		"a": {Name: "a", Depends: []string{"b"}},
		"b": {Name: "b", Depends: []string{"a"}},
		"c": {Name: "c", Depends: []string{"missing"}},
	}
	if _, err := Resolve(idx, nil, []string{"a"}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: err = %v", err)
	}
	if _, err := Resolve(idx, nil, []string{"c"}); err == nil || !strings.Contains(err.Error(), `"missing" not found (needed by c)`) {
		t.Errorf("missing: err = %v", err)
	}
	if _, err := Resolve(idx, nil, []string{"nope"}); err == nil {
		t.Error("missing wanted module accepted")
	}
}

func TestParseBuiltin(t *testing.T) {
	set := ParseBuiltin([]byte("kernel/fs/proc.ko\nkernel/drivers/tty/serial/8250/8250.ko\n\n"))
	if !set["proc"] || !set["8250"] || len(set) != 2 {
		t.Fatalf("got %v", set)
	}
}

// TestReadInfoRealModule reads a real module from the VM cache when a
// previous vmtest run left one there.
func TestReadInfoRealModule(t *testing.T) {
	matches, _ := filepath.Glob("../../../.cache/vm/linux-image-*/modules/lib/modules/*/kernel/fs/ext4/ext4.ko")
	if len(matches) == 0 {
		t.Skip("no cached kernel modules (run `make test-vm` once)")
	}
	f, err := os.Open(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, err := ReadInfo(matches[0], f)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "ext4" || !strings.Contains(strings.Join(info.Depends, ","), "jbd2") {
		t.Fatalf("got %+v", info)
	}
	if _, err := ReadInfo("bad", strings.NewReader("not an elf")); err == nil {
		t.Fatal("non-ELF accepted")
	}
}
