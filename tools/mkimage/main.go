// Command mkimage writes an OCI image tarball for each lklog package
// (pkg/NAME) from the static binaries in bin/ and the package's etc files,
// without Docker. Import one into LinuxKit's cache with
// `linuxkit cache import out/images/NAME.tar`; it is then known as
// lklog/NAME:TAG to `linuxkit build`. A package that `linuxkit pkg build`
// would turn into a different image, or whose config label `linuxkit
// build` would refuse, is refused (internal/lkpkg, internal/lkschema).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lklog/lklog/internal/lkpkg"
	"github.com/lklog/lklog/internal/ociimage"
)

func main() {
	out := flag.String("out", "out/images", "directory for the NAME.tar files")
	bin := flag.String("bin", "bin", "directory with the static binaries (make build)")
	tag := flag.String("tag", "dev", "image tag")
	repo := flag.String("repo", ".", "repository root (holds pkg/)")
	flag.Parse()
	if err := run(*repo, *bin, *out, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(repo, bin, out, tag string) error {
	dirs, err := lkpkg.List(repo)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, dir := range dirs {
		p, err := lkpkg.Load(dir)
		if err != nil {
			return err
		}
		img, err := p.Build(bin, tag)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := ociimage.Write(&buf, img); err != nil {
			return fmt.Errorf("%s: %w", p.Image, err)
		}
		dst := filepath.Join(out, p.Image+".tar")
		if err := os.WriteFile(dst+".tmp", buf.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			return err
		}
		fmt.Printf("%s: %s (%d files, %d bytes)\n", dst, img.Name, len(img.Files), buf.Len())
	}
	return nil
}
