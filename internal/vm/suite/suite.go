// Package suite runs lklog's VM test cases (test/cases/NNN_name/ with a
// LinuxKit test.yml and a check.sh) and boots example images.
package suite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lklog/lklog/internal/vm/fetch"
	"github.com/lklog/lklog/internal/vm/guest"
	"github.com/lklog/lklog/internal/vm/image"
	"github.com/lklog/lklog/internal/vm/qemu"
	"github.com/lklog/lklog/internal/vm/yml"
)

// Env is what every VM run shares.
type Env struct {
	Repo    string // repository root
	BinDir  string // static binaries for /usr/bin
	WorkDir string // scratch space for images and disks
	Assets  *fetch.Assets
	InitBin string   // built test init
	Applets []string // busybox applets
	LibDir  string   // check helpers for /test/lib (optional)
	Out     io.Writer
	// TimeScale multiplies every case's timeout (0 or 1: as written): a
	// host loaded k times over runs the VMs about k times slower.
	TimeScale float64
}

// scaled applies TimeScale to a case's timeout.
func (e *Env) scaled(d time.Duration) time.Duration {
	if e.TimeScale <= 1 {
		return d
	}
	return time.Duration(float64(d) * e.TimeScale)
}

// Prepare fetches the assets, builds the test init and lists busybox's
// applets.
func Prepare(ctx context.Context, repo, cacheDir string, out io.Writer) (*Env, error) {
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	f := &fetch.Fetcher{CacheDir: filepath.Join(cacheDir, "vm"), Log: func(format string, args ...any) {
		fmt.Fprintf(out, "vmtest: "+format+"\n", args...)
	}}
	assets, err := f.Ensure(ctx)
	if err != nil {
		return nil, err
	}
	work := filepath.Join(cacheDir, "vmtest")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	initBin := filepath.Join(work, "vminit")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, "./tools/vminit")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("suite: building the test init: %w\n%s", err, b)
	}
	applets, err := image.Applets(assets.Busybox)
	if err != nil {
		return nil, err
	}
	return &Env{Repo: repo, BinDir: filepath.Join(repo, "bin"), WorkDir: work, Assets: assets, InitBin: initBin, Applets: applets, Out: out}, nil
}

// Case is one test case folder.
type Case struct {
	Name   string // folder name, e.g. 001_memlogd_init
	Dir    string
	Config *yml.Config
	Opts   Options
}

// Options are a case's "# vmtest:" directives in test.yml, e.g.
// "# vmtest: disk=64M net timeout=90s".
type Options struct {
	DiskMB  int           // 0: no disk; /var/log is tmpfs
	Net     bool          // user networking
	Timeout time.Duration // host-side hard limit for the VM
	MemMB   int
}

// ParseOptions reads the directive lines of a test.yml.
func ParseOptions(src string) (Options, error) {
	o := Options{Timeout: 120 * time.Second, MemMB: 512}
	for _, line := range strings.Split(src, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "# vmtest:")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			var err error
			switch k {
			case "disk":
				o.DiskMB = 64
				if v != "" {
					o.DiskMB, err = strconv.Atoi(strings.TrimSuffix(strings.ToUpper(v), "M"))
				}
			case "net":
				o.Net = true
			case "timeout":
				o.Timeout, err = time.ParseDuration(v)
			case "mem":
				o.MemMB, err = strconv.Atoi(strings.TrimSuffix(strings.ToUpper(v), "M"))
			default:
				return o, fmt.Errorf("unknown vmtest directive %q", f)
			}
			if err != nil {
				return o, fmt.Errorf("vmtest directive %q: %w", f, err)
			}
		}
	}
	if o.DiskMB < 0 || o.Timeout <= 0 || o.MemMB < 64 {
		return o, fmt.Errorf("vmtest directives out of range: %+v", o)
	}
	return o, nil
}

