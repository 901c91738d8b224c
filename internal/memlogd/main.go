package memlogd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// Main runs memlogd with command-line arguments args (without the program
// name) and returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, fs, err := ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "memlogd:", err)
		return 2
	}
	if cfg.Daemonize {
		if err := daemonize(cfg, fs, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "memlogd: -daemonize:", err)
			return 1
		}
		return 0
	}
	// A console that went away must not kill the logger.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := New(cfg, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "memlogd:", err)
		return 1
	}
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "memlogd:", err)
		return 1
	}
	return 0
}

// daemonize binds the sockets here, so that they exist when it returns,
// and starts a copy of this program in a new session that serves them as
// inherited descriptors 3, 4 (and 5 for syslog).
func daemonize(cfg Config, fs *flag.FlagSet, stdout, stderr io.Writer) error {
	d := &Daemon{cfg: cfg}
	if err := d.bind(); err != nil {
		d.Close()
		return err
	}
	// From here on the child owns the socket files; only our descriptors
	// are closed.
	defer func() {
		d.logConn.Close()
		d.queryLn.Close()
		if d.syslogConn != nil {
			d.syslogConn.Close()
		}
	}()
	var files []*os.File
	for _, f := range []interface{ File() (*os.File, error) }{d.logConn, d.queryLn} {
		file, err := f.File()
		if err != nil {
			return fmt.Errorf("passing sockets to the background copy: %w", err)
		}
		defer file.Close()
		files = append(files, file)
	}
	args := []string{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "daemonize", "fd-log", "fd-query", "fd-syslog":
			return
		}
		args = append(args, "-"+f.Name+"="+f.Value.String())
	})
	args = append(args, "-fd-log=3", "-fd-query=4")
	if d.syslogConn != nil {
		file, err := d.syslogConn.File()
		if err != nil {
			return fmt.Errorf("passing sockets to the background copy: %w", err)
		}
		defer file.Close()
		files = append(files, file)
		args = append(args, "-fd-syslog=5")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding my own executable: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		d.Close()
		return fmt.Errorf("starting the background copy: %w", err)
	}
	return cmd.Process.Release()
}
