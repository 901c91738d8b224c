// Package lkpkg reads lklog's LinuxKit packages (pkg/NAME: build.yml,
// Dockerfile, cmd/*, etc/) and turns one into a container image without a
// container engine. The image follows the packages' layout convention:
// each pkg/NAME/cmd/X is the static binary bin/X installed as /usr/bin/X,
// and pkg/NAME/etc/... is copied to /etc/....
package lkpkg

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

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
	Config     map[string]any // build.yml "config", as JSON values
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

// Load reads a package directory.
func Load(dir string) (*Package, error) {
	p := &Package{Dir: dir, Org: "lklog", Image: filepath.Base(dir)}
	if src, err := os.ReadFile(filepath.Join(dir, "build.yml")); err == nil {
		root, err := yml.Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("lkpkg: %s/build.yml: %w", dir, err)
		}
		if v := root.Get("org"); v != nil && v.Value != "" {
			p.Org = v.Value
		}
		if v := root.Get("image"); v != nil && v.Value != "" {
			p.Image = v.Value
		}
		if c := root.Get("config"); c != nil && c.Kind == yml.Map {
			p.Config = toJSON(c).(map[string]any)
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
	p.Entrypoint, p.Cmd, err = DockerfileCommand(filepath.Join(dir, "Dockerfile"))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if len(p.Entrypoint)+len(p.Cmd) == 0 && contains(p.Commands, p.Image) {
		p.Entrypoint = []string{"/usr/bin/" + p.Image}
	}
	return p, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// toJSON converts a YAML node to JSON-ready values; plain true/false and
// integers become booleans and numbers, as LinuxKit's YAML reader makes them.
func toJSON(n *yml.Node) any {
	switch n.Kind {
	case yml.Map:
		m := map[string]any{}
		for i, k := range n.Keys {
			m[k] = toJSON(n.Vals[i])
		}
		return m
	case yml.Seq:
		l := []any{}
		for _, it := range n.Items {
			l = append(l, toJSON(it))
		}
		return l
	}
	switch n.Value {
	case "true":
		return true
	case "false":
		return false
	}
	if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
		return i
	}
	return n.Value
}

// DockerfileCommand returns the exec-form ENTRYPOINT and CMD of the last
// stage of a Dockerfile.
func DockerfileCommand(dockerfile string) (entry, cmd []string, err error) {
	f, err := os.Open(dockerfile)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, rest, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		var dst *[]string
		switch strings.ToUpper(key) {
		case "FROM":
			entry, cmd = nil, nil // a new stage
			continue
		case "ENTRYPOINT":
			dst = &entry
		case "CMD":
			dst = &cmd
		default:
			continue
		}
		var v []string
		if err := json.Unmarshal([]byte(strings.TrimSpace(rest)), &v); err != nil {
			return nil, nil, fmt.Errorf("lkpkg: %s: %s is not in exec form (a JSON list): %w", dockerfile, key, err)
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("lkpkg: %s: %w", dockerfile, err)
	}
	return entry, cmd, nil
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
	if p.Config != nil {
		b, err := json.Marshal(p.Config)
		if err != nil {
			return nil, fmt.Errorf("lkpkg: %s: config: %w", p.Image, err)
		}
		img.Labels = map[string]string{ConfigLabel: string(b)}
	}
	return img, nil
}
