// Package logfile keeps one append-only log file per source in a
// directory, rotates it as LinuxKit's logwrite does (x.log -> x.log.0 ->
// ... -> x.log.<N-1>), optionally gzips rotated files and keeps the whole
// directory under a quota. Source names are untrusted: Name maps any byte
// string to a file name that stays inside the directory and cannot clash
// with another source's files.
package logfile

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Suffix ends the name of every active log file.
const Suffix = ".log"

// MaxNameLen bounds the part of a file name that comes from the source. The
// longest suffix added to it is ".log.<index>.gz" (with at most 7 digits of
// index, 15 bytes) and the temporary names of compression add 5 more, so
// every file name stays below the 255 bytes Linux file systems allow.
const MaxNameLen = 200

// hashLen is the number of hex digits of SHA-256 kept in a shortened name.
const hashLen = 16

// Name returns the file name (without Suffix) under which source is
// written. The mapping:
//
//   - ASCII letters, digits and the bytes . - _ + @ = , are kept, except a
//     '.' at the start (so a name never starts with a dot: no hidden files,
//     no "." or "..").
//   - Every other byte (including '/', '%', '~', space, control
//     characters and every byte of a non-ASCII character) becomes %XX with
//     two upper-case hex digits.
//   - The empty source becomes "%empty" (which escaping cannot produce:
//     its hex digits would be upper case).
//   - If the result is longer than MaxNameLen bytes it is cut to at most
//     MaxNameLen-17 bytes (never inside a %XX) and "~" plus the first 16
//     hex digits of the SHA-256 of the source are appended ('~' is always
//     escaped otherwise, so shortened names never equal unshortened ones).
//
// The mapping is stable (it depends on the source bytes only) and, but for
// SHA-256 collisions, one-to-one. Ordinary LinuxKit names such as
// "fill-the-logs.out", "onboot.000-dhcpcd" or "kmsg" are kept as they are.
func Name(source string) string {
	if source == "" {
		return "%empty"
	}
	var b strings.Builder
	b.Grow(len(source))
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(source); i++ {
		c := source[i]
		if keep(c) && !(i == 0 && c == '.') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	name := b.String()
	if len(name) <= MaxNameLen {
		return name
	}
	cut := MaxNameLen - 1 - hashLen
	// Do not cut inside an escape: a '%' in the last two kept bytes
	// starts one.
	for i := cut - 2; i < cut; i++ {
		if name[i] == '%' {
			cut = i
			break
		}
	}
	sum := sha256.Sum256([]byte(source))
	return name[:cut] + "~" + hex.EncodeToString(sum[:])[:hashLen]
}

// keep reports whether c is copied into file names as it is.
func keep(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '.', '-', '_', '+', '@', '=', ',':
		return true
	}
	return false
}

// FileName is the active file of source: Name(source) + Suffix.
func FileName(source string) string { return Name(source) + Suffix }
