// Package cpio writes "newc" cpio archives, the format the Linux kernel
// unpacks as an initramfs. Entries are written in the order they are added;
// the kernel creates a parent directory only if it was listed before.
package cpio

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// Mode bits of the file types newc understands.
const (
	TypeDir     = 0o040000
	TypeReg     = 0o100000
	TypeSymlink = 0o120000
	TypeChar    = 0o020000
	TypeFIFO    = 0o010000
)

const trailer = "TRAILER!!!"

// Writer writes one archive. Close writes the trailer; it does not close
// the underlying writer.
type Writer struct {
	w      *bufio.Writer
	ino    uint32
	dirs   map[string]bool
	closed bool
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: bufio.NewWriter(w), ino: 300000, dirs: map[string]bool{".": true, "": true}}
}

func clean(name string) (string, error) {
	n := strings.TrimPrefix(path.Clean("/"+name), "/")
	if n == "" || n == trailer {
		return "", fmt.Errorf("cpio: bad entry name %q", name)
	}
	return n, nil
}

// header writes one entry header, name and padding.
func (w *Writer) header(name string, mode uint32, size int, rdevMajor, rdevMinor uint32) error {
	if w.closed {
		return fmt.Errorf("cpio: write after Close")
	}
	w.ino++
	nlink := uint32(1)
	if mode&0o170000 == TypeDir {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check
	_, err := fmt.Fprintf(w.w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	if _, err := w.w.WriteString(name + "\x00"); err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return w.pad(110 + len(name) + 1)
}

func (w *Writer) pad(n int) error {
	if r := n % 4; r != 0 {
		if _, err := w.w.Write(make([]byte, 4-r)); err != nil {
			return fmt.Errorf("cpio: %w", err)
		}
	}
	return nil
}

// ensureParents adds directory entries (mode 0755) for every missing
// parent of name.
func (w *Writer) ensureParents(name string) error {
	dir := path.Dir(name)
	if w.dirs[dir] {
		return nil
	}
	if err := w.ensureParents(dir); err != nil {
		return err
	}
	w.dirs[dir] = true
	return w.header(dir, TypeDir|0o755, 0, 0, 0)
}

// Dir adds a directory with the given permission bits.
func (w *Writer) Dir(name string, perm uint32) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if w.dirs[n] {
		return nil
	}
	if err := w.ensureParents(n); err != nil {
		return err
	}
	w.dirs[n] = true
	return w.header(n, TypeDir|perm&0o7777, 0, 0, 0)
}

// File adds a regular file with the given permission bits and contents.
func (w *Writer) File(name string, perm uint32, data []byte) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if err := w.ensureParents(n); err != nil {
		return err
	}
	if err := w.header(n, TypeReg|perm&0o7777, len(data), 0, 0); err != nil {
		return err
	}
	if _, err := w.w.Write(data); err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return w.pad(len(data))
}

// Symlink adds a symbolic link name pointing at target.
func (w *Writer) Symlink(name, target string) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if err := w.ensureParents(n); err != nil {
		return err
	}
	if err := w.header(n, TypeSymlink|0o777, len(target), 0, 0); err != nil {
		return err
	}
	if _, err := w.w.WriteString(target); err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return w.pad(len(target))
}

// CharDev adds a character device node.
func (w *Writer) CharDev(name string, perm, major, minor uint32) error {
	n, err := clean(name)
	if err != nil {
		return err
	}
	if err := w.ensureParents(n); err != nil {
		return err
	}
	return w.header(n, TypeChar|perm&0o7777, 0, major, minor)
}

// Close writes the trailer entry and flushes.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if err := w.header(trailer, 0, 0, 0, 0); err != nil {
		return err
	}
	w.closed = true
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("cpio: %w", err)
	}
	return nil
}
