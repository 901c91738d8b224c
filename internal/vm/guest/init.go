package guest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// defaultEnv is the environment every entry gets (LinuxKit's default PATH).
var defaultEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"TERM=linux",
}

// Time limits of the init's steps. The host has its own hard timeout; these
// make a stuck step show up as a message rather than a silent hang.
const (
	initScriptTimeout = 30 * time.Second
	onbootTimeout     = 120 * time.Second
	defaultCheck      = 120 * time.Second
	stopGrace         = 2 * time.Second
	deviceWait        = 10 * time.Second
)

// Init runs a Plan as PID 1.
type Init struct {
	Plan    *Plan
	Console *os.File
	Root    string // "/" in the VM; tests may use a scratch directory
	reaper  *Reaper
	logger  *Logger
	running []*Child
}

func (in *Init) logf(format string, args ...any) {
	fmt.Fprintf(in.Console, "vmtest-init: "+format+"\n", args...)
}

func (in *Init) path(p string) string { return filepath.Join(in.Root, p) }

// Boot prepares the system: mounts, modules, disk, network.
func (in *Init) Boot() error {
	type mnt struct {
		src, dst, fs string
		flags        uintptr
		data         string
	}
	const nodev = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, m := range []mnt{
		{"proc", "/proc", "proc", nodev, ""},
		{"sysfs", "/sys", "sysfs", nodev, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=666"},
		{"shm", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fs, m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.fs, m.dst, err)
		}
	}
	if err := unix.Sethostname([]byte("lklog")); err != nil {
		in.logf("sethostname: %v", err)
	}
	for _, mod := range in.Plan.Modules {
		if err := loadModule(mod); err != nil {
			return err
		}
	}
	if in.Plan.Disk {
		if err := waitFor("/dev/vda", deviceWait); err != nil {
			return err
		}
		if err := os.MkdirAll("/var/log", 0o755); err != nil {
			return fmt.Errorf("mkdir /var/log: %w", err)
		}
		if err := unix.Mount("/dev/vda", "/var/log", "ext4", 0, ""); err != nil {
			return fmt.Errorf("mount /dev/vda on /var/log: %w", err)
		}
	} else if err := unix.Mount("tmpfs", "/var/log", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on /var/log: %w", err)
	}
	ip := [][]string{{"link", "set", "lo", "up"}}
	if in.Plan.Net {
		if err := waitFor("/sys/class/net/eth0", deviceWait); err != nil {
			return err
		}
		ip = append(ip, []string{"link", "set", "eth0", "up"},
			[]string{"addr", "add", "10.0.2.15/24", "dev", "eth0"},
			[]string{"route", "add", "default", "via", "10.0.2.2"})
	}
	for _, args := range ip {
		if err := in.runWait("ip "+strings.Join(args, " "), append([]string{"/bin/busybox", "ip"}, args...), in.Console, 10*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("loading module %s: %w", filepath.Base(path), err)
	}
	return nil
}

func waitFor(path string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v", path, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// command builds an exec.Cmd with the init's environment and stdio.
func (in *Init) command(argv, env []string, stdout, stderr *os.File) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append([]string(nil), defaultEnv...), env...)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A process group of its own, so that stopping it stops its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// runWait runs argv with output to out and waits up to limit.
func (in *Init) runWait(what string, argv []string, out *os.File, limit time.Duration) error {
	c, err := in.reaper.Start(what, in.command(argv, nil, out, out))
	if err != nil {
		return err
	}
	ws, err := c.Wait(limit)
	if err != nil {
		c.Signal(unix.SIGKILL)
		return err
	}
	if ws.ExitStatus() != 0 || ws.Signaled() {
		return fmt.Errorf("%s: %s", what, Describe(ws))
	}
	return nil
}

// RunInitScripts runs every file in /etc/init.d in name order, as
// LinuxKit's init does for the packages of the init section.
func (in *Init) RunInitScripts() error {
	dir := in.path("/etc/init.d")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("init.d: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	out := in.Console
	if in.Plan.EchoTTY != "" {
		f, err := openEcho(in.Plan.EchoTTY)
		if err != nil {
			in.logf("%v: memlogd's console echo stays on the console", err)
		} else {
			defer f.Close()
			out = f
		}
	}
	for _, n := range names {
		if err := in.runWait("/etc/init.d/"+n, []string{filepath.Join(dir, n)}, out, initScriptTimeout); err != nil {
			return fmt.Errorf("init.d: %w", err)
		}
	}
	return nil
}

// openEcho opens the serial port for memlogd's echo, with output
// processing off: the host saves the bytes as they are, lines ending in LF.
func openEcho(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
	}
	return f, nil
}

// RunOnboot runs the onboot entries one after another with LinuxKit's log
// names. A failing entry is reported and the next one runs, as in LinuxKit.
func (in *Init) RunOnboot() {
	for i, p := range in.Plan.Onboot {
		id := fmt.Sprintf("%03d-%s", i, p.Name)
		stdout, err := in.logger.Stream("onboot." + id + ".out")
		if err != nil {
			in.logf("onboot %s: stdout to console: %v", id, err)
		}
		stderr, err := in.logger.Stream("onboot." + id)
		if err != nil {
			in.logf("onboot %s: stderr to console: %v", id, err)
		}
		c, err := in.reaper.Start("onboot "+id, in.command(p.Command, p.Env, stdout, stderr))
		stdout.Close()
		stderr.Close()
		if err != nil {
			in.logf("onboot %s: %v", id, err)
			continue
		}
		ws, err := c.Wait(onbootTimeout)
		if err != nil {
			in.logf("onboot %s: %v; killing it", id, err)
			c.Signal(unix.SIGKILL)
			continue
		}
		if ws.ExitStatus() != 0 || ws.Signaled() {
			in.logf("onboot %s: %s", id, Describe(ws))
		}
	}
}

// StartServices starts every service, each with its stdout and stderr on
// FIFOs whose read ends memlogd gets, named "<name>.out" and "<name>".
func (in *Init) StartServices() {
	for _, p := range in.Plan.Services {
		stdout, err := in.logger.FIFO(p.Name + ".out")
		if err != nil {
			in.logf("service %s: stdout to console: %v", p.Name, err)
		}
		stderr, err := in.logger.FIFO(p.Name)
		if err != nil {
			in.logf("service %s: stderr to console: %v", p.Name, err)
		}
		cmd := in.command(p.Command, p.Env, stdout, stderr)
		c, err := in.reaper.Start("service "+p.Name, cmd)
		stdout.Close()
		stderr.Close()
		if err != nil {
			in.logf("service %s: %v", p.Name, err)
			continue
		}
		in.running = append(in.running, c)
	}
}

// RunCheck runs the check script with its stdout copied to the console and
// reports whether it exited 0 having printed a line "suite PASSED".
func (in *Init) RunCheck() bool {
	limit := defaultCheck
	if in.Plan.CheckTimeout > 0 {
		limit = time.Duration(in.Plan.CheckTimeout) * time.Second
	}
	r, w, err := os.Pipe()
	if err != nil {
		in.logf("check: %v", err)
		return false
	}
	c, err := in.reaper.Start("check", in.command([]string{"/bin/sh", in.Plan.Check}, nil, w, in.Console))
	w.Close()
	if err != nil {
		r.Close()
		in.logf("check: %v", err)
		return false
	}
	sawPass := make(chan bool, 1)
	go func() {
		sawPass <- ScanPass(r, in.Console)
		r.Close()
	}()
	ws, err := c.Wait(limit)
	if err != nil {
		in.logf("check: %v; killing it", err)
		unix.Kill(-c.Cmd.Process.Pid, unix.SIGKILL)
		return false
	}
	// Background children of the check may hold the pipe open: give the
	// scanner a moment, then judge by what it saw.
	pass := false
	select {
	case pass = <-sawPass:
	case <-time.After(2 * time.Second):
		unix.Kill(-c.Cmd.Process.Pid, unix.SIGKILL)
		pass = <-sawPass
	}
	if ws.ExitStatus() != 0 || ws.Signaled() {
		in.logf("check: %s", Describe(ws))
		return false
	}
	if !pass {
		in.logf("check: exited 0 without printing \"suite PASSED\"")
	}
	return pass
}

// ScanPass copies r to w line by line and reports whether a line was
// exactly "suite PASSED".
func ScanPass(r io.Reader, w io.Writer) bool {
	pass := false
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			io.WriteString(w, line)
			if strings.TrimRight(line, "\r\n") == "suite PASSED" {
				pass = true
			}
		}
		if err != nil {
			return pass
		}
	}
}