// Discover lists the cases under dir (folders with a test.yml), sorted.
// filter, when not empty, keeps cases whose name contains it.
func Discover(dir, filter string) ([]*Case, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	var cases []*Case
	for _, e := range ents {
		if !e.IsDir() || (filter != "" && !strings.Contains(e.Name(), filter)) {
			continue
		}
		cdir := filepath.Join(dir, e.Name())
		src, err := os.ReadFile(filepath.Join(cdir, "test.yml"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("suite: %w", err)
		}
		cfg, err := yml.ParseConfig(string(src))
		if err != nil {
			return nil, fmt.Errorf("suite: %s: %w", e.Name(), err)
		}
		opts, err := ParseOptions(string(src))
		if err != nil {
			return nil, fmt.Errorf("suite: %s: %w", e.Name(), err)
		}
		if _, err := os.Stat(filepath.Join(cdir, "check.sh")); err != nil {
			return nil, fmt.Errorf("suite: %s: %w", e.Name(), err)
		}
		cases = append(cases, &Case{Name: e.Name(), Dir: cdir, Config: cfg, Opts: opts})
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
	return cases, nil
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	Case    *Case
	Pass    bool
	Elapsed time.Duration
	Detail  string // why it failed
	Serial  []byte // the guest's console, then host-check.sh's output
	// SerialPath is the file that keeps all of Serial.
	SerialPath string
}

// RunCase builds the case's initramfs (and disk), boots it, and runs its
// host-check.sh when there is one.
func (e *Env) RunCase(ctx context.Context, c *Case) *CaseResult {
	start := time.Now()
	res := &CaseResult{Case: c}
	fail := func(format string, args ...any) *CaseResult {
		res.Detail = fmt.Sprintf(format, args...)
		res.Elapsed = time.Since(start)
		return res
	}
	dir := filepath.Join(e.WorkDir, "cases", c.Name)
	if err := os.RemoveAll(dir); err != nil {
		return fail("%v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail("%v", err)
	}
	onboot, err := image.Entries(e.Repo, e.BinDir, c.Config.Onboot)
	if err != nil {
		return fail("%v", err)
	}
	services, err := image.Entries(e.Repo, e.BinDir, c.Config.Services)
	if err != nil {
		return fail("%v", err)
	}
	timeout := e.scaled(c.Opts.Timeout)
	checkLimit := timeout - 20*time.Second
	if checkLimit < 10*time.Second {
		checkLimit = timeout / 2
	}
	plan := guest.Plan{
		Mode: guest.ModeTest, Onboot: onboot, Services: services,
		Check: image.GuestTestDir + "/check.sh", CheckTimeout: int(checkLimit / time.Second),
		Disk: c.Opts.DiskMB > 0, Net: c.Opts.Net,
	}
	env := append(os.Environ(), "VMTEST_WORK="+dir)
	var extra map[string][]byte
	if hs := filepath.Join(c.Dir, "host-setup.sh"); fileExists(hs) {
		stop, err := startHostSetup(ctx, hs, c.Dir, env)
		if stop != nil {
			defer stop()
		}
		if err != nil {
			return fail("%v", err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "guest.env")); err == nil {
			extra = map[string][]byte{image.GuestTestDir + "/host.env": b}
		}
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := e.writeImage(initrd, c.Config, c.Dir, plan, extra); err != nil {
		return fail("%v", err)
	}
	qc := &qemu.Config{
		QEMU: e.Assets.QEMU, Kernel: e.Assets.Vmlinux, Initrd: initrd,
		MemMB: c.Opts.MemMB, Net: c.Opts.Net, Test: true, Timeout: timeout,
	}
	if c.Opts.DiskMB > 0 {
		qc.Disk = filepath.Join(dir, "disk.img")
		if err := MakeDisk(ctx, qc.Disk, c.Opts.DiskMB, filepath.Join(c.Dir, "disk")); err != nil {
			return fail("%v", err)
		}
	}
	r, err := qemu.Run(ctx, qc, nil)
	if err != nil {
		return fail("%v", err)
	}
	res.Serial = r.Serial
	serialPath := filepath.Join(dir, "serial.log")
	res.SerialPath = serialPath
	if err := os.WriteFile(serialPath, r.Serial, 0o644); err != nil {
		return fail("%v", err)
	}
	if r.Verdict != qemu.Pass {
		if r.Err != nil {
			return fail("%s: %v", r.Verdict, r.Err)
		}
		return fail("%s (qemu exit code %d)", r.Verdict, r.ExitCode)
	}
	if hc := filepath.Join(c.Dir, "host-check.sh"); fileExists(hc) {
		hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(hctx, "sh", hc)
		cmd.Dir = c.Dir
		cmd.Env = append(env, "VMTEST_DISK="+qc.Disk, "VMTEST_SERIAL="+serialPath)
		out, err := cmd.CombinedOutput()
		res.Serial = append(res.Serial, []byte("\n--- host-check.sh ---\n")...)
		res.Serial = append(res.Serial, out...)
		res.SerialPath = filepath.Join(dir, "output.log")
		if werr := os.WriteFile(res.SerialPath, res.Serial, 0o644); werr != nil {
			res.SerialPath = serialPath
		}
		if err != nil {
			return fail("host-check.sh: %v", err)
		}
	}
	res.Pass = true
	res.Elapsed = time.Since(start)
	return res
}

// startHostSetup runs a case's host-setup.sh, which starts what the case
// needs on the host (a log server, say) and returns once it is ready. What
// it leaves running stays in its process group, which the returned stop
// function ends. A file guest.env it writes in $VMTEST_WORK is put in the
// VM as /test/host.env (e.g. the port a server listens on).
func startHostSetup(ctx context.Context, script, dir string, env []string) (stop func(), err error) {
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(sctx, "sh", script)
	cmd.Dir = dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Background children keep the output pipe open: don't wait for them.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("host-setup.sh: %w", err)
	}
	pgid := cmd.Process.Pid
	stop = func() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		time.Sleep(200 * time.Millisecond)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	if err := cmd.Wait(); err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return stop, fmt.Errorf("host-setup.sh: %w\n%s", err, out.String())
	}
	return stop, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (e *Env) writeImage(dst string, cfg *yml.Config, caseDir string, plan guest.Plan, extra map[string][]byte) error {
	spec := &image.Spec{
		Repo: e.Repo, BinDir: e.BinDir, Init: e.InitBin, Busybox: e.Assets.Busybox,
		Modules: e.Assets.Modules, Config: cfg, CaseDir: caseDir, Plan: plan, Applets: e.Applets,
		Extra: extra,
	}
	if caseDir != "" {
		spec.LibDir = e.LibDir
	}
	var buf bytes.Buffer
	if err := spec.Build(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("suite: %w", err)
	}
	return nil
}

// MakeDisk creates an ext4 image of sizeMB, seeded from seedDir when it
// exists, without root or loop devices (mkfs.ext4 -d).
func MakeDisk(ctx context.Context, path string, sizeMB int, seedDir string) error {
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := os.Truncate(path, int64(sizeMB)<<20); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	args := []string{"-q", "-F", "-L", "lklog"}
	if fileExists(seedDir) {
		args = append(args, "-d", seedDir)
	}
	args = append(args, path)
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("disk: mkfs.ext4 %s: %w: %s", path, err, out)
	}
	return nil
}

// RunAll runs the cases, jobs at a time, printing a line per case as it
// ends and the serial output of each failed one. It returns the numbers
// passed and failed.
func (e *Env) RunAll(ctx context.Context, cases []*Case, jobs int) (passed, failed int) {
	if jobs < 1 {
		jobs = 1
	}
	sem := make(chan struct{}, jobs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		sem <- struct{}{}
		go func(c *Case) {
			defer wg.Done()
			defer func() { <-sem }()
			r := e.RunCase(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if r.Pass {
				passed++
				fmt.Fprintf(e.Out, "PASS %s (%.1fs)\n", c.Name, r.Elapsed.Seconds())
				return
			}
			failed++
			Report(e.Out, r)
		}(c)
	}
	wg.Wait()
	return passed, failed
}
