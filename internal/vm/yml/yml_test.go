package yml

import (
	"reflect"
	"strings"
	"testing"
)

const sample = `# a LinuxKit image
kernel:
  image: linuxkit/kernel:6.6.71
  cmdline: "console=ttyS0 console=tty0"
init:
  - linuxkit/init:v1.0
  - lklog/memlogd:dev   # ours
onboot:
  - name: sysctl
    image: linuxkit/sysctl:v1
  - name: hello
    image: busybox:latest
    command: ["/bin/sh", "-c", "echo 'hi # not a comment'; echo \"x\\ty\""]
services:
- name: getty
  image: linuxkit/getty:v1
  env:
   - INSECURE=true
  binds:
    - /var/run:/var/run
- name: kmsg
  image: lklog/kmsg:dev
  capabilities: [CAP_SYSLOG,
    CAP_SYS_ADMIN]
  command:
    - /usr/bin/kmsg
    - -v
files:
  - path: etc/motd
    contents: |
      line one
        indented

      last
    mode: "0644"
  - path: etc/folded
    contents: >-
      a
      b
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(sample)
	if err != nil {
		t.Fatal(err)
	}
	if c.Kernel.Cmdline != "console=ttyS0 console=tty0" || c.Kernel.Image != "linuxkit/kernel:6.6.71" {
		t.Errorf("kernel = %+v", c.Kernel)
	}
	if !reflect.DeepEqual(c.Init, []string{"linuxkit/init:v1.0", "lklog/memlogd:dev"}) {
		t.Errorf("init = %q", c.Init)
	}
	if len(c.Onboot) != 2 || c.Onboot[1].Name != "hello" {
		t.Fatalf("onboot = %+v", c.Onboot)
	}
	if want := []string{"/bin/sh", "-c", `echo 'hi # not a comment'; echo "x\ty"`}; !reflect.DeepEqual(c.Onboot[1].Command, want) {
		t.Errorf("command = %q, want %q", c.Onboot[1].Command, want)
	}
	if len(c.Services) != 2 {
		t.Fatalf("services = %+v", c.Services)
	}
	g, k := c.Services[0], c.Services[1]
	if !reflect.DeepEqual(g.Env, []string{"INSECURE=true"}) || !reflect.DeepEqual(g.Binds, []string{"/var/run:/var/run"}) {
		t.Errorf("getty = %+v", g)
	}
	if !reflect.DeepEqual(k.Capabilities, []string{"CAP_SYSLOG", "CAP_SYS_ADMIN"}) || !reflect.DeepEqual(k.Command, []string{"/usr/bin/kmsg", "-v"}) {
		t.Errorf("kmsg = %+v", k)
	}
	if len(c.Files) != 2 || c.Files[0].Contents != "line one\n  indented\n\nlast\n" || c.Files[0].Mode != "0644" {
		t.Errorf("files[0] = %+v", c.Files)
	}
	if c.Files[1].Contents != "a b" {
		t.Errorf("folded = %q", c.Files[1].Contents)
	}
}

func TestParseErrors(t *testing.T) {
	for name, src := range map[string]string{
		"tab indent":      "a:\n\t- b\n",
		"bad indent":      "a: 1\n  b: 2\n",
		"unterminated":    "a: \"x\n",
		"anchor":          "a: &x 1\n",
		"dup key":         "a: 1\na: 2\n",
		"two docs":        "a: 1\n---\nb: 2\n",
		"flow garbage":    "a: [1, 2] x\n",
		"entry no image":  "onboot:\n  - name: x\n",
		"dup entry":       "services:\n  - name: x\n    image: i\n  - name: x\n    image: i\n",
		"command map":     "services:\n  - name: x\n    image: i\n    command: {a: b}\n",
		"not a mapping":   "- a\n- b\n",
		"unknown escape":  `a: "\q"` + "\n",
		"seq over-indent": "a:\n  - x\n    - y\n",
		"reserved @":      "init:\n  - @pkg:../pkg/init\n",
		"reserved `":      "a: `x`\n",
	} {
		if _, err := ParseConfig(src); err == nil {
			t.Errorf("%s: no error for %q", name, src)
		}
	}
}

func TestGenericNodes(t *testing.T) {
	n, err := Parse("m: {a: 1, b: [x, 'y''s']}\nempty:\nlist:\n- - nested\n  - two\n")
	if err != nil {
		t.Fatal(err)
	}
	m := n.Get("m")
	if m.Get("a").Value != "1" || m.Get("b").Items[1].Value != "y's" {
		t.Errorf("flow map = %+v", m)
	}
	if e := n.Get("empty"); e.Kind != Scalar || e.Value != "" {
		t.Errorf("empty = %+v", e)
	}
	l := n.Get("list")
	if l.Kind != Seq || len(l.Items) != 1 || len(l.Items[0].Items) != 2 || l.Items[0].Items[1].Value != "two" {
		t.Errorf("nested list = %+v", l)
	}
}

func TestPackage(t *testing.T) {
	for image, want := range map[string]string{
		"lklog/memlogd:v0.1":                  "memlogd",
		"docker.io/lklog/kmsg@sha256:abcd":    "kmsg",
		"localhost:5000/lklog/logwrite:dev":   "logwrite",
		"lklog/logread":                       "logread",
		"linuxkit/memlogd:v1":                 "",
		"busybox:latest":                      "",
		"example.com/notlklog/memlogd:latest": "",
	} {
		got, ok := Package(image)
		if got != want || ok != (want != "") {
			t.Errorf("Package(%q) = %q, %v; want %q", image, got, ok, want)
		}
	}
	if !strings.Contains(sample, "lklog/memlogd") {
		t.Fatal("sample changed")
	}
}
