// Package fetch gets what the VM tests need on a fresh Debian machine: QEMU
// and e2fsprogs installed with apt-get, and a Debian kernel (as an
// uncompressed vmlinux plus the few modules the guest loads) and a static
// busybox, downloaded with apt-get download and unpacked into a cache
// directory. Nothing is installed from the kernel or busybox packages.
package fetch

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/lklog/lklog/internal/vm/kmod"
)

// WantedModules are the modules the guest loads: the virtio PCI transport,
// block and network devices, and ext4 (with crc32c, which ext4 finds through
// the crypto API and so does not name as a dependency).
var WantedModules = []string{
	"crc32c_generic", "virtio_pci", "virtio_blk", "virtio_net", "ext4",
}

// Assets are the cached files a VM run uses.
type Assets struct {
	QEMU    string   // path of qemu-system-x86_64
	Vmlinux string   // uncompressed ELF kernel
	Modules []string // module files, in load order
	Busybox string   // static busybox binary
	Kernel  string   // kernel package name, e.g. linux-image-6.1.0-56-amd64
}

// Fetcher gets and caches the assets. Log receives progress lines.
type Fetcher struct {
	CacheDir string
	Log      func(format string, args ...any)
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.Log != nil {
		f.Log(format, args...)
	}
}

// Ensure returns the assets, installing or downloading whatever is missing.
func (f *Fetcher) Ensure(ctx context.Context) (*Assets, error) {
	if err := os.MkdirAll(f.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("fetch: cache dir: %w", err)
	}
	if err := f.ensureTools(ctx); err != nil {
		return nil, err
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return nil, fmt.Errorf("fetch: qemu-system-x86_64 not on PATH after install: %w", err)
	}
	a := &Assets{QEMU: qemu}
	if a.Kernel, err = f.resolveKernel(ctx); err != nil {
		return nil, err
	}
	kdir := filepath.Join(f.CacheDir, a.Kernel)
	if err := f.ensureKernel(ctx, a.Kernel, kdir); err != nil {
		return nil, err
	}
	a.Vmlinux = filepath.Join(kdir, "vmlinux")
	order, err := os.ReadFile(filepath.Join(kdir, "modules.order"))
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(order)), "\n") {
		if line != "" {
			a.Modules = append(a.Modules, filepath.Join(kdir, "modules", line))
		}
	}
	if a.Busybox, err = f.ensureBusybox(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// ensureTools installs the Debian packages that provide the host tools.
func (f *Fetcher) ensureTools(ctx context.Context) error {
	need := map[string]string{
		"qemu-system-x86_64": "qemu-system-x86",
		"mkfs.ext4":          "e2fsprogs",
		"debugfs":            "e2fsprogs",
		"xz":                 "xz-utils",
		"dpkg-deb":           "dpkg",
	}
	var pkgs []string
	seen := map[string]bool{}
	for tool, pkg := range need {
		if _, err := exec.LookPath(tool); err != nil && !seen[pkg] {
			seen[pkg] = true
			pkgs = append(pkgs, pkg)
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	sort.Strings(pkgs)
	if os.Geteuid() != 0 {
		return fmt.Errorf("fetch: missing packages %v: run as root or `apt-get install %s`", pkgs, strings.Join(pkgs, " "))
	}
	f.logf("installing %s with apt-get", strings.Join(pkgs, " "))
	if err := f.aptUpdate(ctx); err != nil {
		return err
	}
	args := append([]string{"-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends"}, pkgs...)
	if _, err := run(ctx, "", "apt-get", args...); err != nil {
		return fmt.Errorf("fetch: installing %v: %w", pkgs, err)
	}
	return nil
}

func (f *Fetcher) aptUpdate(ctx context.Context) error {
	stamp := filepath.Join(f.CacheDir, "apt-updated")
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < time.Hour {
		return nil
	}
	f.logf("apt-get update")
	if _, err := run(ctx, "", "apt-get", "-o", "DPkg::Lock::Timeout=300", "update"); err != nil {
		return fmt.Errorf("fetch: apt-get update: %w", err)
	}
	return os.WriteFile(stamp, nil, 0o644)
}

var kernelDep = regexp.MustCompile(`Depends:\s*(linux-image-[0-9][^\s]*-amd64)`)

// resolveKernel names the versioned kernel package linux-image-amd64
// currently depends on. Once resolved, the name is cached for a day so that
// warm runs need no apt at all.
func (f *Fetcher) resolveKernel(ctx context.Context) (string, error) {
	stamp := filepath.Join(f.CacheDir, "kernel-package")
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < 24*time.Hour {
		if b, err := os.ReadFile(stamp); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(bytes.TrimSpace(b)), nil
		}
	}
	out, err := run(ctx, "", "apt-cache", "depends", "linux-image-amd64")
	if err != nil || !kernelDep.Match(out) {
		// The package lists may never have been fetched on this machine.
		if uerr := f.aptUpdate(ctx); uerr != nil {
			return "", uerr
		}
		if out, err = run(ctx, "", "apt-cache", "depends", "linux-image-amd64"); err != nil {
			return "", fmt.Errorf("fetch: apt-cache depends linux-image-amd64: %w", err)
		}
	}
	m := kernelDep.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("fetch: no versioned kernel in `apt-cache depends linux-image-amd64`:\n%s", out)
	}
	name := string(m[1])
	if err := os.WriteFile(stamp, []byte(name+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	return name, nil
}

// download runs apt-get download for pkg into dir and returns the .deb path.
func (f *Fetcher) download(ctx context.Context, pkg, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	f.logf("apt-get download %s", pkg)
	if _, err := run(ctx, dir, "apt-get", "download", pkg); err != nil {
		if uerr := f.aptUpdate(ctx); uerr != nil {
			return "", uerr
		}
		if _, err = run(ctx, dir, "apt-get", "download", pkg); err != nil {
			return "", fmt.Errorf("fetch: apt-get download %s: %w", pkg, err)
		}
	}
	debs, err := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if err != nil || len(debs) == 0 {
		return "", fmt.Errorf("fetch: apt-get download %s left no .deb in %s", pkg, dir)
	}
	sort.Strings(debs)
	return debs[len(debs)-1], nil
}

// ensureKernel fills kdir with vmlinux, modules/<path>.ko and modules.order.
// It writes into a temporary directory and renames it, so an interrupted
// run leaves no half-filled cache.
func (f *Fetcher) ensureKernel(ctx context.Context, pkg, kdir string) error {
	if _, err := os.Stat(filepath.Join(kdir, "modules.order")); err == nil {
		return nil
	}
	tmp := kdir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	deb, err := f.download(ctx, pkg, filepath.Join(tmp, "deb"))
	if err != nil {
		return err
	}
	f.logf("indexing modules of %s", filepath.Base(deb))
	index := map[string]kmod.Info{}
	builtin := map[string]bool{}
	var vmlinuz []byte
	err = walkDeb(ctx, deb, func(name string, r io.Reader) error {
		switch {
		case strings.HasPrefix(name, "boot/vmlinuz-"):
			b, err := io.ReadAll(r)
			vmlinuz = b
			return err
		case strings.HasSuffix(name, "/modules.builtin"):
			b, err := io.ReadAll(r)
			for k := range kmod.ParseBuiltin(b) {
				builtin[k] = true
			}
			return err
		case strings.HasSuffix(name, ".ko"):
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			info, err := kmod.ReadInfo(name, bytes.NewReader(b))
			if err != nil {
				return err
			}
			index[info.Name] = info
		}
		return nil
	})
	if err != nil {
		return err
	}
	if vmlinuz == nil {
		return fmt.Errorf("fetch: no boot/vmlinuz-* in %s", deb)
	}
	mods, err := kmod.Resolve(index, builtin, WantedModules)
	if err != nil {
		return fmt.Errorf("fetch: %s: %w", pkg, err)
	}
	want := map[string]bool{}
	var order []string
	for _, m := range mods {
		want[m.Path] = true
		order = append(order, m.Path)
	}
	f.logf("extracting %d modules and vmlinux", len(mods))
	modDir := filepath.Join(tmp, "modules")
	err = walkDeb(ctx, deb, func(name string, r io.Reader) error {
		if !want[name] {
			return nil
		}
		dst := filepath.Join(modDir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return err
	}
	elfKernel, err := UnpackVmlinuz(ctx, vmlinuz)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "vmlinux"), elfKernel, 0o644); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err := os.RemoveAll(filepath.Join(tmp, "deb")); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "modules.order"), []byte(strings.Join(order, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err := os.RemoveAll(kdir); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if err := os.Rename(tmp, kdir); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	return nil
}

// ensureBusybox downloads busybox-static and keeps only its binary.
func (f *Fetcher) ensureBusybox(ctx context.Context) (string, error) {
	dst := filepath.Join(f.CacheDir, "busybox")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	tmp := filepath.Join(f.CacheDir, "busybox.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	defer os.RemoveAll(tmp)
	deb, err := f.download(ctx, "busybox-static", tmp)
	if err != nil {
		return "", err
	}
	var bin []byte
	err = walkDeb(ctx, deb, func(name string, r io.Reader) error {
		if name == "bin/busybox" || name == "usr/bin/busybox" {
			b, err := io.ReadAll(r)
			bin = b
			return err
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if bin == nil {
		return "", fmt.Errorf("fetch: no bin/busybox in %s", deb)
	}
	if err := os.WriteFile(dst+".new", bin, 0o755); err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	return dst, nil
}

// walkDeb streams the data archive of a .deb (via dpkg-deb --fsys-tarfile)
// and calls fn for each regular file with its path without leading "./".
func walkDeb(ctx context.Context, deb string, fn func(name string, r io.Reader) error) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("fetch: dpkg-deb: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("fetch: dpkg-deb: %w", err)
	}
	werr := walkTar(bufio.NewReaderSize(out, 1<<20), fn)
	if werr != nil {
		// Unblock dpkg-deb if we stopped reading early.
		_, _ = io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil && werr == nil {
		return fmt.Errorf("fetch: dpkg-deb --fsys-tarfile %s: %w: %s", deb, err, stderr.String())
	}
	if werr != nil {
		return fmt.Errorf("fetch: reading %s: %w", deb, werr)
	}
	return nil
}

func walkTar(r io.Reader, fn func(name string, r io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		if err := fn(name, tr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
}

// xzMagic starts an XZ stream.
var xzMagic = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}

// UnpackVmlinuz turns a compressed kernel image (bzImage) into the ELF
// vmlinux inside it: it finds each XZ stream in the image and decompresses
// it with xz until one yields an ELF file. An input that already is ELF is
// returned unchanged.
func UnpackVmlinuz(ctx context.Context, img []byte) ([]byte, error) {
	if bytes.HasPrefix(img, []byte("\x7fELF")) {
		return img, nil
	}
	for off := 0; off < len(img); {
		i := bytes.Index(img[off:], xzMagic)
		if i < 0 {
			break
		}
		start := off + i
		off = start + 1
		cmd := exec.CommandContext(ctx, "xz", "-dc", "--single-stream")
		cmd.Stdin = bytes.NewReader(img[start:])
		var out bytes.Buffer
		cmd.Stdout = &out
		// Trailing data after the stream makes xz complain; the output
		// is still complete, so judge by the ELF magic only.
		_ = cmd.Run()
		if bytes.HasPrefix(out.Bytes(), []byte("\x7fELF")) {
			return out.Bytes(), nil
		}
	}
	return nil, fmt.Errorf("fetch: no XZ-compressed ELF kernel found in vmlinuz (%d bytes)", len(img))
}

// run executes a command and returns its stdout; the error carries stderr.
func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