// Follow shows `logread -F` on the console for d, then stops it.
func (in *Init) Follow(d time.Duration) {
	if in.Plan.EchoTTY != "" {
		in.logf("showing `logread -F` for %v, then powering off", d)
	} else {
		in.logf("showing `logread -F` for %v, then powering off (memlogd also echoes each entry to the console)", d)
	}
	c, err := in.reaper.Start("logread -F", in.command([]string{"/usr/bin/logread", "-F"}, nil, in.Console, in.Console))
	if err != nil {
		in.logf("%v", err)
		return
	}
	if _, err := c.Wait(d); err != nil {
		c.Signal(unix.SIGTERM)
		if _, err := c.Wait(stopGrace); err != nil {
			c.Signal(unix.SIGKILL)
		}
	}
}

// Shell runs an interactive shell on the serial console until it exits.
func (in *Init) Shell() {
	tty, err := os.OpenFile("/dev/ttyS0", os.O_RDWR, 0)
	if err != nil {
		in.logf("shell: %v", err)
		return
	}
	defer tty.Close()
	fmt.Fprintln(tty, "lklog VM shell: try `logread -F` (Ctrl-C stops it); `exit` or `poweroff -f` powers off.")
	if in.Plan.EchoTTY != "" {
		fmt.Fprintln(tty, "memlogd's console echo goes to the second serial port (a file on the host), not here.")
	}
	if !in.hasLogwrite() {
		fmt.Fprintln(tty, "This image has no logwrite: the logs are in memlogd's memory only, /var/log stays empty.")
	}
	cmd := in.command([]string{"/bin/sh", "-l"}, []string{"PS1=lklog:\\w# "}, tty, tty)
	cmd.Stdin = tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	c, err := in.reaper.Start("shell", cmd)
	if err != nil {
		in.logf("%v", err)
		return
	}
	// A person may stay a long time; the host has its own limit.
	c.Wait(24 * time.Hour)
}

