package logfile

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/google/renameio/v2"
)

// GzSuffix ends the name of a compressed rotated file.
const GzSuffix = ".gz"

// Rotated is the name of the index'th rotated file of the active file
// name ("x.log" -> "x.log.<index>"), without compression suffix.
func Rotated(name string, index int) string { return name + "." + strconv.Itoa(index) }

// exists reports whether p exists (an error other than "does not exist"
// counts as existing, so nothing is overwritten by mistake).
func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

// Rotate renames dir/name to name.0, first moving name.0 to name.1 and so
// on up to name.<keep-1> (compressed or not); the oldest is deleted when
// all keep places are taken. It is safe to call again after a failure: a
// failed step leaves a free place that the next call fills instead of
// deleting another file. With keep < 1 the file is deleted instead.
func Rotate(dir, name string, keep int) error {
	active := filepath.Join(dir, name)
	if keep < 1 {
		if err := os.Remove(active); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating %s: %w", active, err)
		}
		return nil
	}
	slot := func(i int) (plain, gz string) {
		p := filepath.Join(dir, Rotated(name, i))
		return p, p + GzSuffix
	}
	free := -1
	for i := 0; i < keep; i++ {
		p, g := slot(i)
		if !exists(p) && !exists(g) {
			free = i
			break
		}
	}
	if free < 0 {
		free = keep - 1
		p, g := slot(free)
		for _, q := range []string{p, g} {
			if err := os.Remove(q); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("rotating %s: removing the oldest: %w", active, err)
			}
		}
	}
	for i := free; i > 0; i-- {
		fromP, fromG := slot(i - 1)
		toP, toG := slot(i)
		for _, mv := range [][2]string{{fromP, toP}, {fromG, toG}} {
			if err := os.Rename(mv[0], mv[1]); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("rotating %s: %w", active, err)
			}
		}
	}
	to, _ := slot(0)
	if err := os.Rename(active, to); err != nil {
		return fmt.Errorf("rotating %s: %w", active, err)
	}
	return nil
}

// CompressRotated gzips every uncompressed rotated file of name
// (name.<i> -> name.<i>.gz, i < keep); a file left uncompressed by an
// earlier failure is compressed now. The compressed file replaces the
// plain one atomically (written, synced, renamed, then the plain one is
// removed), so a crash leaves one complete copy. It returns the first
// error after trying every file.
func CompressRotated(dir, name string, keep int) error {
	var first error
	for i := 0; i < keep; i++ {
		p := filepath.Join(dir, Rotated(name, i))
		if !exists(p) {
			continue
		}
		if err := compressFile(p); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func compressFile(p string) error {
	gzPath := p + GzSuffix
	if exists(gzPath) {
		// A crash after the rename and before the removal: the .gz is
		// complete.
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("compressing %s: %w", p, err)
		}
		return nil
	}
	src, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("compressing %s: %w", p, err)
	}
	defer src.Close()
	pf, err := renameio.NewPendingFile(gzPath, renameio.WithTempDir(filepath.Dir(p)), renameio.WithStaticPermissions(Perm))
	if err != nil {
		return fmt.Errorf("compressing %s: %w", p, err)
	}
	defer pf.Cleanup()
	zw := gzip.NewWriter(pf)
	zw.Name = filepath.Base(p)
	if _, err := io.Copy(zw, src); err != nil {
		return fmt.Errorf("compressing %s: %w", p, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing %s: %w", p, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("compressing %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("compressing %s: removing the plain copy: %w", p, err)
	}
	return nil
}

// IsRotated reports whether a directory entry name is a rotated log file
// (x.log.<digits> or x.log.<digits>.gz) and returns its index.
func IsRotated(name string) (int, bool) {
	base := strings.TrimSuffix(name, GzSuffix)
	i := strings.LastIndexByte(base, '.')
	if i < 0 || i == len(base)-1 || !strings.HasSuffix(base[:i], Suffix) || len(base[:i]) == len(Suffix) {
		return 0, false
	}
	n, err := strconv.Atoi(base[i+1:])
	if err != nil || n < 0 || base[i+1] == '+' {
		return 0, false
	}
	return n, true
}

// IsTemp reports whether a directory entry name is a temporary file left
// by an interrupted compression or state update (renameio names them
// "." + final name + random digits).
func IsTemp(name, stateName string) bool {
	if !strings.HasPrefix(name, ".") {
		return false
	}
	rest := strings.TrimRight(name[1:], "0123456789")
	if len(rest) == len(name)-1 {
		return false
	}
	if rest == stateName {
		return true
	}
	if !strings.HasSuffix(rest, GzSuffix) {
		return false
	}
	_, ok := IsRotated(rest)
	return ok
}

// RemoveTemps deletes the temporary files IsTemp recognises in dir.
func RemoveTemps(dir, stateName string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cleaning %s: %w", dir, err)
	}
	var first error
	for _, e := range ents {
		if e.Type().IsRegular() && IsTemp(e.Name(), stateName) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && first == nil {
				first = fmt.Errorf("cleaning %s: %w", dir, err)
			}
		}
	}
	return first
}

// ErrOverQuota is returned by EnforceQuota when the directory is still
// over its quota after every rotated file was deleted.
var ErrOverQuota = errors.New("over the quota with only active log files left")

// EnforceQuota keeps the total size of the regular files in dir at most
// max bytes by deleting rotated log files, oldest (by modification time,
// then highest index) first. Active files and other files count but are
// never deleted. It returns the names deleted and the total left.
func EnforceQuota(dir string, max int64) (deleted []string, total int64, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("quota of %s: %w", dir, err)
	}
	type cand struct {
		name  string
		size  int64
		mtime int64
		index int
	}
	var cands []cand
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		total += info.Size()
		if idx, ok := IsRotated(e.Name()); ok {
			cands = append(cands, cand{e.Name(), info.Size(), info.ModTime().UnixNano(), idx})
		}
	}
	if total <= max {
		return nil, total, nil
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].mtime != cands[j].mtime {
			return cands[i].mtime < cands[j].mtime
		}
		if cands[i].index != cands[j].index {
			return cands[i].index > cands[j].index
		}
		return cands[i].name < cands[j].name
	})
	for _, c := range cands {
		if total <= max {
			break
		}
		if err := os.Remove(filepath.Join(dir, c.name)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return deleted, total, fmt.Errorf("quota of %s: %w", dir, err)
		}
		deleted = append(deleted, c.name)
		total -= c.size
	}
	if total > max {
		return deleted, total, fmt.Errorf("quota of %s: %d bytes > %d: %w", dir, total, max, ErrOverQuota)
	}
	return deleted, total, nil
}
