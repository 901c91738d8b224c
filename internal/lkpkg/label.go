package lkpkg

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/lklog/lklog/internal/lkschema"
	"github.com/lklog/lklog/internal/vm/yml"
)

// decode reads a build.yml node into the value `linuxkit pkg build` gets
// when it decodes the file into its Go types (gopkg.in/yaml.v2): a string
// field takes the scalar's text whatever it looks like (mode: 0644 and
// mode: "0644" both give "0644"), an integer or boolean field needs a
// scalar of that type, an untyped field (uid, gid) the YAML 1.1 value, and
// an absent or null field is left out. Keys LinuxKit does not know, which
// it would drop without a word, are errors here.
func decode(t *lkschema.Type, n *yml.Node, path []string, es *lkschema.Errors) (v any, ok bool) {
	fail := func(msg string, a ...any) (any, bool) {
		*es = append(*es, lkschema.Error{Path: append([]string(nil), path...), Msg: fmt.Sprintf(msg, a...)})
		return nil, false
	}
	given := func() string {
		switch n.Kind {
		case yml.Map:
			return "object"
		case yml.Seq:
			return "array"
		}
		return lkschema.TypeName(yml.Resolve(n))
	}
	if n.Kind == yml.Scalar && yml.Resolve(n) == nil {
		return nil, false
	}
	switch t.Kind {
	case lkschema.String:
		if n.Kind != yml.Scalar {
			return fail("Invalid type. Expected: string, given: %s", given())
		}
		return n.Value, true
	case lkschema.Integer:
		switch x := yml.Resolve(n).(type) {
		case int64, uint64:
			return x, true
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
				return int64(x), true
			}
		}
		return fail("Invalid type. Expected: integer, given: %s", given())
	case lkschema.Boolean:
		if b, isBool := yml.Resolve(n).(bool); isBool {
			return b, true
		}
		return fail("Invalid type. Expected: boolean, given: %s", given())
	case lkschema.StringOrInteger:
		if n.Kind != yml.Scalar {
			return fail("Invalid type. Expected: string or integer, given: %s", given())
		}
		return yml.Resolve(n), true
	case lkschema.List:
		if n.Kind != yml.Seq {
			return fail("Invalid type. Expected: array, given: %s", given())
		}
		l := []any{}
		for i, it := range n.Items {
			v, ok := decode(t.Elem, it, append(path, strconv.Itoa(i)), es)
			if !ok {
				if it.Kind == yml.Scalar && yml.Resolve(it) == nil {
					fail("item %d is empty", i)
				}
				continue
			}
			l = append(l, v)
		}
		return l, true
	case lkschema.StringMap:
		if n.Kind != yml.Map {
			return fail("Invalid type. Expected: object, given: %s", given())
		}
		o := &lkschema.Obj{}
		for i, k := range n.Keys {
			if v, ok := decode(&lkschema.Type{Kind: lkschema.String}, n.Vals[i], append(path, k), es); ok {
				o.Keys, o.Vals = append(o.Keys, k), append(o.Vals, v)
			}
		}
		return o, true
	}
	// Object: the fields in LinuxKit's order.
	if n.Kind != yml.Map {
		return fail("Invalid type. Expected: object, given: %s", given())
	}
	for _, k := range n.Keys {
		if t.Field(k) == nil {
			*es = append(*es, lkschema.Error{Path: append([]string(nil), path...), Key: k, Msg: "Additional property " + k + " is not allowed (linuxkit pkg build would drop it)"})
		}
	}
	o := &lkschema.Obj{}
	for _, f := range t.Fields {
		c := n.Get(f.Name)
		if c == nil {
			continue
		}
		if v, ok := decode(f.Type, c, append(path, f.Name), es); ok {
			o.Keys, o.Vals = append(o.Keys, f.Name), append(o.Vals, v)
		}
	}
	return o, true
}

// Label renders a build.yml "config" node as the org.mobyproject.config
// label `linuxkit pkg build` writes, and checks the result with the rules
// `linuxkit build` applies to labels (lkschema.ValidateLabel).
func Label(config *yml.Node) (string, error) {
	var es lkschema.Errors
	v, ok := decode(lkschema.Label, config, []string{"config"}, &es)
	if len(es) > 0 {
		return "", es
	}
	if !ok {
		return "", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	back, err := lkschema.ParseJSON(b)
	if err != nil {
		return "", err
	}
	if es := lkschema.ValidateLabel(back, "config"); len(es) > 0 {
		return "", es
	}
	return string(b), nil
}
