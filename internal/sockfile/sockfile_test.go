package sockfile

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	if err := RemoveStale(filepath.Join(dir, "missing"), "unix"); err != nil {
		t.Errorf("missing path: %v", err)
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep"), 0o600)
	if err := RemoveStale(file, "unix"); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Error("regular file removed")
	}
	for _, network := range []string{"unix", "unixgram"} {
		path := filepath.Join(dir, network+".sock")
		var live interface{ Close() error }
		var err error
		if network == "unix" {
			var l *net.UnixListener
			l, err = net.ListenUnix(network, &net.UnixAddr{Name: path, Net: network})
			if l != nil {
				l.SetUnlinkOnClose(false)
			}
			live = l
		} else {
			live, err = net.ListenUnixgram(network, &net.UnixAddr{Name: path, Net: network})
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := RemoveStale(path, network); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("%s live socket: %v", network, err)
		}
		live.Close()
		if err := RemoveStale(path, network); err != nil {
			t.Errorf("%s stale socket: %v", network, err)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s stale socket not removed", network)
		}
	}
}
