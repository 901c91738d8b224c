// Package image writes the initramfs of a test VM: the test init, busybox,
// lklog's static binaries, the etc files of the lklog packages a LinuxKit
// yml puts in its init section, kernel modules, the files of a test case,
// and the plan the init runs.
package image

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/lklog/lklog/internal/lkpkg"
	"github.com/lklog/lklog/internal/lkschema"
	"github.com/lklog/lklog/internal/vm/cpio"
	"github.com/lklog/lklog/internal/vm/guest"
	"github.com/lklog/lklog/internal/vm/yml"
)

// Spec is everything an initramfs is made from.
type Spec struct {
	Repo     string   // repository root (holds pkg/)
	BinDir   string   // our static binaries, installed in /usr/bin
	Init     string   // the test init binary (/init)
	Busybox  string   // static busybox (/bin/busybox)
	Modules  []string // host paths of .ko files, in load order
	Config   *yml.Config
	CaseDir  string            // copied to /test (may be empty)
	LibDir   string            // shared check helpers, copied to /test/lib (may be empty)
	Extra    map[string][]byte // more files: path in the image -> contents
	Plan     guest.Plan
	Applets  []string // busybox --list-full output; filled by Build if nil
	MaxBytes int64    // refuse larger images; 0 = 256 MiB
}

// GuestTestDir is where a case's files are in the VM.
const GuestTestDir = "/test"

// PreferPath is a shell file defining a function for each of our binaries
// that has a busybox applet of the same name. Debian's static busybox runs
// its own applet for such a name whatever PATH says, so shells in the VM
// (login shells through /etc/profile, check scripts through
// test/lib/common.sh) source it to reach /usr/bin/NAME.
const PreferPath = "/etc/lklog-prefer.sh"

// PreferScript renders the file at PreferPath.
func PreferScript(names []string) string {
	var b strings.Builder
	b.WriteString("# lklog's binaries take precedence over busybox applets of the same name.\n")
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if !shellName(n) {
			continue
		}
		fmt.Fprintf(&b, "%s() { /usr/bin/%s \"$@\"; }\n", n, n)
	}
	return b.String()
}

func shellName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Applets lists busybox's applets with their install paths, by running
// `busybox --list-full` on the host (a static x86-64 binary).
func Applets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("image: %s --list-full: %w", busybox, err)
	}
	var list []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			list = append(list, l)
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("image: %s lists no applets", busybox)
	}
	return list, nil
}

// Entries turns the onboot and services sections of a yml into processes.
// As in LinuxKit, an entry's command and env replace its image's; an lklog
// package's image has the command of its build.yml config label if any,
// else its Dockerfile's ENTRYPOINT and CMD (or /usr/bin/<package> when that
// exists), and the env of its label.
func Entries(repo, binDir string, entries []yml.Entry) ([]guest.Proc, error) {
	var out []guest.Proc
	for _, e := range entries {
		cmd, env := e.Command, e.Env
		if pkg, ok := yml.Package(e.Image); ok {
			dcmd, denv, err := packageDefaults(repo, binDir, pkg)
			if err != nil {
				return nil, fmt.Errorf("image: %s (line %d): %w", e.Name, e.Line, err)
			}
			if len(cmd) == 0 {
				cmd = dcmd
			}
			if len(cmd) == 0 {
				return nil, fmt.Errorf("image: %s (line %d): no command: package %s has no ENTRYPOINT or CMD, no label command and no bin/%s", e.Name, e.Line, pkg, pkg)
			}
			if env == nil {
				env = denv
			}
		} else if len(cmd) == 0 {
			return nil, fmt.Errorf("image: %s (line %d): no command, and image %s is not an lklog package", e.Name, e.Line, e.Image)
		}
		out = append(out, guest.Proc{Name: e.Name, Command: cmd, Env: env})
	}
	return out, nil
}

