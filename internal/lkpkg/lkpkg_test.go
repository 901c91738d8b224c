package lkpkg

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
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

func TestLoadAndBuild(t *testing.T) {
	repo := t.TempDir()
	dir := filepath.Join(repo, "pkg", "kmsg")
	write(t, filepath.Join(dir, "build.yml"), "image: kmsg\nconfig:\n  binds:\n    - /dev/kmsg:/dev/kmsg\n  capabilities:\n    - CAP_SYSLOG\n  readonly: true\n  uid: 0\n", 0o644)
	write(t, filepath.Join(dir, "Dockerfile"), "FROM golang AS build\nCMD [\"x\"]\nFROM scratch\nENTRYPOINT [\"/usr/bin/kmsg\"]\nCMD [\"-v\"]\n", 0o644)
	write(t, filepath.Join(dir, "cmd", "kmsg", "main.go"), "package main\n", 0o644)
	write(t, filepath.Join(dir, "etc", "kmsg.conf"), "x=1\n", 0o644)
	write(t, filepath.Join(repo, "bin", "kmsg"), "ELF", 0o755)
	write(t, filepath.Join(repo, "pkg", "README"), "not a package", 0o644)

	dirs, err := List(repo)
	if err != nil || len(dirs) != 1 {
		t.Fatalf("List = %v %v", dirs, err)
	}
	p, err := Load(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.Org != "lklog" || p.Image != "kmsg" || !reflect.DeepEqual(p.Entrypoint, []string{"/usr/bin/kmsg"}) || !reflect.DeepEqual(p.Cmd, []string{"-v"}) {
		t.Fatalf("package = %+v", p)
	}
	img, err := p.Build(filepath.Join(repo, "bin"), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "docker.io/lklog/kmsg:v1" || len(img.Files) != 2 || img.Files[0].Path != "/usr/bin/kmsg" || img.Files[1].Path != "/etc/kmsg.conf" {
		t.Fatalf("image = %+v", img)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(img.Labels[ConfigLabel]), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["readonly"] != true || cfg["uid"] != float64(0) || cfg["binds"].([]any)[0] != "/dev/kmsg:/dev/kmsg" {
		t.Fatalf("config label = %v", cfg)
	}
	if _, err := p.Build(filepath.Join(repo, "nobin"), "v1"); err == nil {
		t.Fatal("missing binary accepted")
	}
}

func TestDefaultEntrypointWithoutDockerfile(t *testing.T) {
	repo := t.TempDir()
	dir := filepath.Join(repo, "pkg", "memlogd")
	write(t, filepath.Join(dir, "cmd", "memlogd", "main.go"), "package main\n", 0o644)
	write(t, filepath.Join(dir, "cmd", "logread", "main.go"), "package main\n", 0o644)
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Entrypoint, []string{"/usr/bin/memlogd"}) || len(p.Commands) != 2 {
		t.Fatalf("package = %+v", p)
	}
	write(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCMD /usr/bin/memlogd\n", 0o644)
	if _, err := Load(dir); err == nil {
		t.Fatal("shell-form CMD accepted")
	}
}
