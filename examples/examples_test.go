// Package examples holds LinuxKit image descriptions that use lklog's
// packages; this test checks their structure.
package examples

import (
	"context"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/lkpkg"
	"github.com/lklog/lklog/internal/lkschema"
	"github.com/lklog/lklog/internal/vm/yml"
)

// pending are lklog packages the examples use whose package (pkg/NAME with
// build.yml) is still being written, with the issue that adds it. Remove a
// name once its package lands: the test fails while a finished package is
// still listed here.
var pending = map[string]string{}

// needs lists, per lklog package used as a service, binds ("src:dst") and
// capabilities it cannot work without, from the entry or the package's
// build.yml config. A bind of a parent directory (/dev:/dev) covers one
// below it (/dev/kmsg:/dev/kmsg).
var needs = map[string]struct{ binds, caps []string }{
	"kmsg":     {binds: []string{"/dev/kmsg:/dev/kmsg"}, caps: []string{"CAP_SYSLOG"}},
	"logwrite": {binds: []string{"/var/log:/var/log", "/var/run:/var/run"}},
	// query and control sockets; state (cursors, spools) on the disk;
	// its configuration from the yml's files section.
	"logforward": {binds: []string{"/var/run:/var/run", "/var/lib:/var/lib", "/etc/logforward:/etc/logforward"}},
}

func load(t *testing.T) map[string]*yml.Config {
	t.Helper()
	files, err := filepath.Glob("*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	out := map[string]*yml.Config{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := yml.ParseConfig(string(src))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = cfg
	}
	return out
}

// packageConfig reads the binds and capabilities a package's image gives
// its containers by default: its org.mobyproject.config label, made from
// build.yml "config" as `linuxkit pkg build` and `make images` make it.
func packageConfig(t *testing.T, name string) (binds, caps []string, ok bool) {
	dir := filepath.Join("..", "pkg", name)
	if _, err := os.Stat(filepath.Join(dir, "build.yml")); err != nil {
		return nil, nil, false
	}
	p, err := lkpkg.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Label == "" {
		return nil, nil, true
	}
	v, err := lkschema.ParseJSON([]byte(p.Label))
	if err != nil {
		t.Fatalf("pkg/%s label: %v", name, err)
	}
	label := v.(*lkschema.Obj)
	for _, pair := range []struct {
		key string
		dst *[]string
	}{{"binds", &binds}, {"binds.add", &binds}, {"capabilities", &caps}, {"capabilities.add", &caps}} {
		if l, ok := label.Get(pair.key); ok {
			for _, it := range l.([]any) {
				*pair.dst = append(*pair.dst, it.(string))
			}
		}
	}
	return binds, caps, true
}

