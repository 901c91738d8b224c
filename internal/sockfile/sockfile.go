// Package sockfile creates and removes the files of unix sockets safely:
// a socket file left by an earlier run is replaced, a live one or any
// other file is left alone and reported, two processes starting at once
// cannot both take the path, and a process removes the path at exit only
// if it still holds its own socket.
package sockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// File is a socket file this process bound (or adopted).
type File struct {
	Path string
	id   os.FileInfo
}

// lockWait bounds the wait for another process binding in the same
// directory.
const lockWait = 10 * time.Second

// Bind calls bind, which must bind a socket of network ("unix" or
// "unixgram") at path, after removing a stale socket file from path (see
// RemoveStale). It holds an exclusive flock on path's directory meanwhile,
// so that two processes doing the same cannot both find the path stale
// and one delete the other's new socket.
func Bind(path, network string, bind func() error) (*File, error) {
	unlock, err := lockDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := RemoveStale(path, network); err != nil {
		return nil, err
	}
	if err := bind(); err != nil {
		return nil, err
	}
	id, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("the new socket %s: %w", path, err)
	}
	return &File{Path: path, id: id}, nil
}

// Adopt records the socket file now at path as this process's, for a
// socket inherited already bound (memlogd -daemonize binds in the parent
// and serves in the child).
func Adopt(path string) (*File, error) {
	id, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("inherited socket %s: %w", path, err)
	}
	if id.Mode().Type() != fs.ModeSocket {
		return nil, fmt.Errorf("inherited socket %s: the path is not a socket (%v)", path, id.Mode().Type())
	}
	return &File{Path: path, id: id}, nil
}

// Remove removes the socket file if the path still holds the one this
// process bound: a newer process's socket there is left alone. Call it
// before closing the socket: the file is told apart by its inode number,
// which an open socket keeps from being reused. It is safe on a nil File.
func (f *File) Remove() error {
	if f == nil {
		return nil
	}
	unlock, err := lockDir(filepath.Dir(f.Path))
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := os.Lstat(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !os.SameFile(cur, f.id) {
		return nil // replaced by another process's socket
	}
	if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing socket %s: %w", f.Path, err)
	}
	return nil
}

// lockDir takes an exclusive flock on dir, waiting at most lockWait. File
// systems without flock are used without the lock.
func lockDir(dir string) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	deadline := time.Now().Add(lockWait)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := unix.Flock(int(d.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return func() {
				unix.Flock(int(d.Fd()), unix.LOCK_UN)
				d.Close()
			}, nil
		case errors.Is(err, unix.EINTR):
			continue
		case !errors.Is(err, unix.EWOULDBLOCK):
			// ENOLCK, EOPNOTSUPP...: no locking here.
			d.Close()
			return func() {}, nil
		case time.Now().After(deadline):
			d.Close()
			return nil, fmt.Errorf("locking %s: another process has held it for %v", dir, lockWait)
		}
		time.Sleep(wait)
	}
}

// RemoveStale removes path if it is a socket file nobody serves any more:
// a connect to it as network ("unix" or "unixgram", the kind about to be
// bound there) is refused with ECONNREFUSED. Any other outcome leaves it
// alone and is an error: a connect that succeeds (in use), EAGAIN (a live
// server with a full accept queue), EPROTOTYPE (a socket of another
// type), EACCES, as is any file that is not a socket. A missing path is
// fine. Bind calls it under its lock; alone it races with another process
// binding the same path.
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
	c, err := net.DialUnix(network, nil, &net.UnixAddr{Name: path, Net: network})
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("%s: socket in use by another process", path)
	case errors.Is(err, syscall.ENOENT):
		return nil // removed meanwhile
	case errors.Is(err, syscall.EAGAIN):
		return fmt.Errorf("%s: socket in use by another process (busy: its accept queue is full); refusing to replace it", path)
	case errors.Is(err, syscall.EPROTOTYPE):
		return fmt.Errorf("%s: a socket of another type than %s is bound there; refusing to replace it", path, network)
	case !errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s: cannot tell whether the socket there is still in use (%w); refusing to replace it", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return nil
}
