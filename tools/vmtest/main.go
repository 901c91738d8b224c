// Command vmtest boots lklog's packages in QEMU with a real Debian kernel.
//
//	vmtest -cases test/cases [-only NAME] [-j 2]   run the VM test cases
//	vmtest -cases test/cases -stress 4               the same on a loaded host
//	vmtest -run examples/minimal.yml                 boot an example image
//
// On first use it installs qemu-system-x86 and e2fsprogs with apt-get and
// downloads a Debian kernel and busybox-static into .cache/ (see
// internal/vm/fetch). The binaries in bin/ (make build) go into the VM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/vm/stress"
	"github.com/lklog/lklog/internal/vm/suite"
)

func main() {
	os.Exit(run())
}

func run() int {
	casesDir := flag.String("cases", "", "run the test cases in this directory")
	only := flag.String("only", "", "with -cases: run only cases whose name contains this")
	jobs := flag.Int("j", 2, "with -cases: cases run at a time")
	boot := flag.String("run", "", "boot this LinuxKit yml with a shell on the console")
	follow := flag.Int("follow", 5, "with -run and no terminal: seconds of `logread -F` before powering off")
	echoConsole := flag.Bool("echo-console", false, "with -run: leave memlogd's console echo on the console, as in LinuxKit (default: a second serial port saved in .cache/vmtest/run/memlogd-console.log)")
	cache := flag.String("cache", ".cache", "cache directory (kernel, busybox, images)")
	stressN := flag.Int("stress", 0, "with -cases: keep this many CPU-bound processes running on the host meanwhile (e.g. 2 x nproc), to test on a busy machine")
	flag.Parse()
	if (*casesDir == "") == (*boot == "") {
		fmt.Fprintln(os.Stderr, "vmtest: give exactly one of -cases DIR or -run FILE.yml")
		flag.Usage()
		return 2
	}
	repo, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		fmt.Fprintln(os.Stderr, "vmtest: run from the repository root (no go.mod here)")
		return 2
	}
	// mkfs.ext4 and debugfs live in /usr/sbin, which a non-login PATH may
	// lack.
	path := os.Getenv("PATH")
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		if !strings.Contains(":"+path+":", ":"+d+":") {
			path += ":" + d
		}
	}
	os.Setenv("PATH", path)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	unlock, err := suite.Lock(ctx, *cache, 15*time.Minute, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 1
	}
	defer unlock()
	start := time.Now()
	env, err := suite.Prepare(ctx, repo, *cache, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 1
	}
	if _, err := os.Stat(filepath.Join(env.BinDir, "memlogd")); err != nil {
		fmt.Fprintln(os.Stderr, "vmtest: warning: bin/memlogd is missing (run `make build`); cases that need it will fail")
	}
	fmt.Printf("vmtest: ready in %.1fs (%s)\n", time.Since(start).Seconds(), env.Assets.Kernel)

	if *boot != "" {
		// A person may keep the VM for hours: let test runs go on.
		unlock()
		_, terr := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS)
		o := suite.RunOptions{Interactive: terr == nil, FollowSeconds: *follow, Timeout: time.Duration(*follow)*time.Second + 120*time.Second, EchoConsole: *echoConsole}
		if o.Interactive {
			o.Timeout = 12 * time.Hour
			fmt.Println("vmtest: the console is this terminal; Ctrl-A x quits QEMU")
		}
		if err := env.Boot(ctx, *boot, o); err != nil {
			fmt.Fprintln(os.Stderr, "vmtest:", err)
			return 1
		}
		return 0
	}

	cases, err := suite.Discover(*casesDir, *only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmtest:", err)
		return 1
	}
	if len(cases) == 0 {
		fmt.Fprintf(os.Stderr, "vmtest: no cases in %s\n", *casesDir)
		fmt.Println("0 passed, 0 failed")
		return 1
	}
	if lib := filepath.Join(*casesDir, "..", "lib"); dirExists(lib) {
		env.LibDir = lib
	}
	if *stressN != 0 {
		load, err := stress.Start(*stressN)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vmtest:", err)
			return 1
		}
		defer load.Stop()
		// The VMs get about NumCPU/(NumCPU+N) of the CPU they had, less
		// if the host was busy already: twice that margin.
		env.TimeScale = 2 * (1 + float64(*stressN)/float64(runtime.NumCPU()))
		fmt.Printf("vmtest: stress: %d CPU-bound processes on %d CPUs until the cases end; case timeouts x%.1f\n", *stressN, runtime.NumCPU(), env.TimeScale)
	}
	passed, failed := env.RunAll(ctx, cases, *jobs)
	fmt.Printf("vmtest: %d cases in %.1fs%s\n", len(cases), time.Since(start).Seconds(), stressNote(*stressN))
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

func stressNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" with -stress %d", n)
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
