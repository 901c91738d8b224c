package lkschema

import (
	"fmt"
	"strings"
)

// TypeString describes t in a few words: "string", "list of device", ...
func TypeString(t *Type) string {
	switch t.Kind {
	case String:
		if t.Octal {
			return "string (octal)"
		}
		return "string"
	case Integer:
		return "integer"
	case Boolean:
		return "boolean"
	case StringOrInteger:
		return "string or integer"
	case List:
		return "list of " + TypeString(t.Elem)
	case StringMap:
		return "map of string"
	}
	return t.Name
}

// Markdown renders the rules as tables, one per object type, starting with
// the image description, then build.yml; every object type once.
func Markdown() string {
	var b strings.Builder
	done := map[*Type]bool{}
	var queue []*Type
	push := func(t *Type) {
		for t.Kind == List {
			t = t.Elem
		}
		if t.Kind == Object && !done[t] {
			done[t] = true
			queue = append(queue, t)
		}
	}
	push(Config)
	push(BuildYML)
	done[Label] = true // described with image
	for len(queue) > 0 {
		t := queue[0]
		queue = queue[1:]
		fmt.Fprintf(&b, "`%s`", t.Name)
		if len(t.Required) > 0 {
			fmt.Fprintf(&b, " (required: %s)", strings.Join(t.Required, ", "))
		}
		b.WriteString(":\n\n| field | type | note |\n|---|---|---|\n")
		for _, f := range t.Fields {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Name, TypeString(f.Type), f.Note)
			push(f.Type)
		}
		b.WriteString("\n")
	}
	return b.String()
}