// hasLogwrite reports whether the plan runs logwrite (which writes
// /var/log).
func (in *Init) hasLogwrite() bool {
	for _, list := range [][]Proc{in.Plan.Onboot, in.Plan.Services} {
		for _, p := range list {
			if len(p.Command) > 0 && filepath.Base(p.Command[0]) == "logwrite" {
				return true
			}
		}
	}
	return false
}

// Stop terminates the services and every other process, syncs and unmounts
// the disk.
func (in *Init) Stop() {
	for _, c := range in.running {
		unix.Kill(-c.Cmd.Process.Pid, unix.SIGTERM)
	}
	deadline := time.Now().Add(stopGrace)
	for _, c := range in.running {
		if _, err := c.Wait(time.Until(deadline)); err != nil {
			unix.Kill(-c.Cmd.Process.Pid, unix.SIGKILL)
		}
	}
	// Everything else (memlogd and its children, stray processes).
	unix.Kill(-1, unix.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	if in.Plan.Disk {
		var err error
		for i := 0; i < 20; i++ {
			if err = unix.Unmount("/var/log", 0); err == nil || !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			in.logf("unmount /var/log: %v", err)
		}
	}
	unix.Sync()
}

// Main runs the whole plan as PID 1 and never returns: it powers the VM
// off, reporting a test result on the isa-debug-exit port.
func Main(ctx context.Context) {
	console := os.Stdout
	in := &Init{Console: console, Root: "/", reaper: NewReaper()}
	go in.reaper.Run(ctx)
	in.logger = &Logger{Socket: LogSocket, FIFODir: FIFODir, Console: console}
	pass := false
	plan, err := ReadPlan(PlanPath)
	if err != nil {
		in.logf("%v", err)
		in.powerOff(false)
	}
	in.Plan = plan
	if err := in.Boot(); err != nil {
		in.logf("boot: %v", err)
		in.powerOff(false)
	}
	if err := in.RunInitScripts(); err != nil {
		in.logf("%v", err)
	}
	if !in.logger.Enabled() {
		in.logf("%s does not exist: onboot and service output goes to the console", LogSocket)
	}
	in.RunOnboot()
	in.StartServices()
	switch plan.Mode {
	case ModeTest:
		pass = in.RunCheck()
	case ModeRun:
		if plan.Interactive {
			in.Shell()
		} else {
			in.Follow(time.Duration(plan.FollowSeconds) * time.Second)
		}
		pass = true
	}
	in.Stop()
	if plan.Mode == ModeRun {
		in.logf("powering off")
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	in.powerOff(pass)
}

// powerOff reports the result and turns the VM off.
func (in *Init) powerOff(pass bool) {
	code := byte(ExitFail)
	marker := MarkerFail
	if pass {
		code, marker = ExitPass, MarkerPass
	}
	fmt.Fprintln(in.Console, marker)
	if f, err := os.OpenFile("/dev/port", os.O_WRONLY, 0); err == nil {
		if _, err := f.WriteAt([]byte{code}, 0xf4); err != nil {
			in.logf("isa-debug-exit: %v", err)
		}
		f.Close()
	}
	// Without an isa-debug-exit device (make run), power off.
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}
