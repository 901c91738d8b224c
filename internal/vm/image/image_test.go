package image

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lklog/lklog/internal/vm/guest"
	"github.com/lklog/lklog/internal/vm/yml"
)

func write(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}

// fixture makes a repository with one lklog package, bin/, a case and
// fake init/busybox/module files.
func fixture(t *testing.T) (string, *Spec) {
	root := t.TempDir()
	write(t, filepath.Join(root, "pkg/memlogd/etc/init.d/memlogd"), "#!/bin/sh\nexec /usr/bin/memlogd -daemonize\n", 0o755)
	write(t, filepath.Join(root, "pkg/memlogd/Dockerfile"), "FROM scratch AS build\nCMD [\"/wrong\"]\nFROM scratch\nENTRYPOINT [\"/usr/bin/memlogd\"]\nCMD [\"-max-lines\", \"10\"]\n", 0o644)
	write(t, filepath.Join(root, "bin/memlogd"), "ELF memlogd", 0o755)
	write(t, filepath.Join(root, "bin/logread"), "ELF logread", 0o755)
	write(t, filepath.Join(root, "case/check.sh"), "echo suite PASSED\n", 0o644)
	write(t, filepath.Join(root, "lib/common.sh"), "fail() { :; }\n", 0o644)
	write(t, filepath.Join(root, "init"), "ELF init", 0o755)
	write(t, filepath.Join(root, "busybox"), "ELF busybox", 0o755)
	write(t, filepath.Join(root, "mods/virtio.ko"), "KO1", 0o644)
	write(t, filepath.Join(root, "mods/ext4.ko"), "KO2", 0o644)
	cfg, err := yml.ParseConfig(`
init:
  - linuxkit/init:v1
  - lklog/memlogd:dev
onboot:
  - name: hello
    image: busybox:latest
    command: ["/bin/echo", "hi"]
services:
  - name: mem
    image: lklog/memlogd:dev
files:
  - path: etc/motd
    contents: "welcome\n"
    mode: "0600"
`)
	if err != nil {
		t.Fatal(err)
	}
	return root, &Spec{
		Repo: root, BinDir: filepath.Join(root, "bin"), Init: filepath.Join(root, "init"),
		Busybox: filepath.Join(root, "busybox"),
		Modules: []string{filepath.Join(root, "mods/virtio.ko"), filepath.Join(root, "mods/ext4.ko")},
		Config:  cfg, CaseDir: filepath.Join(root, "case"), LibDir: filepath.Join(root, "lib"),
		Applets: []string{"bin/sh", "usr/bin/logger", "sbin/logread", "sbin/init", "bin/busybox"},
		Plan:    guest.Plan{Mode: guest.ModeTest, Check: "/test/check.sh"},
	}
}

func TestBuild(t *testing.T) {
	root, spec := fixture(t)
	procs, err := Entries(root, spec.BinDir, spec.Config.Onboot)
	if err != nil {
		t.Fatal(err)
	}
	spec.Plan.Onboot = procs
	if spec.Plan.Services, err = Entries(root, spec.BinDir, spec.Config.Services); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := spec.Build(&buf); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, n := range Summary(buf.Bytes()) {
		names[n] = true
	}
	for _, want := range []string{
		"init", "bin/busybox", "bin/sh", "usr/bin/logger", "bin/logger", "usr/bin/memlogd", "usr/bin/logread",
		"etc/init.d/memlogd", "test/check.sh", "test/lib/common.sh", "lib/modules/00-virtio.ko",
		"lib/modules/01-ext4.ko", "dev/console", "var/run", "etc/motd", "etc/vmtest/plan.json",
		"etc/profile", "etc/lklog-prefer.sh",
	} {
		if !names[want] {
			t.Errorf("initramfs lacks %s", want)
		}
	}
	for _, not := range []string{"sbin/logread", "sbin/init", "bin/logread"} {
		if names[not] {
			t.Errorf("initramfs has %s (busybox must not shadow our binaries or /init)", not)
		}
	}
	img := buf.String()
	i := strings.Index(img, `"mode": "test"`)
	if i < 0 {
		t.Fatal("plan not found")
	}
	start := strings.LastIndex(img[:i], "{")
	end := strings.Index(img[i:], "\n}") + i + 2
	var plan guest.Plan
	if err := json.Unmarshal([]byte(img[start:end]), &plan); err != nil {
		t.Fatalf("plan: %v", err)
	}
	if !reflect.DeepEqual(plan.Modules, []string{"/lib/modules/00-virtio.ko", "/lib/modules/01-ext4.ko"}) {
		t.Errorf("modules = %q", plan.Modules)
	}
	if got := plan.Services[0].Command; !reflect.DeepEqual(got, []string{"/usr/bin/memlogd", "-max-lines", "10"}) {
		t.Errorf("default command from the Dockerfile's last stage = %q", got)
	}
	if !strings.Contains(img, "logread() { /usr/bin/logread \"$@\"; }") {
		t.Error("prefer script lacks the logread function")
	}
}

