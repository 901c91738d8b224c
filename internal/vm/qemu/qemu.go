// Package qemu boots a kernel and initramfs in QEMU (TCG, no KVM needed)
// and tells a test VM's verdict from how QEMU ended.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/lklog/lklog/internal/vm/guest"
	"github.com/lklog/lklog/internal/vm/term"
)

// Config describes one VM.
type Config struct {
	QEMU    string
	Kernel  string // uncompressed vmlinux
	Initrd  string
	Cmdline string // appended to the base command line
	MemMB   int
	Disk    string // raw image attached as virtio disk (optional)
	Net     bool   // user networking with a virtio NIC
	// Test adds the isa-debug-exit device that the init uses to report.
	Test bool
	// Interactive connects the console to the terminal (stdin/stdout).
	Interactive bool
	// Serial2, when set, is a host file that receives the guest's second
	// serial port (ttyS1).
	Serial2 string
	Timeout time.Duration
}

// Args returns QEMU's command line (without the program name).
func (c *Config) Args() []string {
	mem := c.MemMB
	if mem == 0 {
		mem = 512
	}
	cmdline := "console=ttyS0 panic=-1 quiet"
	if c.Cmdline != "" {
		cmdline += " " + c.Cmdline
	}
	args := []string{
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", cmdline,
		"-smp", "1", "-m", fmt.Sprint(mem),
		"-nographic", "-no-reboot", "-nodefaults",
		"-serial", "stdio",
	}
	if c.Interactive {
		args[len(args)-1] = "mon:stdio"
	}
	if c.Serial2 != "" {
		args = append(args, "-serial", "file:"+strings.ReplaceAll(c.Serial2, ",", ",,"))
	}
	if c.Test {
		args = append(args, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04")
	}
	if c.Disk != "" {
		args = append(args, "-drive", "file="+c.Disk+",if=virtio,format=raw,cache=unsafe")
	}
	if c.Net {
		args = append(args, "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0")
	}
	return args
}

// Verdict is how a test VM ended.
type Verdict int

// Verdicts.
const (
	Pass Verdict = iota
	Fail
	Crash   // QEMU ended without a result: panic, power-off, QEMU error
	Timeout // killed by the host
)

func (v Verdict) String() string {
	return [...]string{"pass", "fail", "crash", "timeout"}[v]
}

// Result of one run.
type Result struct {
	Verdict  Verdict
	ExitCode int
	Serial   []byte // console output (test mode)
	Elapsed  time.Duration
	Err      error // why it crashed, when known
}

// Classify maps QEMU's exit code to a verdict: only the isa-debug-exit
// codes of guest.ExitPass and guest.ExitFail count as results.
func Classify(exitCode int) Verdict {
	switch exitCode {
	case guest.ExitPass<<1 | 1:
		return Pass
	case guest.ExitFail<<1 | 1:
		return Fail
	}
	return Crash
}

// Run boots the VM. In test mode the console is captured; in interactive
// mode it is the terminal. The VM is killed at the timeout.
func Run(ctx context.Context, c *Config, extraOut io.Writer) (*Result, error) {
	for _, f := range []string{c.Kernel, c.Initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("qemu: %w", err)
		}
	}
	if c.Timeout <= 0 {
		return nil, errors.New("qemu: no timeout set")
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.QEMU, c.Args()...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var serial bytes.Buffer
	if c.Interactive {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		// QEMU puts the terminal in raw mode and the firmware turns line
		// wrapping off: whatever way QEMU ends, put it back.
		if saved, err := term.Save(os.Stdin); err == nil {
			defer saved.Restore(os.Stdout)
		}
	} else {
		out := io.Writer(&serial)
		if extraOut != nil {
			out = io.MultiWriter(&serial, extraOut)
		}
		cmd.Stdout, cmd.Stderr = out, out
	}
	start := time.Now()
	err := cmd.Run()
	res := &Result{Elapsed: time.Since(start), Serial: serial.Bytes()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		res.Verdict, res.ExitCode = Timeout, -1
		res.Err = fmt.Errorf("qemu: killed after %v", c.Timeout)
	case err == nil:
		res.ExitCode = 0
		res.Verdict = Crash
		res.Err = errors.New("qemu: exited 0 (guest powered off or panicked without reporting a result)")
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		res.Verdict = Classify(res.ExitCode)
		if res.Verdict == Crash {
			res.Err = fmt.Errorf("qemu: exit code %d", res.ExitCode)
		}
	default:
		return nil, fmt.Errorf("qemu: %w", err)
	}
	if c.Test && res.Verdict == Pass && !strings.Contains(string(res.Serial), guest.MarkerPass) {
		// The exit code alone said pass; without the marker something
		// else wrote to the port.
		res.Verdict = Crash
		res.Err = errors.New("qemu: pass exit code without the guest's pass marker")
	}
	return res, nil
}
