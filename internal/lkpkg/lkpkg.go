// Package lkpkg reads lklog's LinuxKit packages (pkg/NAME: build.yml,
// Dockerfile, cmd/*, etc/) and turns one into a container image without a
// container engine. The image follows the packages' layout convention:
// each pkg/NAME/cmd/X is the static binary bin/X installed as /usr/bin/X,
// and pkg/NAME/etc/... is copied to /etc/.... It refuses a package that
// `linuxkit pkg build` would turn into a different image: a build.yml it
// reads differently, a config label `linuxkit build` refuses, a Dockerfile
// that adds or places files otherwise.
package lkpkg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lklog/lklog/internal/lkschema"
	"github.com/lklog/lklog/internal/ociimage"
	"github.com/lklog/lklog/internal/vm/yml"
)

// ConfigLabel is the image label LinuxKit reads a package's default
// container settings (binds, capabilities, ...) from.
const ConfigLabel = "org.mobyproject.config"

// Package is one pkg/NAME directory.
type Package struct {
	Dir        string
	Org        string // build.yml "org", default lklog
	Image      string // build.yml "image", default the directory name
	Commands   []string
	Entrypoint []string
	Cmd        []string
	Label      string // the org.mobyproject.config label (JSON) from build.yml "config"; empty without one

	Dockerfile string // build.yml "dockerfile", default Dockerfile

	dockerfile *Dockerfile
}

// List returns the package directories under repo/pkg, sorted.
func List(repo string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(repo, "pkg"))
	if err != nil {
		return nil, fmt.Errorf("lkpkg: %w", err)
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(repo, "pkg", e.Name()))
		}
	}
	sort.Strings(dirs)
	return dirs, nil
}

// Load reads a package directory. Its build.yml must be one that
// `linuxkit pkg build` reads the same way (see readBuildYML).
func Load(dir string) (*Package, error) {
	p := &Package{Dir: dir, Org: "lklog", Image: filepath.Base(dir), Dockerfile: "Dockerfile"}
	if src, err := os.ReadFile(filepath.Join(dir, "build.yml")); err == nil {
		if err := p.readBuildYML(string(src)); err != nil {
			return nil, fmt.Errorf("lkpkg: %s/build.yml: %w", dir, err)
		}
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("lkpkg: %w", err)
	}
	cmds, err := os.ReadDir(filepath.Join(dir, "cmd"))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("lkpkg: %w", err)
	}
	for _, c := range cmds {
		if c.IsDir() {
			p.Commands = append(p.Commands, c.Name())
		}
	}
	p.dockerfile, err = ParseDockerfile(filepath.Join(dir, p.Dockerfile))
	switch {
	case err == nil:
		p.Entrypoint, p.Cmd = p.dockerfile.Entrypoint, p.dockerfile.Cmd
	case !os.IsNotExist(err):
		return nil, err
	}
	if len(p.Entrypoint)+len(p.Cmd) == 0 && contains(p.Commands, p.Image) {
		p.Entrypoint = []string{"/usr/bin/" + p.Image}
	}
	return p, nil
}

