package lkpkg

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lklog/lklog/internal/lkschema"
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

func TestLoadAndBuild(t *testing.T) {
	repo := t.TempDir()
	dir := filepath.Join(repo, "pkg", "kmsg")
	write(t, filepath.Join(dir, "build.yml"), "org: lklog\nimage: kmsg\nconfig:\n  binds:\n    - /dev/kmsg:/dev/kmsg\n  capabilities:\n    - CAP_SYSLOG\n  readonly: true\n  uid: 0\n", 0o644)
	write(t, filepath.Join(dir, "Dockerfile"), "FROM golang AS build\nCMD [\"x\"]\nENV X=1\nFROM scratch\nCOPY usr/bin/kmsg /usr/bin/\nCOPY etc/kmsg.conf \\\n  /etc/kmsg.conf\nENTRYPOINT [\"/usr/bin/kmsg\"]\nCMD [\"-v\"]\n", 0o644)
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
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "exec form") {
		t.Fatalf("shell-form CMD: %v", err)
	}
}

func label(t *testing.T, config string) (string, error) {
	t.Helper()
	root, err := yml.Parse("config:\n" + config)
	if err != nil {
		t.Fatal(err)
	}
	return Label(root.Get("config"))
}

// The label is what `linuxkit pkg build` makes of build.yml's config: a
// device mode is a string whether it was quoted or not (LinuxKit decodes
// it into a string field and parses it with base 8 later).
func TestLabelTypes(t *testing.T) {
	for config, want := range map[string]string{
		"  devices:\n    - {path: /dev/kmsg, type: c, major: 1, minor: 11, mode: \"0644\"}\n":                 `{"devices":[{"path":"/dev/kmsg","type":"c","major":1,"minor":11,"mode":"0644"}]}`,
		"  devices:\n    - {path: /dev/kmsg, type: c, major: 1, minor: 11, mode: 0644}\n":                     `{"devices":[{"path":"/dev/kmsg","type":"c","major":1,"minor":11,"mode":"0644"}]}`,
		"  devices:\n    - path: /dev/null\n      type: c\n      major: 1\n      minor: 3\n      mode: 666\n": `{"devices":[{"path":"/dev/null","type":"c","major":1,"minor":3,"mode":"666"}]}`,
		// Field order is LinuxKit's, not the file's; yes/on are booleans
		// for a boolean field; strings stay strings; uid keeps its type.
		"  readonly: yes\n  binds: [/a:/a]\n  capabilities: [CAP_SYSLOG]\n  uid: 0\n  gid: nobody\n": `{"capabilities":["CAP_SYSLOG"],"binds":["/a:/a"],"readonly":true,"uid":0,"gid":"nobody"}`,
		"  binds.add: [/var/log:/var/log]\n  net: host\n  sysctl:\n    net.core.somaxconn: 1024\n":   `{"binds.add":["/var/log:/var/log"],"net":"host","sysctl":{"net.core.somaxconn":"1024"}}`,
		"  runtime:\n    mkdir: [/var/lib/x]\n  env: [A=1, B=yes]\n  command: [/bin/x, 1]\n":         `{"command":["/bin/x","1"],"env":["A=1","B=yes"],"runtime":{"mkdir":["/var/lib/x"]}}`,
		"  cwd:\n  oomScoreAdj: -500\n": `{"oomScoreAdj":-500}`,
	} {
		got, err := label(t, config)
		if err != nil || got != want {
			t.Errorf("config\n%s\nlabel %s, %v\nwant  %s", config, got, err, want)
		}
	}
}

func TestLabelRefused(t *testing.T) {
	for config, want := range map[string]string{
		"  capabilites: [CAP_SYSLOG]\n":                  "config: Additional property capabilites is not allowed",
		"  readonly: \"true\"\n":                         "config.readonly: Invalid type. Expected: boolean, given: string",
		"  binds: /dev:/dev\n":                           "config.binds: Invalid type. Expected: array, given: string",
		"  oomScoreAdj: high\n":                          "config.oomScoreAdj: Invalid type. Expected: integer, given: string",
		"  devices:\n    - {path: /dev/x, mode: rw}\n":   `config.devices.0.mode: "rw" is not an octal number`,
		"  devices:\n    - {path: /dev/x, major: 1.5}\n": "config.devices.0.major: Invalid type. Expected: integer, given: number",
		"  uid: true\n":                                  "config.uid: Must validate at least one schema (anyOf)",
		"  name: kmsg\n":                                 "config: Additional property name is not allowed",
		"  runtime:\n    mkdirs: [/x]\n":                 "config.runtime: Additional property mkdirs is not allowed",
		"  sysctl: [a]\n":                                "config.sysctl: Invalid type. Expected: object, given: array",
		"  command: [/bin/x, [a]]\n":                     "config.command.1: Invalid type. Expected: string, given: array",
	} {
		_, err := label(t, config)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config\n%s\nerror %v\nwant it to contain %q", config, err, want)
		}
	}
}

func TestBuildYMLRefused(t *testing.T) {
	for src, want := range map[string]string{
		"image: x\n":                             "org is required",
		"org: lklog\n":                           "image is required",
		"org: lklog\nimage: ~\n":                 "image is required",
		"org: lklog\nimage: x\nconfigs: {}\n":    "line 3: (root): Additional property configs is not allowed",
		"org: lklog\nimage: x\nnetwork: maybe\n": "line 3: network: Invalid type. Expected: boolean, given: string",
		"org: lklog\nimage: x\narches: amd64\n":  "arches: Invalid type. Expected: array, given: string",
		"org: lklog\nimage: x\nconfig:\n  devices:\n    - mode: 0o644\n": `line 5: config.devices.0.mode: "0o644" is not an octal number`,
	} {
		dir := filepath.Join(t.TempDir(), "x")
		write(t, filepath.Join(dir, "build.yml"), src, 0o644)
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("build.yml\n%s\nerror %v\nwant it to contain %q", src, err, want)
		}
	}
}

