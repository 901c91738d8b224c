package yml

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/lklog/lklog/internal/lkschema"
)

// YAML 1.1 plain scalars that are not strings, as LinuxKit's YAML reader
// (gopkg.in/yaml.v2) resolves them.
var (
	nulls   = map[string]bool{"": true, "~": true, "null": true, "Null": true, "NULL": true}
	bools   = map[string]bool{"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "true": true, "True": true, "TRUE": true, "on": true, "On": true, "ON": true, "n": false, "N": false, "no": false, "No": false, "NO": false, "false": false, "False": false, "FALSE": false, "off": false, "Off": false, "OFF": false}
	floatRE = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
)

// Resolve returns the value of a scalar node as LinuxKit reads it into an
// untyped value: quoted and block scalars are strings; a plain scalar is
// null (empty, ~, null), a boolean (true, yes, on, y, false, no, off, n
// in their spellings), an integer (decimal, 0644 octal, 0x hex, 0b binary,
// underscores ignored), a float, or else a string. So `mode: 0644` is the
// integer 420 and `mode: "0644"` the string "0644".
func Resolve(n *Node) any {
	if n.Quoted {
		return n.Value
	}
	s := n.Value
	if nulls[s] {
		return nil
	}
	if b, ok := bools[s]; ok {
		return b
	}
	switch s {
	case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", ".nan", ".NaN", ".NAN", "-.inf", "-.Inf", "-.INF":
		f, _ := strconv.ParseFloat(strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "+"), ".", ""), 64)
		return f
	}
	if s[0] != '+' && s[0] != '-' && s[0] != '.' && (s[0] < '0' || s[0] > '9') {
		return s
	}
	plain := strings.ReplaceAll(s, "_", "")
	if i, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return i
	}
	if u, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return u
	}
	if floatRE.MatchString(plain) {
		if f, err := strconv.ParseFloat(plain, 64); err == nil {
			return f
		}
	}
	return s
}

// Value converts a node to the tree lkschema checks, with YAML 1.1 types
// (see Resolve).
func Value(n *Node) any {
	switch n.Kind {
	case Map:
		o := &lkschema.Obj{}
		for i, k := range n.Keys {
			o.Keys = append(o.Keys, k)
			o.Vals = append(o.Vals, Value(n.Vals[i]))
		}
		return o
	case Seq:
		l := []any{}
		for _, it := range n.Items {
			l = append(l, Value(it))
		}
		return l
	}
	return Resolve(n)
}

// At returns the node at a path of keys and list indexes (as in
// lkschema.Error), or the deepest node on the way.
func (n *Node) At(path []string) *Node {
	cur := n
	for _, p := range path {
		var next *Node
		switch cur.Kind {
		case Map:
			next = cur.Get(p)
		case Seq:
			if i, err := strconv.Atoi(p); err == nil && i >= 0 && i < len(cur.Items) {
				next = cur.Items[i]
			}
		}
		if next == nil {
			return cur
		}
		cur = next
	}
	return cur
}