// readBuildYML checks build.yml against LinuxKit's pkgInfo (field types,
// no unknown keys), requires image and org (without org LinuxKit would
// name the image linuxkit/NAME) and renders "config" as the label.
func (p *Package) readBuildYML(src string) error {
	root, err := yml.Parse(src)
	if err != nil {
		return err
	}
	var es lkschema.Errors
	decode(lkschema.BuildYML, root, nil, &es)
	if len(es) > 0 {
		return yml.Check(root, es)
	}
	for _, f := range []struct {
		key, why string
		dst      *string
	}{
		{"image", "linuxkit pkg build refuses a package without it", &p.Image},
		{"org", "without it linuxkit pkg build names the image linuxkit/NAME", &p.Org},
	} {
		v := root.Get(f.key)
		if v == nil || yml.Resolve(v) == nil || v.Value == "" {
			return fmt.Errorf("%s is required: %s", f.key, f.why)
		}
		*f.dst = v.Value
	}
	if d := root.Get("dockerfile"); d != nil && yml.Resolve(d) != nil && d.Value != "" {
		if !filepath.IsLocal(d.Value) {
			return fmt.Errorf("dockerfile %q must be a path inside the package directory", d.Value)
		}
		p.Dockerfile = d.Value
	}
	if c := root.Get("config"); c != nil {
		p.Label, err = Label(c)
		var les lkschema.Errors
		if errors.As(err, &les) {
			return yml.Check(root, les)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Dockerfile is what lkpkg reads of a Dockerfile's last stage: the one
// that becomes the image.
type Dockerfile struct {
	From       string // the base image of the last stage
	Entrypoint []string
	Cmd        []string
	Copies     []Copy
	Other      []string // instructions `make images` does not reproduce (ENV, RUN, USER, ...)
}

// Copy is one COPY or ADD of the build context.
type Copy struct {
	Line int
	Srcs []string
	Dst  string
	Opts []string // --from=..., --chmod=..., ...
}

// ParseDockerfile reads a Dockerfile: continuation lines are joined,
// ENTRYPOINT and CMD must be in exec form (a JSON list).
func ParseDockerfile(dockerfile string) (*Dockerfile, error) {
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		return nil, err
	}
	return parseDockerfile(dockerfile, src)
}

func parseDockerfile(dockerfile string, src []byte) (*Dockerfile, error) {
	d := &Dockerfile{}
	var cont string
	start := 0
	for i, raw := range strings.Split(string(src), "\n") {
		line := strings.TrimSpace(raw)
		if cont == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cont == "" {
			start = i + 1
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		key, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch key = strings.ToUpper(key); key {
		case "FROM":
			f := strings.Fields(rest)
			if len(f) == 0 {
				return nil, fmt.Errorf("lkpkg: %s:%d: FROM without an image", dockerfile, start)
			}
			*d = Dockerfile{From: f[0]} // a new stage
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				return nil, fmt.Errorf("lkpkg: %s:%d: %s is not in exec form (a JSON list): %w", dockerfile, start, key, err)
			}
			if key == "CMD" {
				d.Cmd = v
			} else {
				d.Entrypoint = v
			}
		case "COPY", "ADD":
			c := Copy{Line: start}
			f := strings.Fields(rest)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				c.Opts, f = append(c.Opts, f[0]), f[1:]
			}
			if len(f) < 2 {
				return nil, fmt.Errorf("lkpkg: %s:%d: %s needs a source and a destination", dockerfile, start, key)
			}
			c.Srcs, c.Dst = f[:len(f)-1], f[len(f)-1]
			if key == "ADD" {
				c.Opts = append(c.Opts, "ADD")
			}
			d.Copies = append(d.Copies, c)
		default:
			d.Other = append(d.Other, fmt.Sprintf("line %d: %s", start, key))
		}
	}
	return d, nil
}

// DockerfileCommand returns the exec-form ENTRYPOINT and CMD of the last
// stage of a Dockerfile.
func DockerfileCommand(dockerfile string) (entry, cmd []string, err error) {
	d, err := ParseDockerfile(dockerfile)
	if err != nil {
		return nil, nil, err
	}
	return d.Entrypoint, d.Cmd, nil
}

// checkDockerfile compares the image `make images` assembles with the one
// `docker build` makes from the package's Dockerfile: a scratch base,
// nothing but COPY, ENTRYPOINT and CMD, and COPY putting exactly the same
// files in the same places.
func (p *Package) checkDockerfile(files []string) error {
	if p.dockerfile == nil {
		return nil
	}
	d, name := p.dockerfile, filepath.Join(p.Dir, p.Dockerfile)
	if d.From != "scratch" {
		return fmt.Errorf("lkpkg: %s: the image is built FROM %q; `make images` only makes scratch images", name, d.From)
	}
	if len(d.Other) > 0 {
		return fmt.Errorf("lkpkg: %s: %s in the last stage: `make images` would make a different image (it reproduces only COPY, ENTRYPOINT and CMD)", name, strings.Join(d.Other, ", "))
	}
	copied := map[string]bool{}
	for _, c := range d.Copies {
		if len(c.Opts) > 0 {
			return fmt.Errorf("lkpkg: %s:%d: COPY %s: `make images` copies files as they are in the package", name, c.Line, strings.Join(c.Opts, " "))
		}
		dir := strings.HasSuffix(c.Dst, "/") || len(c.Srcs) > 1
		for _, s := range c.Srcs {
			dst := path.Clean("/" + c.Dst)
			if dir {
				dst = path.Join(dst, path.Base(s))
			}
			want, ok := p.contextFile(s)
			if !ok {
				return fmt.Errorf("lkpkg: %s:%d: COPY %s: not a file `make images` provides (cmd/NAME as usr/bin/NAME, or etc/...)", name, c.Line, s)
			}
			if want != dst {
				return fmt.Errorf("lkpkg: %s:%d: COPY %s to %s, but `make images` puts it at %s", name, c.Line, s, dst, want)
			}
			copied[dst] = true
		}
	}
	for _, f := range files {
		if !copied[f] {
			return fmt.Errorf("lkpkg: %s: no COPY puts %s in the image, which `make images` adds", name, f)
		}
	}
	return nil
}

// contextFile maps a COPY source in the package directory to where
// `make images` installs it.
func (p *Package) contextFile(src string) (string, bool) {
	s := path.Clean(strings.TrimPrefix(src, "./"))
	if b, ok := strings.CutPrefix(s, "usr/bin/"); ok && contains(p.Commands, b) {
		return "/usr/bin/" + b, true
	}
	if strings.HasPrefix(s, "etc/") {
		if fi, err := os.Stat(filepath.Join(p.Dir, filepath.FromSlash(s))); err == nil && fi.Mode().IsRegular() {
			return "/" + s, true
		}
	}
	return "", false
}

// Ref is the package's image reference with tag, as LinuxKit expands it.
func (p *Package) Ref(tag string) string {
	return "docker.io/" + p.Org + "/" + p.Image + ":" + tag
}

// Build assembles the image: binaries from binDir, etc files, command and
// LinuxKit's config label.
func (p *Package) Build(binDir, tag string) (*ociimage.Image, error) {
	img := &ociimage.Image{Name: p.Ref(tag), Entrypoint: p.Entrypoint, Cmd: p.Cmd}
	for _, c := range p.Commands {
		data, err := os.ReadFile(filepath.Join(binDir, c))
		if err != nil {
			return nil, fmt.Errorf("lkpkg: %s: binary of cmd/%s: %w (run `make build`)", p.Image, c, err)
		}
		img.Files = append(img.Files, ociimage.File{Path: "/usr/bin/" + c, Mode: 0o755, Data: data})
	}
	etc := filepath.Join(p.Dir, "etc")
	err := filepath.WalkDir(etc, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == etc {
				return filepath.SkipDir
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(etc, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		img.Files = append(img.Files, ociimage.File{Path: "/etc/" + filepath.ToSlash(rel), Mode: mode, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lkpkg: %s: %w", p.Image, err)
	}
	if len(img.Files) == 0 {
		return nil, fmt.Errorf("lkpkg: %s: nothing to put in the image (no cmd/ and no etc/)", p.Image)
	}
	var paths []string
	for _, f := range img.Files {
		paths = append(paths, f.Path)
	}
	if err := p.checkDockerfile(paths); err != nil {
		return nil, err
	}
	if p.Label != "" {
		img.Labels = map[string]string{ConfigLabel: p.Label}
	}
	return img, nil
}
