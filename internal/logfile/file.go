package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Perm is the mode of the log files created.
const Perm = 0o644

// File is one source's active log file, opened for appending. Lines are
// collected in memory by Append and written by Flush; a write that fails
// (disk full, read-only, I/O error) keeps what was not written, so a later
// Flush continues exactly where the file ends and no line is duplicated
// or cut.
type File struct {
	// Name is the file's name in the directory, e.g. "x.log".
	Name string
	path string
	f    *os.File
	ino  uint64
	size int64 // bytes in the file
	pend []byte
	// dirty is set when bytes were written since the last Sync.
	dirty bool
}

// Open opens (creating it if needed) the file name in dir for appending.
func Open(dir, name string) (*File, error) {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, Perm)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("opening log file %s: not a regular file (%v)", p, st.Mode().Type())
	}
	return &File{Name: name, path: p, f: f, ino: inode(st), size: st.Size()}, nil
}

func inode(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}

// Ino is the file's inode number.
func (f *File) Ino() uint64 { return f.ino }

// Size is the number of bytes in the file (written by Flush).
func (f *File) Size() int64 { return f.size }

// Pending is the number of bytes appended but not yet written.
func (f *File) Pending() int { return len(f.pend) }

// Append adds b to what the next Flush writes.
func (f *File) Append(b []byte) { f.pend = append(f.pend, b...) }

// Buffer returns the pending buffer for appending in place; the caller
// stores the extended slice back with SetBuffer.
func (f *File) Buffer() []byte { return f.pend }

// SetBuffer stores a buffer obtained from Buffer and extended.
func (f *File) SetBuffer(b []byte) { f.pend = b }

// Flush writes the pending bytes. After an error the bytes not written
// stay pending.
func (f *File) Flush() error {
	for len(f.pend) > 0 {
		n, err := f.f.Write(f.pend)
		if n > 0 {
			f.size += int64(n)
			f.dirty = true
			rest := copy(f.pend, f.pend[n:])
			f.pend = f.pend[:rest]
		}
		if err != nil {
			return fmt.Errorf("writing log file: %w", err)
		}
	}
	// A big burst leaves a big buffer behind; do not keep it.
	if cap(f.pend) > 1<<20 {
		f.pend = nil
	}
	return nil
}

// Dirty reports whether bytes were written since the last Sync.
func (f *File) Dirty() bool { return f.dirty }

// Sync flushes the file to stable storage if anything was written since
// the last Sync.
func (f *File) Sync() error {
	sync := f.SyncLater()
	if sync == nil {
		return nil
	}
	if err := sync(); err != nil {
		f.dirty = true
		return err
	}
	return nil
}

// SyncLater returns a function that flushes what was written to the file
// so far to stable storage, or nil if nothing was written since the last
// sync. The function may run in another goroutine while the file is
// written to (not closed). The file counts as synced from now on: if the
// function fails, the caller must call Unsynced.
func (f *File) SyncLater() func() error {
	if !f.dirty {
		return nil
	}
	f.dirty = false
	file, path := f.f, f.path
	return func() error {
		if err := file.Sync(); err != nil {
			return fmt.Errorf("syncing %s: %w", path, err)
		}
		return nil
	}
}

// Unsynced marks the file as holding bytes not synced (a function from
// SyncLater failed).
func (f *File) Unsynced() { f.dirty = true }

// Close closes the file; pending bytes are dropped.
func (f *File) Close() error {
	f.pend = nil
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", f.path, err)
	}
	return nil
}

// Truncate cuts the file named name in dir back to size if it is still
// the file with inode ino and is longer: what a process that died wrote
// after its last checkpoint. It returns the number of bytes removed. A
// file that no longer exists or is another inode is left alone
// (removed == 0, replaced == true for another inode); a file shorter than
// size is reported as short.
func Truncate(dir, name string, ino uint64, size int64) (removed int64, replaced, short bool, err error) {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("recovering %s: %w", p, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, false, false, fmt.Errorf("recovering %s: %w", p, err)
	}
	if inode(st) != ino {
		return 0, true, false, nil
	}
	if st.Size() < size {
		return 0, false, true, nil
	}
	if st.Size() == size {
		return 0, false, false, nil
	}
	if err := f.Truncate(size); err != nil {
		return 0, false, false, fmt.Errorf("recovering %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		return 0, false, false, fmt.Errorf("recovering %s: %w", p, err)
	}
	return st.Size() - size, false, false, nil
}

// SyncDir flushes the directory entries of dir (new, renamed and removed
// files) to stable storage.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
