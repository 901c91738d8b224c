package yml

import (
	"math"
	"strings"
	"testing"
)

// Plain scalars get the types LinuxKit's YAML reader (yaml.v2, YAML 1.1)
// gives them; quoted and block scalars are strings.
func TestResolve(t *testing.T) {
	for src, want := range map[string]any{
		"0644": int64(420), "644": int64(644), "0x1F": int64(31), "0b101": int64(5), "-12": int64(-12), "+3": int64(3),
		"1_000": int64(1000), "18446744073709551615": uint64(18446744073709551615), "1.5": 1.5, "1e3": 1000.0, "08": 8.0,
		"true": true, "yes": true, "On": true, "Y": true, "FALSE": false, "no": false, "off": false, "n": false,
		"~": nil, "null": nil, "": nil,
		"abc": "abc", "0o644": int64(420), "1.2.3": "1.2.3", "2024-01-02": "2024-01-02", "-": "-", "CAP_SYSLOG": "CAP_SYSLOG",
		`"0644"`: "0644", `'yes'`: "yes", `""`: "", "|\n  0644": "0644\n",
		`"@pkg:./pkg/init"`: "@pkg:./pkg/init", "a@b": "a@b",
	} {
		root, err := Parse("v: " + src + "\n")
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := Resolve(root.Get("v")); got != want {
			t.Errorf("%q resolves to %#v, want %#v", src, got, want)
		}
	}
	root, err := Parse("a: .inf\nb: -.Inf\nc: .NaN\n")
	if err != nil {
		t.Fatal(err)
	}
	if a, b, c := Resolve(root.Get("a")), Resolve(root.Get("b")), Resolve(root.Get("c")); a != math.Inf(1) || b != math.Inf(-1) || !math.IsNaN(c.(float64)) {
		t.Errorf(".inf, -.Inf, .NaN = %v %v %v", a, b, c)
	}
}

// ParseConfig refuses what `linuxkit build` refuses, naming the field as
// LinuxKit does and the line.
func TestParseConfigLinuxKitRules(t *testing.T) {
	for src, want := range map[string]string{
		"services:\n  - name: kmsg\n    image: lklog/kmsg:dev\n    devices:\n      - path: /dev/kmsg\n        mode: 0644\n": "line 6: services.0.devices.0.mode: Invalid type. Expected: string, given: integer",
		"services:\n  - name: x\n    image: i\n    capabilites: [CAP_SYSLOG]\n":                                             "line 4: services.0: Additional property capabilites is not allowed",
		"onboot:\n  - name: x\n    image: i\n    readonly: \"true\"\n":                                                      "line 4: onboot.0.readonly: Invalid type. Expected: boolean, given: string",
		"init:\n  - linuxkit/init:v1\n  - 7\n":                                                                              "line 3: init.1: Invalid type. Expected: string, given: integer",
		"files:\n  - path: etc/x\n    mode: 0644\n":                                                                         "line 3: files.0.mode: Invalid type. Expected: string, given: integer",
		"files:\n  - path: etc/x\n    mode: \"u+rw\"\n":                                                                     `line 3: files.0.mode: "u+rw" is not an octal number`,
		"services:\n  - name: x\n    image: i\n  - name: x\n    image: j\n":                                                 "line 4: services.1.name: duplicate service name: x",
		"onboot:\n":                           "line 1: onboot: Invalid type. Expected: array, given: null",
		"kernel:\n  image: k\n  cmdline: 1\n": "line 3: kernel.cmdline: Invalid type. Expected: string, given: integer",
		"services:\n  - name: x\n":            "line 2: services.0: image is required",
		"kernels:\n  image: k\n":              "line 1: (root): Additional property kernels is not allowed",
	} {
		_, err := ParseConfig(src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\nerror %v\nwant it to contain %q", src, err, want)
		}
	}
	ok := "services:\n  - name: kmsg\n    image: lklog/kmsg:dev\n    binds.add: [/var/log:/var/log]\n    devices:\n      - {path: /dev/kmsg, type: c, major: 1, minor: 11, mode: \"0644\"}\n    uid: 0\n    readonly: yes\nfiles:\n  - path: etc/x\n    contents: \"1\"\n    mode: \"0600\"\n"
	c, err := ParseConfig(ok)
	if err != nil {
		t.Fatalf("valid yml refused: %v", err)
	}
	if len(c.Services) != 1 || len(c.Services[0].Binds) != 1 || c.Files[0].Mode != "0600" {
		t.Errorf("config = %+v", c)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(sample)
	for _, s := range []string{
		"services:\n  - name: k\n    image: i\n    devices:\n      - {mode: 0644}\n",
		"files:\n  - path: x\n    mode: \"0644\"\n", "onboot:\n", "a: [1, {b: c}]\n", "init: [yes, 0x1F, ~]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := ParseConfig(src)
		if err != nil {
			return
		}
		names := map[string]bool{}
		for _, s := range c.Services {
			if s.Name == "" || s.Image == "" || names[s.Name] {
				t.Fatalf("accepted service %+v", s)
			}
			names[s.Name] = true
		}
	})
}
