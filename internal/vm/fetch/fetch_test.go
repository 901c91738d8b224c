package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os/exec"
	"testing"
)

func xz(t *testing.T, data []byte) []byte {
	t.Helper()
	cmd := exec.Command("xz", "-c", "-0")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("xz: %v", err)
	}
	return out
}

func TestUnpackVmlinuz(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("xz not installed")
	}
	elf := append([]byte("\x7fELF"), bytes.Repeat([]byte("kernel"), 1000)...)
	notELF := xz(t, []byte("some other payload"))
	// A bzImage-like blob: setup code, a decoy XZ stream, the real one,
	// and trailing data.
	img := append([]byte("MZ setup code....\xFD7zXZ"), notELF...)
	img = append(img, xz(t, elf)...)
	img = append(img, []byte("trailer bytes")...)
	got, err := UnpackVmlinuz(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, elf) {
		t.Fatalf("got %d bytes, want %d", len(got), len(elf))
	}
	if same, err := UnpackVmlinuz(context.Background(), elf); err != nil || !bytes.Equal(same, elf) {
		t.Fatalf("ELF input not returned as is: %v", err)
	}
	if _, err := UnpackVmlinuz(context.Background(), []byte("no kernel here")); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestWalkTar(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, typ byte, body string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: typ, Size: int64(len(body)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("./boot/", tar.TypeDir, "")
	add("./boot/vmlinuz-1", tar.TypeReg, "K")
	add("./lib/modules/1/a.ko", tar.TypeReg, "A")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err := walkTar(&buf, func(name string, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[name] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["boot/vmlinuz-1"] != "K" || got["lib/modules/1/a.ko"] != "A" {
		t.Fatalf("got %v", got)
	}
}
