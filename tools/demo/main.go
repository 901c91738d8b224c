// Command demo runs memlogd locally, without a VM: memlogd on sockets in a
// temporary directory, a few chatty writers whose output is handed to it
// the way LinuxKit's init does (a socketpair end for an onboot container, a
// FIFO read end for services), a /dev/log client, and `logread -F`
// showing everything for a few seconds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/syslog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/fdpass"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding memlogd and logread")
	dur := flag.Duration("for", 4*time.Second, "how long to show the logs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string, dur time.Duration) error {
	dir, err := os.MkdirTemp("", "lklog-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logSock, querySock, devLog := filepath.Join(dir, "linuxkit-external-logging.sock"), filepath.Join(dir, "memlogdq.sock"), filepath.Join(dir, "log")
	fmt.Printf("== memlogd on %s (log, query and syslog sockets)\n", dir)
	// -daemonize returns once the sockets exist, as LinuxKit's init needs.
	d := exec.Command(filepath.Join(bin, "memlogd"), "-daemonize", "-console=false",
		"-socket-log", logSock, "-socket-query", querySock, "-socket-syslog", devLog)
	d.Stdout, d.Stderr = os.Stdout, os.Stderr
	if err := d.Run(); err != nil {
		return fmt.Errorf("starting memlogd: %w", err)
	}
	defer stopMemlogd(querySock)

	// An onboot container: stdout and stderr on socketpairs, as init runs them with runc.
	if err := onboot(ctx, logSock, "onboot.000-format"); err != nil {
		return err
	}
	// Two services: FIFOs whose read ends are passed, as init does for containerd.
	for _, name := range []string{"sshd", "dhcpcd"} {
		if err := service(ctx, dir, logSock, name); err != nil {
			return err
		}
	}
	// And a syslog(3) client on /dev/log.
	go func() {
		w, err := syslog.Dial("unixgram", devLog, syslog.LOG_WARNING|syslog.LOG_DAEMON, "ntpd")
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo: syslog:", err)
			return
		}
		defer w.Close()
		for i := 0; ctx.Err() == nil; i++ {
			w.Warning(fmt.Sprintf("clock offset %d ms", 10+i))
			sleep(ctx, 700*time.Millisecond)
		}
	}()

	fmt.Printf("== logread -F for %v (then logread -n 3 -json -source 'sshd*')\n", dur)
	ctx2, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	lr := exec.CommandContext(ctx2, filepath.Join(bin, "logread"), "-socket", querySock, "-F")
	lr.Stdout, lr.Stderr = os.Stdout, os.Stderr
	if err := lr.Run(); err != nil && ctx2.Err() == nil {
		return fmt.Errorf("logread: %w", err)
	}
	js := exec.Command(filepath.Join(bin, "logread"), "-socket", querySock, "-n", "3", "-json", "-source", "sshd*")
	js.Stdout, js.Stderr = os.Stdout, os.Stderr
	return js.Run()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func onboot(ctx context.Context, logSock, name string) error {
	for _, stream := range []string{".out", ""} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := fdpass.Send(logSock, name+stream, fds[1]); err != nil {
			return err
		}
		w := os.NewFile(uintptr(fds[0]), name)
		fmt.Fprintf(w, "%s: %s\n", name, map[string]string{".out": "formatting /dev/sda1 as ext4", "": "warning: no partition table"}[stream])
		w.Close()
		unix.Close(fds[1])
	}
	return nil
}

func service(ctx context.Context, dir, logSock, name string) error {
	for _, stream := range []string{".out", ""} {
		fifo := filepath.Join(dir, name+stream+".log")
		if err := unix.Mkfifo(fifo, 0o600); err != nil {
			return err
		}
		// Open the read end without blocking, pass it, then open the write end.
		r, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := fdpass.Send(logSock, name+stream, r); err != nil {
			return err
		}
		unix.Close(r)
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		go func() {
			defer w.Close()
			for i := 1; ctx.Err() == nil; i++ {
				msg := fmt.Sprintf("%s: request %d handled", name, i)
				if stream == "" {
					msg = fmt.Sprintf("%s: slow peer %d", name, i)
				}
				if _, err := fmt.Fprintln(w, msg); err != nil && !errors.Is(err, syscall.EPIPE) {
					return
				}
				sleep(ctx, time.Duration(300+len(name)*60)*time.Millisecond)
			}
		}()
	}
	return nil
}

// stopMemlogd sends SIGTERM to the memlogd serving querySock.
func stopMemlogd(querySock string) {
	out, _ := exec.Command("pgrep", "-f", "memlogd.*"+querySock).Output()
	for _, pid := range strings.Fields(string(out)) {
		exec.Command("kill", pid).Run()
	}
}
