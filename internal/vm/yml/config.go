package yml

import (
	"fmt"
	"path"
	"strings"

	"github.com/lklog/lklog/internal/lkschema"
)

// Config is the part of a LinuxKit image description lklog's tools read.
type Config struct {
	Kernel     Kernel
	Init       []string
	Onboot     []Entry
	Onshutdown []Entry
	Services   []Entry
	Files      []File
}

// Kernel is the "kernel" section.
type Kernel struct {
	Image   string
	Cmdline string
}

// Entry is one onboot, onshutdown or services item.
type Entry struct {
	Name         string
	Image        string
	Command      []string
	Binds        []string // binds and binds.add
	Capabilities []string // capabilities and capabilities.add
	Env          []string
	Line         int
}

// File is one "files" item.
type File struct {
	Path     string
	Contents string
	Mode     string
}

// Package is the name of the lklog package an image reference names, e.g.
// "memlogd" for "lklog/memlogd:v0.1" or "docker.io/lklog/memlogd@sha256:...".
// ok is false for images of other organisations.
func Package(image string) (name string, ok bool) {
	ref := image
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	dir, base := path.Split(ref)
	if path.Base(strings.TrimSuffix(dir, "/")) != "lklog" {
		return "", false
	}
	return base, base != ""
}

// ParseConfig parses a LinuxKit yml. It refuses what `linuxkit build`
// refuses (see internal/lkschema: field types as LinuxKit's YAML reader
// gives them, unknown fields, missing name or image, duplicate service
// names), naming the field and its line.
func ParseConfig(src string) (*Config, error) {
	root, err := Parse(src)
	if err != nil {
		return nil, err
	}
	if root.Kind != Map {
		return nil, fmt.Errorf("yml: top level is not a mapping")
	}
	if err := Check(root, lkschema.ValidateConfig(Value(root))); err != nil {
		return nil, err
	}
	c := &Config{}
	for i, key := range root.Keys {
		v := root.Vals[i]
		switch key {
		case "kernel":
			c.Kernel.Image = scalar(v.Get("image"))
			c.Kernel.Cmdline = scalar(v.Get("cmdline"))
		case "init":
			if c.Init, err = strings1(v, "init"); err != nil {
				return nil, err
			}
		case "onboot", "onshutdown", "services":
			entries, err := parseEntries(v, key)
			if err != nil {
				return nil, err
			}
			switch key {
			case "onboot":
				c.Onboot = entries
			case "onshutdown":
				c.Onshutdown = entries
			default:
				c.Services = entries
			}
		case "files":
			if v.Kind != Seq {
				return nil, fmt.Errorf("yml: line %d: files is not a sequence", v.Line)
			}
			for _, it := range v.Items {
				c.Files = append(c.Files, File{Path: scalar(it.Get("path")), Contents: scalar(it.Get("contents")), Mode: scalar(it.Get("mode"))})
			}
		}
	}
	return c, nil
}

func scalar(n *Node) string {
	if n == nil || n.Kind != Scalar {
		return ""
	}
	return n.Value
}

func strings1(n *Node, what string) ([]string, error) {
	if n == nil || (n.Kind == Scalar && n.Value == "") {
		return nil, nil
	}
	if n.Kind != Seq {
		return nil, fmt.Errorf("yml: line %d: %s is not a list", n.Line, what)
	}
	var out []string
	for _, it := range n.Items {
		if it.Kind != Scalar {
			return nil, fmt.Errorf("yml: line %d: %s has a non-scalar item", it.Line, what)
		}
		out = append(out, it.Value)
	}
	return out, nil
}

func parseEntries(n *Node, section string) ([]Entry, error) {
	if n.Kind == Scalar && n.Value == "" {
		return nil, nil
	}
	if n.Kind != Seq {
		return nil, fmt.Errorf("yml: line %d: %s is not a sequence", n.Line, section)
	}
	var out []Entry
	names := map[string]bool{}
	for _, it := range n.Items {
		if it.Kind != Map {
			return nil, fmt.Errorf("yml: line %d: %s item is not a mapping", it.Line, section)
		}
		e := Entry{Name: scalar(it.Get("name")), Image: scalar(it.Get("image")), Line: it.Line}
		if e.Name == "" || e.Image == "" {
			return nil, fmt.Errorf("yml: line %d: %s item needs name and image", it.Line, section)
		}
		if names[e.Name] {
			return nil, fmt.Errorf("yml: line %d: duplicate %s name %q", it.Line, section, e.Name)
		}
		names[e.Name] = true
		for _, f := range []struct {
			key string
			dst *[]string
		}{
			{"command", &e.Command}, {"binds", &e.Binds}, {"binds.add", &e.Binds},
			{"capabilities", &e.Capabilities}, {"capabilities.add", &e.Capabilities}, {"env", &e.Env},
		} {
			v, err := strings1(it.Get(f.key), section+"."+e.Name+"."+f.key)
			if err != nil {
				return nil, err
			}
			*f.dst = append(*f.dst, v...)
		}
		out = append(out, e)
	}
	return out, nil
}

// Check turns the errors lkschema found in the document root into one
// error that gives each one's line, or nil if there are none.
func Check(root *Node, es lkschema.Errors) error {
	if len(es) == 0 {
		return nil
	}
	msgs := make([]string, len(es))
	for i, e := range es {
		n := root.At(e.Path)
		line := n.Line
		for j, k := range n.Keys {
			if k == e.Key && j < len(n.KLine) {
				line = n.KLine[j]
			}
		}
		msgs[i] = fmt.Sprintf("line %d: %s", line, e)
	}
	return fmt.Errorf("yml: not valid for LinuxKit: %s", strings.Join(msgs, "; "))
}