// The image `make images` assembles must be the one docker build makes
// from the Dockerfile: mkimage refuses a Dockerfile it would not reproduce.
func TestDockerfileMatchesImage(t *testing.T) {
	repo := t.TempDir()
	dir := filepath.Join(repo, "pkg", "svc")
	write(t, filepath.Join(dir, "build.yml"), "org: lklog\nimage: svc\n", 0o644)
	write(t, filepath.Join(dir, "cmd", "svc", "main.go"), "package main\n", 0o644)
	write(t, filepath.Join(dir, "etc", "init.d", "svc"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(repo, "bin", "svc"), "ELF", 0o755)
	good := "FROM scratch\nCOPY usr/bin/svc /usr/bin/svc\nCOPY etc/init.d/svc /etc/init.d/\nENTRYPOINT [\"/usr/bin/svc\"]\n"
	for dockerfile, want := range map[string]string{
		good: "",
		"FROM alpine:3.20\nCOPY usr/bin/svc etc/init.d/svc /x/\n":                    `built FROM "alpine:3.20"`,
		strings.Replace(good, "ENTRYPOINT", "ENV A=1\nUSER 1000\nENTRYPOINT", 1):     "line 4: ENV, line 5: USER in the last stage",
		strings.Replace(good, "COPY etc/init.d/svc /etc/init.d/\n", "", 1):           "no COPY puts /etc/init.d/svc in the image",
		strings.Replace(good, "usr/bin/svc /usr/bin/svc", "usr/bin/svc /bin/svc", 1): "COPY usr/bin/svc to /bin/svc, but `make images` puts it at /usr/bin/svc",
		strings.Replace(good, "COPY usr/bin/svc", "COPY --chmod=700 usr/bin/svc", 1): "COPY --chmod=700",
		strings.Replace(good, "COPY etc/init.d/svc", "COPY etc/init.d/other", 1):     "COPY etc/init.d/other: not a file",
	} {
		write(t, filepath.Join(dir, "Dockerfile"), dockerfile, 0o644)
		p, err := Load(dir)
		if err == nil {
			_, err = p.Build(filepath.Join(repo, "bin"), "v1")
		}
		switch {
		case want == "" && err != nil:
			t.Errorf("Dockerfile\n%s\nrefused: %v", dockerfile, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("Dockerfile\n%s\nerror %v\nwant it to contain %q", dockerfile, err, want)
		}
	}
}

// build.yml "dockerfile" names the Dockerfile, for `make images` as for
// linuxkit pkg build.
func TestDockerfileField(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc")
	write(t, filepath.Join(dir, "build.yml"), "org: lklog\nimage: svc\ndockerfile: Dockerfile.svc\n", 0o644)
	write(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nENTRYPOINT [\"/wrong\"]\n", 0o644)
	write(t, filepath.Join(dir, "Dockerfile.svc"), "FROM scratch\nENTRYPOINT [\"/usr/bin/svc\"]\n", 0o644)
	p, err := Load(dir)
	if err != nil || !reflect.DeepEqual(p.Entrypoint, []string{"/usr/bin/svc"}) {
		t.Fatalf("Load = %+v, %v", p, err)
	}
	write(t, filepath.Join(dir, "build.yml"), "org: lklog\nimage: svc\ndockerfile: ../Dockerfile\n", 0o644)
	if _, err := Load(dir); err == nil {
		t.Fatal("a Dockerfile outside the package accepted")
	}
}

func FuzzParseDockerfile(f *testing.F) {
	for _, s := range []string{
		"FROM scratch\nCOPY a b /c/\nENTRYPOINT [\"/x\"]\nCMD [\"-v\"]\n",
		"FROM golang AS b\nRUN x \\\n y\nFROM scratch\nADD --chmod=1 a /b\n",
		"FROM\n", "COPY a\n", "CMD x\n", "\\\n\\",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		d, err := parseDockerfile("Dockerfile", []byte(src))
		if err != nil {
			return
		}
		for _, c := range d.Copies {
			if len(c.Srcs) == 0 || c.Dst == "" {
				t.Fatalf("COPY without source or destination: %+v", c)
			}
		}
	})
}

// Whatever Label accepts is a label linuxkit build accepts.
func FuzzLabel(f *testing.F) {
	for _, s := range []string{
		"config:\n  devices:\n    - {path: /dev/kmsg, type: c, major: 1, minor: 11, mode: 0644}\n",
		"config:\n  binds: [/a:/a]\n  uid: yes\n  sysctl: {a: 1}\n  readonly: on\n",
		"config:\n  resources:\n    memory: {limit: 0x10}\n  runtime: {mkdir: [~]}\n",
		"config: {}\n", "config: 1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		root, err := yml.Parse(src)
		if err != nil || root.Get("config") == nil {
			return
		}
		l, err := Label(root.Get("config"))
		if err != nil || l == "" {
			return
		}
		v, err := lkschema.ParseJSON([]byte(l))
		if err != nil {
			t.Fatalf("label %s: %v", l, err)
		}
		if es := lkschema.ValidateLabel(v); es != nil {
			t.Fatalf("label %s refused: %v", l, es)
		}
	})
}