// TestLinuxKitRules checks every yml of the project, the examples and the
// QEMU cases, with LinuxKit's rules (internal/lkschema): what passes here
// also passes `linuxkit build`.
func TestLinuxKitRules(t *testing.T) {
	files, err := filepath.Glob("*.yml")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := filepath.Glob(filepath.Join("..", "test", "cases", "*", "test.yml"))
	if err != nil || len(files) == 0 || len(cases) == 0 {
		t.Fatalf("examples %v, cases %v: %v", files, cases, err)
	}
	for _, f := range append(files, cases...) {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		root, err := yml.Parse(string(src))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := yml.Check(root, lkschema.ValidateConfig(yml.Value(root))); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestPackagesExist(t *testing.T) {
	used := map[string]bool{}
	for file, cfg := range load(t) {
		images := append([]string(nil), cfg.Init...)
		for _, list := range [][]yml.Entry{cfg.Onboot, cfg.Services} {
			for _, e := range list {
				images = append(images, e.Image)
			}
		}
		for _, img := range images {
			if !strings.Contains(img, ":") && !strings.Contains(img, "@") {
				t.Errorf("%s: image %s has no tag", file, img)
			}
			if p, ok := yml.Package(img); ok {
				used[p] = true
			}
		}
	}
	for p := range used {
		_, err := os.Stat(filepath.Join("..", "pkg", p, "build.yml"))
		issue, isPending := pending[p]
		switch {
		case err == nil && isPending:
			t.Errorf("pkg/%s/build.yml exists now: remove %q from pending in examples_test.go", p, p)
		case err != nil && isPending:
			t.Logf("lklog/%s: package not there yet (%s)", p, issue)
		case err != nil:
			t.Errorf("examples use lklog/%s but pkg/%s/build.yml is missing: %v", p, p, err)
		}
	}
	for p := range pending {
		if !used[p] {
			t.Errorf("pending lists %q, which no example uses", p)
		}
	}
}

func TestMemlogdInInit(t *testing.T) {
	for file, cfg := range load(t) {
		inInit := false
		for _, img := range cfg.Init {
			if p, _ := yml.Package(img); p == "memlogd" {
				inInit = true
			}
		}
		if !inInit {
			t.Errorf("%s: lklog/memlogd is not in the init section (it must start before the first onboot container)", file)
		}
		for _, list := range [][]yml.Entry{cfg.Onboot, cfg.Services} {
			for _, e := range list {
				if p, _ := yml.Package(e.Image); p == "memlogd" {
					t.Errorf("%s: memlogd runs as %s; it belongs in init", file, e.Name)
				}
			}
		}
	}
}

func TestServiceBindsAndCapabilities(t *testing.T) {
	for file, cfg := range load(t) {
		for _, e := range cfg.Services {
			p, ok := yml.Package(e.Image)
			need, hasNeeds := needs[p]
			if !ok {
				continue
			}
			if !hasNeeds {
				t.Errorf("%s: service %s: lklog/%s has no entry in needs: say which binds and capabilities it cannot work without", file, e.Name, p)
				continue
			}
			if issue, ok := pending[p]; ok {
				t.Logf("%s: service %s: lklog/%s not there yet (%s): binds and capabilities not checked", file, e.Name, p, issue)
				continue
			}
			binds, caps := e.Binds, e.Capabilities
			if pb, pc, ok := packageConfig(t, p); ok {
				binds, caps = append(binds, pb...), append(caps, pc...)
			}
			for _, b := range need.binds {
				if !covered(binds, b) {
					t.Errorf("%s: service %s (lklog/%s) lacks bind %s (has %q)", file, e.Name, p, b, binds)
				}
			}
			for _, c := range need.caps {
				if !contains(caps, c) && !contains(caps, "all") && !contains(caps, "CAP_ALL") {
					t.Errorf("%s: service %s (lklog/%s) lacks capability %s (has %q)", file, e.Name, p, c, caps)
				}
			}
		}
	}
}

func TestPersistentMountsVarLog(t *testing.T) {
	cfg := load(t)["persistent.yml"]
	if cfg == nil {
		t.Fatal("no persistent.yml")
	}
	var order []string
	mountsVarLog := false
	for _, e := range cfg.Onboot {
		order = append(order, e.Name)
		if strings.HasPrefix(e.Image, "linuxkit/mount:") && len(e.Command) > 0 && strings.TrimSuffix(e.Command[len(e.Command)-1], "/") == "/var/log" {
			mountsVarLog = true
		}
	}
	if !mountsVarLog {
		t.Errorf("persistent.yml: no linuxkit/mount onboot entry mounting /var/log")
	}
	if s := strings.Join(order, " "); !strings.Contains(s, "format mount") {
		t.Errorf("persistent.yml: onboot order %q: format must come right before mount", s)
	}
	var logwrite bool
	for _, e := range cfg.Services {
		if p, _ := yml.Package(e.Image); p == "logwrite" {
			logwrite = true
		}
	}
	if !logwrite {
		t.Error("persistent.yml: no logwrite service")
	}
}

// TestLinuxkitDryRun validates the examples with LinuxKit's own tool when it
// is installed (the Go module proxy does not serve it, so CI has none).
func TestLinuxkitDryRun(t *testing.T) {
	lk, err := exec.LookPath("linuxkit")
	if err != nil {
		t.Skip("linuxkit is not on PATH: build it from github.com/linuxkit/linuxkit (src/cmd/linuxkit) to validate the examples with `linuxkit build --dry-run`")
	}
	for file := range load(t) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, lk, "build", "--dry-run", file).CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("linuxkit build --dry-run %s: %v\n%s", file, err, out)
		}
	}
}

// covered reports whether one of binds ("src:dst[:opts]") mounts need
// ("src:dst"), itself or through a parent directory.
func covered(binds []string, need string) bool {
	nsrc, ndst, _ := strings.Cut(need, ":")
	for _, b := range binds {
		parts := strings.SplitN(b, ":", 3)
		if len(parts) < 2 {
			continue
		}
		src, dst := path.Clean(parts[0]), path.Clean(parts[1])
		rel, ok := strings.CutPrefix(nsrc, src)
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && src != "/") {
			continue
		}
		if path.Join(dst, rel) == path.Clean(ndst) {
			return true
		}
	}
	return false
}

func TestCovered(t *testing.T) {
	binds := []string{"/dev:/dev", "/var/log:/var/log:rshared", "/devices:/x"}
	for need, want := range map[string]bool{
		"/dev/kmsg:/dev/kmsg": true,
		"/dev:/dev":           true,
		"/var/log:/var/log":   true,
		"/var/run:/var/run":   false,
		"/devicesx:/devicesx": false,
		"/dev/kmsg:/kmsg":     false,
	} {
		if got := covered(binds, need); got != want {
			t.Errorf("covered(%q) = %v, want %v", need, got, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