// packageDefaults returns the command and environment an lklog package's
// image gives a container that sets neither; cmd is empty if it has none.
func packageDefaults(repo, binDir, pkg string) (cmd, env []string, err error) {
	p, err := lkpkg.Load(filepath.Join(repo, "pkg", pkg))
	if err != nil {
		return nil, nil, err
	}
	cmd = append(append([]string(nil), p.Entrypoint...), p.Cmd...)
	if p.Label != "" {
		v, err := lkschema.ParseJSON([]byte(p.Label))
		if err != nil {
			return nil, nil, err
		}
		label := v.(*lkschema.Obj) // lkpkg.Load checked it
		if c, ok := label.Get("command"); ok {
			cmd = strs(c)
		}
		if en, ok := label.Get("env"); ok {
			env = strs(en)
		}
	}
	if _, err := os.Stat(filepath.Join(binDir, pkg)); err == nil && len(cmd) == 0 {
		cmd = []string{"/usr/bin/" + pkg}
	}
	return cmd, env, nil
}

func strs(v any) []string {
	out := []string{}
	for _, it := range v.([]any) {
		out = append(out, it.(string))
	}
	return out
}

// DefaultCommand returns ENTRYPOINT followed by CMD of a Dockerfile's last
// stage.
func DefaultCommand(dockerfile string) ([]string, error) {
	entry, cmd, err := lkpkg.DockerfileCommand(dockerfile)
	if err != nil {
		return nil, err
	}
	all := append(entry, cmd...)
	if len(all) == 0 {
		return nil, fmt.Errorf("%s has no ENTRYPOINT or CMD", dockerfile)
	}
	return all, nil
}

// Build writes the initramfs to w.
func (s *Spec) Build(w io.Writer) error {
	if s.Applets == nil {
		a, err := Applets(s.Busybox)
		if err != nil {
			return err
		}
		s.Applets = a
	}
	max := s.MaxBytes
	if max == 0 {
		max = 256 << 20
	}
	cw := &countWriter{w: w}
	a := cpio.NewWriter(cw)
	if err := s.write(a); err != nil {
		return err
	}
	if err := a.Close(); err != nil {
		return err
	}
	if cw.n > max {
		return fmt.Errorf("image: initramfs is %d bytes, over the %d limit", cw.n, max)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *Spec) write(a *cpio.Writer) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "tmp", "var/log", "var/lib", "root", "lib/modules"} {
		if err := a.Dir(d, 0o755); err != nil {
			return err
		}
	}
	steps := []func() error{
		func() error { return a.Symlink("var/run", "../run") },
		func() error { return a.CharDev("dev/console", 0o600, 5, 1) },
		func() error { return a.CharDev("dev/null", 0o666, 1, 3) },
		func() error { return copyFile(a, s.Init, "init", 0o755) },
		func() error { return copyFile(a, s.Busybox, "bin/busybox", 0o755) },
		func() error {
			return a.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
		},
		func() error { return a.File("etc/group", 0o644, []byte("root:x:0:\ntty:x:5:\n")) },
		func() error { return a.File("etc/hosts", 0o644, []byte("127.0.0.1 localhost lklog\n")) },
	}
	for _, st := range steps {
		if err := st(); err != nil {
			return err
		}
	}
	ours, err := s.binaries(a)
	if err != nil {
		return err
	}
	var clash []string
	applet := map[string]bool{}
	for _, ap := range s.Applets {
		applet[ap] = true
	}
	for _, ap := range s.Applets {
		base := path.Base(ap)
		if ours[base] {
			clash = append(clash, base)
			continue
		}
		if base == "init" || base == "linuxrc" || base == "busybox" {
			continue
		}
		if err := a.Symlink(ap, "/bin/busybox"); err != nil {
			return err
		}
		// As in the busybox container image, every applet is in /bin too.
		if alias := "bin/" + base; alias != ap && !applet[alias] {
			if err := a.Symlink(alias, "/bin/busybox"); err != nil {
				return err
			}
		}
	}
	if err := a.File(PreferPath, 0o644, []byte(PreferScript(clash))); err != nil {
		return err
	}
	if err := a.File("etc/profile", 0o644, []byte(". "+PreferPath+"\nexport PS1='lklog:\\w# '\n")); err != nil {
		return err
	}
	if err := s.packageFiles(a); err != nil {
		return err
	}
	var mods []string
	for i, m := range s.Modules {
		dst := fmt.Sprintf("lib/modules/%02d-%s", i, filepath.Base(m))
		if err := copyFile(a, m, dst, 0o644); err != nil {
			return err
		}
		mods = append(mods, "/"+dst)
	}
	if s.CaseDir != "" {
		if err := copyTree(a, s.CaseDir, strings.TrimPrefix(GuestTestDir, "/")); err != nil {
			return err
		}
	}
	if s.LibDir != "" {
		if err := copyTree(a, s.LibDir, strings.TrimPrefix(GuestTestDir, "/")+"/lib"); err != nil {
			return err
		}
	}
	if s.Config != nil {
		for _, f := range s.Config.Files {
			mode := uint64(0o644)
			if f.Mode != "" {
				m, err := strconv.ParseUint(f.Mode, 8, 32)
				if err != nil {
					return fmt.Errorf("image: files %s: mode %q: %w", f.Path, f.Mode, err)
				}
				mode = m
			}
			if err := a.File(f.Path, uint32(mode), []byte(f.Contents)); err != nil {
				return err
			}
		}
	}
	extra := make([]string, 0, len(s.Extra))
	for p := range s.Extra {
		extra = append(extra, p)
	}
	sort.Strings(extra)
	for _, p := range extra {
		if err := a.File(p, 0o644, s.Extra[p]); err != nil {
			return err
		}
	}
	plan := s.Plan
	plan.Modules = mods
	js, err := plan.Marshal()
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	return a.File(guest.PlanPath, 0o644, js)
}

