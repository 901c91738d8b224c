package lkschema

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func obj(kv ...any) *Obj {
	o := &Obj{}
	for i := 0; i < len(kv); i += 2 {
		o.Keys = append(o.Keys, kv[i].(string))
		o.Vals = append(o.Vals, kv[i+1])
	}
	return o
}

func messages(es Errors) []string {
	var s []string
	for _, e := range es {
		s = append(s, e.Error())
	}
	return s
}

// The messages are gojsonschema's, as `linuxkit build` prints them.
func TestValidateConfig(t *testing.T) {
	kmsg := obj("name", "kmsg", "image", "lklog/kmsg:dev",
		"devices", []any{obj("path", "/dev/kmsg", "type", "c", "major", int64(1), "minor", int64(11), "mode", int64(644))})
	doc := obj(
		"kernel", obj("image", "linuxkit/kernel:6.6.71", "cmdline", int64(1)),
		"init", []any{"linuxkit/init:v1", true},
		"onboot", []any{obj("name", "x"), obj("name", "y", "image", "i", "command", "sh -c x")},
		"services", []any{kmsg, obj("name", "kmsg", "image", "i", "readonly", "yes", "uid", false, "sysctl", obj("a", int64(1)), "binds.add", []any{"/a:/a"})},
		"files", []any{obj("path", "etc/x", "mode", "0644", "contents", "x"), obj("path", "etc/y", "mode", "rw-r--r--", "directory", "true")},
		"extra", nil,
	)
	want := []string{
		"kernel.cmdline: Invalid type. Expected: string, given: integer",
		"init.1: Invalid type. Expected: string, given: boolean",
		"onboot.0: image is required",
		"onboot.1.command: Invalid type. Expected: array, given: string",
		"services.0.devices.0.mode: Invalid type. Expected: string, given: integer",
		"services.1.readonly: Invalid type. Expected: boolean, given: string",
		"services.1.uid: Must validate at least one schema (anyOf): Invalid type. Expected: string or integer, given: boolean",
		"services.1.sysctl.a: Invalid type. Expected: string, given: integer",
		`files.1.mode: "rw-r--r--" is not an octal number (LinuxKit parses it with base 8, e.g. "0644")`,
		"files.1.directory: Invalid type. Expected: boolean, given: string",
		"(root): Additional property extra is not allowed",
		"services.1.name: duplicate service name: kmsg",
	}
	if got := messages(ValidateConfig(doc)); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	kmsg.Vals[len(kmsg.Vals)-1].([]any)[0].(*Obj).Vals[4] = "0644"
	ok := obj("kernel", obj("image", "k"), "init", []any{"i"}, "services", []any{kmsg}, "trust", obj("org", []any{"linuxkit"}))
	if es := ValidateConfig(ok); es != nil {
		t.Errorf("valid document refused: %v", es)
	}
	if es := ValidateConfig([]any{}); len(es) != 1 || es[0].Error() != "(root): Invalid type. Expected: object, given: array" {
		t.Errorf("array document: %v", es)
	}
}

func TestValidateLabel(t *testing.T) {
	for label, want := range map[string]string{
		`{"binds":["/dev:/dev"],"devices":[{"path":"/dev/kmsg","type":"c","major":1,"minor":11,"mode":"0644"}],"uid":0}`: "",
		`{"devices":[{"path":"/dev/kmsg","type":"c","major":1,"minor":11,"mode":644}]}`:                                  "services.0.devices.0.mode: Invalid type. Expected: string, given: integer",
		`{"name":"x"}`:                        "services.0.name: name cannot be set in a metadata label",
		`{"image":"x"}`:                       "services.0.image: image cannot be set in a metadata label",
		`["/dev:/dev"]`:                       "services.0: the label is not a JSON object (given: array)",
		`{"capabilities":"CAP_SYSLOG"}`:       "services.0.capabilities: Invalid type. Expected: array, given: string",
		`{"oomScoreAdj":1.5}`:                 "services.0.oomScoreAdj: Invalid type. Expected: integer, given: number",
		`{"oomScoreAdj":-2.0}`:                "",
		`{"devices":[{"path":"/x","gid":0}]}`: "services.0.devices.0: Additional property gid is not allowed",
		`{"runtime":{"bindNS":{"net":1}}}`:    "services.0.runtime.bindNS.net: Invalid type. Expected: string, given: integer",
	} {
		v, err := ParseJSON([]byte(label))
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		got := ValidateLabel(v)
		switch {
		case want == "" && got != nil:
			t.Errorf("%s refused: %v", label, got)
		case want != "" && (len(got) != 1 || got[0].Error() != want):
			t.Errorf("%s: %v, want %q", label, got, want)
		}
	}
}

func TestParseJSON(t *testing.T) {
	v, err := ParseJSON([]byte(`{"b":[1,-2,18446744073709551615,1.5,"s",true,null],"a":{"z":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := obj("b", []any{int64(1), int64(-2), uint64(18446744073709551615), 1.5, "s", true, nil}, "a", obj("z", &Obj{}))
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("ParseJSON = %#v", v)
	}
	for _, bad := range []string{`{"a":1,"a":2}`, `{} {}`, `{`, `[1,]`, ``} {
		if _, err := ParseJSON([]byte(bad)); err == nil {
			t.Errorf("ParseJSON(%q) accepted", bad)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"binds":["/a:/a"],"uid":0}`, `[1.5e3,null,{"":""}]`, `{"a":1,"a":2}`, `"x"`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseJSON([]byte(s))
		if err != nil {
			return
		}
		ValidateLabel(v)
		ValidateConfig(v)
		b, err := (&Obj{Keys: []string{"v"}, Vals: []any{v}}).MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		back, err := ParseJSON(b)
		if err != nil {
			t.Fatalf("%s does not parse back: %v", b, err)
		}
		again, _ := (&Obj{Keys: []string{"v"}, Vals: []any{mustGet(back)}}).MarshalJSON()
		if string(again) != string(b) {
			t.Fatalf("round trip: %s then %s", b, again)
		}
	})
}

func mustGet(v any) any {
	x, _ := v.(*Obj).Get("v")
	return x
}

// test/README.md holds the rules for people; it must say what the table
// here enforces.
func TestReadmeTable(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "test", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- lkschema rules: begin -->\n", "<!-- lkschema rules: end -->"
	s := string(src)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("test/README.md has no %q ... %q section", begin, end)
	}
	if got, want := s[i+len(begin):j], Markdown(); got != want {
		t.Errorf("test/README.md's rules differ from internal/lkschema's table; put this between the markers:\n%s", want)
	}
}
