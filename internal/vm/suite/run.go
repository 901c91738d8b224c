package suite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lklog/lklog/internal/vm/guest"
	"github.com/lklog/lklog/internal/vm/image"
	"github.com/lklog/lklog/internal/vm/qemu"
	"github.com/lklog/lklog/internal/vm/term"
	"github.com/lklog/lklog/internal/vm/yml"
)

// RunOptions control Boot.
type RunOptions struct {
	Interactive   bool          // a shell on the console (stdin is a terminal)
	FollowSeconds int           // otherwise: seconds of `logread -F`
	Timeout       time.Duration // hard limit for the VM
	// EchoConsole keeps memlogd's console echo on the console, as in
	// LinuxKit; otherwise it goes to a second serial port saved in
	// EchoFile.
	EchoConsole bool
	EchoFile    string // default: memlogd-console.log beside the image
}

// Runnable splits a yml section into the entries the VM can run as plain
// processes (lklog packages, and busybox images with a command) and the
// names of the ones it skips (other LinuxKit packages, such as getty,
// format or mount, whose binaries are not in the VM).
func Runnable(entries []yml.Entry) (run []yml.Entry, skipped []string) {
	for _, e := range entries {
		_, ours := yml.Package(e.Image)
		img := e.Image
		if i := strings.LastIndex(img, "/"); i >= 0 {
			img = img[i+1:]
		}
		busybox := strings.HasPrefix(img, "busybox:") || img == "busybox"
		if ours || (busybox && len(e.Command) > 0) {
			run = append(run, e)
		} else {
			skipped = append(skipped, e.Name+" ("+e.Image+")")
		}
	}
	return run, skipped
}

// Boot boots a LinuxKit yml (an example image) with the lklog packages it
// names. A disk is attached when the yml has a format onboot entry.
func (e *Env) Boot(ctx context.Context, ymlPath string, o RunOptions) error {
	src, err := os.ReadFile(ymlPath)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	cfg, err := yml.ParseConfig(string(src))
	if err != nil {
		return fmt.Errorf("run: %s: %w", ymlPath, err)
	}
	onbootY, skipOn := Runnable(cfg.Onboot)
	servicesY, skipSvc := Runnable(cfg.Services)
	if skipped := append(skipOn, skipSvc...); len(skipped) > 0 {
		fmt.Fprintf(e.Out, "vmtest: not run (not lklog packages; the console has a shell instead of getty): %s\n", strings.Join(skipped, ", "))
	}
	onboot := e.entriesOrSkip(onbootY)
	services := e.entriesOrSkip(servicesY)
	dir := filepath.Join(e.WorkDir, "run")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	plan := guest.Plan{Mode: guest.ModeRun, Onboot: onboot, Services: services, Interactive: o.Interactive, FollowSeconds: o.FollowSeconds}
	qc := &qemu.Config{QEMU: e.Assets.QEMU, Kernel: e.Assets.Vmlinux, Initrd: filepath.Join(dir, "initrd.cpio"), Interactive: o.Interactive, Timeout: o.Timeout}
	if !o.EchoConsole {
		qc.Serial2 = o.EchoFile
		if qc.Serial2 == "" {
			qc.Serial2 = filepath.Join(dir, "memlogd-console.log")
		}
		plan.EchoTTY = "/dev/ttyS1"
		fmt.Fprintf(e.Out, "vmtest: memlogd's console echo goes to %s (-echo-console: on the console, as in LinuxKit)\n", qc.Serial2)
	}
	for _, ob := range cfg.Onboot {
		if ob.Name == "format" {
			plan.Disk = true
			qc.Disk = filepath.Join(dir, "disk.img")
			if !fileExists(qc.Disk) {
				if err := MakeDisk(ctx, qc.Disk, 256, ""); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.Out, "vmtest: persistent disk %s mounted on /var/log\n", qc.Disk)
		}
	}
	if err := e.writeImage(qc.Initrd, cfg, "", plan, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.Out, "vmtest: booting %s (QEMU without KVM: a few seconds)\n", ymlPath)
	var extra = e.Out
	var strip *term.Stripper
	switch {
	case o.Interactive:
		extra = nil
	case !isTerminal(e.Out):
		// A file or a pipe gets the text without the firmware's escape
		// codes.
		strip = &term.Stripper{W: e.Out}
		extra = strip
	}
	r, err := qemu.Run(ctx, qc, extra)
	if strip != nil {
		strip.Flush()
	} else if !o.Interactive {
		io.WriteString(e.Out, term.Reset) // the firmware turned wrapping off
	}
	if err != nil {
		return err
	}
	if r.Verdict == qemu.Timeout {
		return fmt.Errorf("run: %v", r.Err)
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f)
}

// entriesOrSkip turns entries into processes, leaving out (with a note) the
// lklog packages that have nothing to run yet, such as a package whose
// binary is not built.
func (e *Env) entriesOrSkip(entries []yml.Entry) []guest.Proc {
	var out []guest.Proc
	for _, en := range entries {
		p, err := image.Entries(e.Repo, e.BinDir, []yml.Entry{en})
		if err != nil {
			fmt.Fprintf(e.Out, "vmtest: not run: %v\n", err)
			continue
		}
		out = append(out, p...)
	}
	return out
}