// binaries installs every executable in BinDir as /usr/bin/NAME and
// returns their names.
func (s *Spec) binaries(a *cpio.Writer) (map[string]bool, error) {
	names := map[string]bool{}
	ents, err := os.ReadDir(s.BinDir)
	if err != nil {
		if os.IsNotExist(err) {
			return names, nil
		}
		return nil, fmt.Errorf("image: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if err := copyFile(a, filepath.Join(s.BinDir, e.Name()), "usr/bin/"+e.Name(), 0o755); err != nil {
			return nil, err
		}
		names[e.Name()] = true
	}
	return names, nil
}

// packageFiles copies pkg/NAME/etc of each lklog package in the init
// section to /etc, as LinuxKit unpacks init images into the root.
func (s *Spec) packageFiles(a *cpio.Writer) error {
	if s.Config == nil {
		return nil
	}
	var pkgs []string
	for _, img := range s.Config.Init {
		if p, ok := yml.Package(img); ok {
			pkgs = append(pkgs, p)
		}
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		dir := filepath.Join(s.Repo, "pkg", p)
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("image: init image lklog/%s: no package %s: %w", p, dir, err)
		}
		etc := filepath.Join(dir, "etc")
		if _, err := os.Stat(etc); err == nil {
			if err := copyTree(a, etc, "etc"); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(a *cpio.Writer, src, dst string, perm uint32) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := a.File(dst, perm, b); err != nil {
		return fmt.Errorf("image: %s: %w", dst, err)
	}
	return nil
}

// copyTree copies the regular files and directories under src to dst,
// keeping the executable bits.
func copyTree(a *cpio.Writer, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		switch {
		case d.IsDir():
			return a.Dir(target, 0o755)
		case info.Mode().IsRegular():
			perm := uint32(0o644)
			if info.Mode()&0o111 != 0 {
				perm = 0o755
			}
			return copyFile(a, p, target, perm)
		}
		return nil
	})
}

// Summary lists an initramfs's entry names (for debugging and tests).
func Summary(img []byte) []string {
	var names []string
	for off := 0; off+110 <= len(img); {
		if !bytes.Equal(img[off:off+6], []byte("070701")) {
			break
		}
		hex := func(i int) int {
			v, _ := strconv.ParseUint(string(img[off+6+8*i:off+14+8*i]), 16, 32)
			return int(v)
		}
		size, nsize := hex(6), hex(11)
		name := string(img[off+110 : off+110+nsize-1])
		if name == "TRAILER!!!" {
			break
		}
		names = append(names, name)
		off = (off + 110 + nsize + 3) &^ 3
		off = (off + size + 3) &^ 3
	}
	return names
}
