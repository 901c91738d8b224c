// Package sockfile prepares the path of a unix socket about to be bound:
// a socket file left by an earlier run is removed, anything else is left
// alone and reported.
package sockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
)

// RemoveStale removes path if it is a socket nobody serves any more.
// network is "unix" or "unixgram", the kind of socket about to be bound
// there: a live one (a connect succeeds) is in use by another process and
// is an error, as is any file that is not a socket. A missing path is fine.
func RemoveStale(path, network string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (%v); refusing to replace it", path, st.Mode().Type())
	}
	if c, err := net.DialUnix(network, nil, &net.UnixAddr{Name: path, Net: network}); err == nil {
		c.Close()
		return fmt.Errorf("%s: socket in use by another process", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return nil
}