func TestBuildErrors(t *testing.T) {
	root, spec := fixture(t)
	spec.Config.Init = append(spec.Config.Init, "lklog/nosuch:dev")
	if err := spec.Build(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("missing init package: err = %v", err)
	}
	_, spec = fixture(t)
	spec.MaxBytes = 100
	if err := spec.Build(&bytes.Buffer{}); err == nil {
		t.Error("size limit not enforced")
	}
	if _, err := Entries(root, spec.BinDir, []yml.Entry{{Name: "x", Image: "linuxkit/getty:v1"}}); err == nil {
		t.Error("entry without command or lklog image accepted")
	}
	if got, err := Entries(root, spec.BinDir, []yml.Entry{{Name: "lr", Image: "lklog/logread:dev"}}); err != nil || got[0].Command[0] != "/usr/bin/logread" {
		t.Errorf("package without Dockerfile: %v %v", got, err)
	}
}

// An lklog package's label command and env are the defaults, as in
// LinuxKit; an entry's own command and env replace them.
func TestEntriesLabelDefaults(t *testing.T) {
	root, spec := fixture(t)
	write(t, filepath.Join(root, "pkg/fwd/build.yml"), "org: lklog\nimage: fwd\nconfig:\n  command: [/usr/bin/fwd, -x]\n  env: [A=1]\n", 0o644)
	write(t, filepath.Join(root, "pkg/fwd/Dockerfile"), "FROM scratch\nENTRYPOINT [\"/usr/bin/fwd\"]\n", 0o644)
	got, err := Entries(root, spec.BinDir, []yml.Entry{{Name: "a", Image: "lklog/fwd:dev"}, {Name: "b", Image: "lklog/fwd:dev", Command: []string{"/bin/sh"}, Env: []string{"B=2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0], guest.Proc{Name: "a", Command: []string{"/usr/bin/fwd", "-x"}, Env: []string{"A=1"}}) ||
		!reflect.DeepEqual(got[1], guest.Proc{Name: "b", Command: []string{"/bin/sh"}, Env: []string{"B=2"}}) {
		t.Errorf("processes = %+v", got)
	}
	write(t, filepath.Join(root, "pkg/fwd/build.yml"), "org: lklog\nimage: fwd\nconfig:\n  env: A=1\n", 0o644)
	if _, err := Entries(root, spec.BinDir, []yml.Entry{{Name: "a", Image: "lklog/fwd:dev"}}); err == nil || !strings.Contains(err.Error(), "config.env: Invalid type") {
		t.Errorf("a build.yml LinuxKit refuses: %v", err)
	}
}

func TestPreferScript(t *testing.T) {
	s := PreferScript([]string{"logread", "bad-name", "1x"})
	if !strings.Contains(s, `logread() { /usr/bin/logread "$@"; }`) || strings.Contains(s, "bad-name") || strings.Contains(s, "1x()") {
		t.Fatalf("script:\n%s", s)
	}
}
