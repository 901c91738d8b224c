package logwrite

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
)

// mountOf returns the mount point and file system type of the mount that
// holds dir (the longest mount point that is dir or one of its parents).
// dir need not exist yet.
func mountOf(dir string) (point, fstype string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("log directory %s: %w", dir, err)
	}
	// Resolve symbolic links in the part of the path that exists.
	p := abs
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			abs = filepath.Join(r, strings.TrimPrefix(abs, p))
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return "", "", fmt.Errorf("reading the mount table: %w", err)
	}
	best := -1
	for i, m := range mounts {
		mp := m.Mountpoint
		if mp == abs || mp == "/" || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/") {
			// Later entries are mounted over earlier ones at the
			// same place.
			if best < 0 || len(mp) >= len(mounts[best].Mountpoint) {
				best = i
			}
		}
	}
	if best < 0 {
		return "", "", fmt.Errorf("log directory %s is on no mount in the mount table", abs)
	}
	return mounts[best].Mountpoint, mounts[best].FSType, nil
}

// waitMount waits until dir is on a mount other than root, checking every
// poll, for at most timeout. It prints one line when it starts waiting
// and one when the mount appears.
func waitMount(ctx context.Context, dir, root string, timeout, poll time.Duration, stderr io.Writer) error {
	start := time.Now()
	deadline := start.Add(timeout)
	said := false
	for {
		point, fstype, err := mountOf(dir)
		if err != nil {
			return err
		}
		if point != root {
			if said {
				fmt.Fprintf(stderr, "logwrite: %s is now on %s (%s) after %v; starting\n", dir, point, fstype, time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if !said {
			fmt.Fprintf(stderr, "logwrite: -wait-mount: %s is on %s (%s), not on a mounted disk yet; waiting up to %v (memlogd keeps buffering)\n", dir, point, fstype, timeout)
			said = true
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("-wait-mount: %s is still on the root file system %s after %v: no disk was mounted there; not writing logs to the root file system (check the mount, or drop -wait-mount)", dir, root, timeout)
		}
		t := time.NewTimer(min(poll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// ensureDir creates dir if it does not exist.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	return nil
}
