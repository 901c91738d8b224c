package lkschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Obj is a JSON object with its keys in document order. Documents are
// trees of nil, bool, int64, uint64, float64, string, []any and *Obj.
type Obj struct {
	Keys []string
	Vals []any
}

// Get returns the value of key and whether it is there.
func (o *Obj) Get(key string) (any, bool) {
	for i, k := range o.Keys {
		if k == key {
			return o.Vals[i], true
		}
	}
	return nil, false
}

// Error is one rule a document breaks, at Path (the keys and list indexes
// from the top).
type Error struct {
	Path []string
	Msg  string
	Key  string // the key an "Additional property" error is about
}

// Field is the path as LinuxKit writes it: "services.0.devices.0.mode",
// or "(root)".
func (e Error) Field() string {
	if len(e.Path) == 0 {
		return "(root)"
	}
	return strings.Join(e.Path, ".")
}

func (e Error) Error() string { return e.Field() + ": " + e.Msg }

// Errors is every rule a document breaks, in document order.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// TypeName is the JSON type of v as gojsonschema names it.
func TypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case int64, uint64, int:
		return "integer"
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case *Obj:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func kindName(k Kind) string {
	switch k {
	case String:
		return "string"
	case Integer:
		return "integer"
	case Boolean:
		return "boolean"
	case List:
		return "array"
	case Object, StringMap:
		return "object"
	}
	return "string or integer"
}

// Validate checks v against t and returns every error (nil if none).
// Paths start at prefix.
func Validate(t *Type, v any, prefix ...string) Errors {
	var es Errors
	check(t, v, append([]string(nil), prefix...), &es)
	if len(es) == 0 {
		return nil
	}
	return es
}

func check(t *Type, v any, path []string, es *Errors) {
	add := func(msg string, a ...any) {
		*es = append(*es, Error{Path: append([]string(nil), path...), Msg: fmt.Sprintf(msg, a...)})
	}
	given := TypeName(v)
	switch t.Kind {
	case StringOrInteger:
		if given != "string" && given != "integer" {
			add("Must validate at least one schema (anyOf): Invalid type. Expected: string or integer, given: %s", given)
		}
		return
	case StringMap:
		o, ok := v.(*Obj)
		if !ok {
			add("Invalid type. Expected: object, given: %s", given)
			return
		}
		for i, k := range o.Keys {
			if n := TypeName(o.Vals[i]); n != "string" {
				*es = append(*es, Error{Path: append(append([]string(nil), path...), k), Msg: "Invalid type. Expected: string, given: " + n})
			}
		}
		return
	}
	if want := kindName(t.Kind); given != want {
		add("Invalid type. Expected: %s, given: %s", want, given)
		return
	}
	switch t.Kind {
	case String:
		s := v.(string)
		if t.Octal {
			if _, err := strconv.ParseUint(s, 8, 32); err != nil {
				add("%q is not an octal number (LinuxKit parses it with base 8, e.g. \"0644\")", s)
			}
		}
	case List:
		for i, it := range v.([]any) {
			check(t.Elem, it, append(path, strconv.Itoa(i)), es)
		}
	case Object:
		o := v.(*Obj)
		for _, r := range t.Required {
			if _, ok := o.Get(r); !ok {
				add("%s is required", r)
			}
		}
		for i, k := range o.Keys {
			f := t.Field(k)
			if f == nil {
				*es = append(*es, Error{Path: append([]string(nil), path...), Msg: "Additional property " + k + " is not allowed", Key: k})
				continue
			}
			check(f.Type, o.Vals[i], append(path, k), es)
		}
	}
}

// ValidateConfig checks a whole image description: the schema, then unique
// service names (LinuxKit's uniqueServices).
func ValidateConfig(v any) Errors {
	es := Validate(Config, v)
	if o, ok := v.(*Obj); ok {
		if svcs, ok := o.Get("services"); ok {
			if list, ok := svcs.([]any); ok {
				seen := map[string]bool{}
				for i, s := range list {
					so, ok := s.(*Obj)
					if !ok {
						continue
					}
					n, _ := so.Get("name")
					name, ok := n.(string)
					if !ok {
						continue
					}
					if seen[name] {
						es = append(es, Error{Path: []string{"services", strconv.Itoa(i), "name"}, Msg: "duplicate service name: " + name})
					}
					seen[name] = true
				}
			}
		}
	}
	return es
}

// ValidateLabel checks an org.mobyproject.config label as LinuxKit's
// NewImage does: an object, valid as services.0 of an image description,
// with neither name nor image. Paths start with prefix, by default
// services.0 as in LinuxKit's messages.
func ValidateLabel(v any, prefix ...string) Errors {
	if len(prefix) == 0 {
		prefix = []string{"services", "0"}
	}
	o, ok := v.(*Obj)
	if !ok {
		return Errors{{Path: prefix, Msg: "the label is not a JSON object (given: " + TypeName(v) + ")"}}
	}
	var es Errors
	rest := &Obj{}
	for i, k := range o.Keys {
		if k == "name" || k == "image" {
			es = append(es, Error{Path: append(append([]string(nil), prefix...), k), Msg: k + " cannot be set in a metadata label"})
			continue
		}
		rest.Keys, rest.Vals = append(rest.Keys, k), append(rest.Vals, o.Vals[i])
	}
	return append(es, Validate(Label, rest, prefix...)...)
}

// ParseJSON reads one JSON document into the tree Validate checks:
// objects keep their key order, whole numbers become int64 (uint64 above
// int64's range), other numbers float64.
func ParseJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := parseValue(d)
	if err != nil {
		return nil, fmt.Errorf("lkschema: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("lkschema: data after the JSON value")
	}
	return v, nil
}

func parseValue(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch x := tok.(type) {
	case json.Delim:
		switch x {
		case '{':
			o := &Obj{}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if _, dup := o.Get(k); dup {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				v, err := parseValue(d)
				if err != nil {
					return nil, err
				}
				o.Keys, o.Vals = append(o.Keys, k), append(o.Vals, v)
			}
			_, err := d.Token()
			return o, err
		case '[':
			l := []any{}
			for d.More() {
				v, err := parseValue(d)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			_, err := d.Token()
			return l, err
		}
		return nil, fmt.Errorf("unexpected %v", x)
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	return tok, nil // nil, bool, string
}

// MarshalJSON writes an object with its keys in order.
func (o *Obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.Keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.Vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
