// Package kmod reads kernel module metadata (the .modinfo section of a .ko
// file) and orders a set of modules so that every module comes after the
// modules it depends on, as modprobe would load them.
package kmod

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Info is what the loader needs to know about one module file.
type Info struct {
	Name    string   // canonical name: file base without .ko, '-' replaced by '_'
	Path    string   // path of the .ko inside the kernel package
	Depends []string // canonical names from the modinfo "depends=" key
	SoftPre []string // "softdep=pre: a b" modules, loaded first when present
}

// CanonicalName turns a module file path or name into the kernel's module
// name: base name without ".ko" (and without a compression suffix), with
// dashes replaced by underscores.
func CanonicalName(p string) string {
	b := path.Base(p)
	for _, suf := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, suf)
	}
	b = strings.TrimSuffix(b, ".ko")
	return strings.ReplaceAll(b, "-", "_")
}

// ParseModinfo splits the raw contents of a .modinfo section (NUL-separated
// key=value strings) into the fields Info carries.
func ParseModinfo(filePath string, section []byte) Info {
	info := Info{Name: CanonicalName(filePath), Path: filePath}
	for _, kv := range bytes.Split(section, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			continue
		}
		switch k {
		case "name":
			if v != "" {
				info.Name = CanonicalName(v)
			}
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					info.Depends = append(info.Depends, CanonicalName(d))
				}
			}
		case "softdep":
			// e.g. "pre: crc32c" or "pre: a b post: c"
			fields := strings.Fields(v)
			inPre := false
			for _, f := range fields {
				switch f {
				case "pre:":
					inPre = true
				case "post:":
					inPre = false
				default:
					if inPre {
						info.SoftPre = append(info.SoftPre, CanonicalName(f))
					}
				}
			}
		}
	}
	return info
}

// ReadInfo parses the ELF module in r (an uncompressed .ko) and returns its
// modinfo. filePath is recorded in the result and used for the name.
func ReadInfo(filePath string, r io.ReaderAt) (Info, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return Info{}, fmt.Errorf("kmod: %s: %w", filePath, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return Info{}, fmt.Errorf("kmod: %s: no .modinfo section", filePath)
	}
	data, err := sec.Data()
	if err != nil {
		return Info{}, fmt.Errorf("kmod: %s: reading .modinfo: %w", filePath, err)
	}
	return ParseModinfo(filePath, data), nil
}

// Resolve returns the modules named in want together with all their
// dependencies (hard ones, and soft "pre" ones that exist in index), in an
// order where each module follows its dependencies. Names in builtin are
// built into the kernel and are skipped silently. A wanted or required module
// that is neither in index nor builtin is an error; so is a dependency cycle.
func Resolve(index map[string]Info, builtin map[string]bool, want []string) ([]Info, error) {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var out []Info
	var visit func(name string, soft bool, chain []string) error
	visit = func(name string, soft bool, chain []string) error {
		name = CanonicalName(name)
		if builtin[name] {
			return nil
		}
		info, ok := index[name]
		if !ok {
			if soft {
				return nil
			}
			by := "the request"
			if len(chain) > 0 {
				by = chain[len(chain)-1]
			}
			return fmt.Errorf("kmod: module %q not found (needed by %s)", name, by)
		}
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("kmod: dependency cycle: %s -> %s", strings.Join(chain, " -> "), name)
		}
		state[name] = visiting
		next := append(append([]string(nil), chain...), name)
		for _, d := range info.SoftPre {
			if err := visit(d, true, next); err != nil {
				return err
			}
		}
		deps := append([]string(nil), info.Depends...)
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, false, next); err != nil {
				return err
			}
		}
		state[name] = done
		out = append(out, info)
		return nil
	}
	for _, w := range want {
		if err := visit(w, false, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ParseBuiltin reads a modules.builtin file (one path per line, such as
// "kernel/fs/ext4/ext4.ko") and returns the set of canonical names.
func ParseBuiltin(data []byte) map[string]bool {
	set := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			set[CanonicalName(line)] = true
		}
	}
	return set
}
