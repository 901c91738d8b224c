package qemu

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/vm/guest"
)

func TestClassify(t *testing.T) {
	for code, want := range map[int]Verdict{
		guest.ExitPass<<1 | 1: Pass,
		guest.ExitFail<<1 | 1: Fail,
		0:                     Crash, // power-off or panic with -no-reboot
		1:                     Crash, // QEMU's own error exit, also (0<<1)|1
		3:                     Crash,
	} {
		if got := Classify(code); got != want {
			t.Errorf("Classify(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestArgs(t *testing.T) {
	c := &Config{QEMU: "q", Kernel: "k", Initrd: "i", Cmdline: "x=1", Disk: "d.img", Net: true, Test: true}
	a := strings.Join(c.Args(), " ")
	for _, want := range []string{
		"-kernel k", "-initrd i", "-smp 1", "-m 512", "-no-reboot", "-nographic", "panic=-1", "x=1",
		"isa-debug-exit,iobase=0xf4,iosize=0x04", "file=d.img,if=virtio,format=raw", "virtio-net-pci",
	} {
		if !strings.Contains(a, want) {
			t.Errorf("args lack %q: %s", want, a)
		}
	}
	plain := strings.Join((&Config{Kernel: "k", Initrd: "i"}).Args(), " ")
	for _, not := range []string{"isa-debug-exit", "-drive", "-netdev"} {
		if strings.Contains(plain, not) {
			t.Errorf("plain args have %q", not)
		}
	}
}

// fakeQEMU writes a script standing in for QEMU.
func fakeQEMU(t *testing.T, body string) *Config {
	dir := t.TempDir()
	q := filepath.Join(dir, "qemu")
	if err := os.WriteFile(q, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"k", "i"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &Config{QEMU: q, Kernel: filepath.Join(dir, "k"), Initrd: filepath.Join(dir, "i"), Test: true, Timeout: 5 * time.Second}
}

func TestRunVerdicts(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		want Verdict
	}{
		"pass":            {"echo " + guest.MarkerPass + "; exit 33", Pass},
		"pass, no marker": {"exit 33", Crash},
		"fail":            {"echo " + guest.MarkerFail + "; exit 35", Fail},
		"panic":           {"echo Kernel panic; exit 0", Crash},
		"qemu error":      {"echo bad option >&2; exit 1", Crash},
	} {
		r, err := Run(context.Background(), fakeQEMU(t, tc.body), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Verdict != tc.want {
			t.Errorf("%s: verdict %v, want %v (%v)", name, r.Verdict, tc.want, r.Err)
		}
	}
}

func TestRunTimeout(t *testing.T) {
	c := fakeQEMU(t, "exec sleep 30")
	c.Timeout = 300 * time.Millisecond
	start := time.Now()
	r, err := Run(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != Timeout || time.Since(start) > 10*time.Second {
		t.Fatalf("verdict %v after %v", r.Verdict, time.Since(start))
	}
	c.Timeout = 0
	if _, err := Run(context.Background(), c, nil); err == nil {
		t.Fatal("no timeout accepted")
	}
}

func TestArgsSecondSerial(t *testing.T) {
	a := (&Config{Kernel: "k", Initrd: "i", Serial2: "/tmp/a,b/echo.log"}).Args()
	// The console stays the first serial port (ttyS0); the file is ttyS1.
	j := strings.Join(a, " ")
	if !strings.Contains(j, "-serial stdio -serial file:/tmp/a,,b/echo.log") {
		t.Errorf("args: %s", j)
	}
	if strings.Count(strings.Join((&Config{Kernel: "k", Initrd: "i"}).Args(), " "), "-serial") != 1 {
		t.Errorf("a second serial port without Serial2")
	}
}
