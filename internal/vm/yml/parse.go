// Package yml reads the subset of YAML that LinuxKit image descriptions use
// (block mappings and sequences, flow sequences and mappings, plain and
// quoted scalars, literal and folded block scalars, comments) and maps it
// onto the parts of LinuxKit's configuration that lklog's tools need.
// Anchors, aliases, tags and multi-document streams are rejected.
package yml

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the type of a Node.
type Kind int

// Node kinds.
const (
	Scalar Kind = iota
	Map
	Seq
)

// Node is one YAML value. Map keeps its keys in document order.
type Node struct {
	Kind  Kind
	Value string // Scalar
	// Quoted is true for a quoted or block scalar: always a string. A
	// plain scalar's type comes from its text (see Resolve).
	Quoted bool
	Keys   []string
	Vals   []*Node // Map: Vals[i] belongs to Keys[i]
	KLine  []int   // Map: the line of Keys[i]
	Items  []*Node // Seq
	Line   int     // 1-based line where the value starts
}

// Get returns the value of key in a Map node, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != Map {
		return nil
	}
	for i, k := range n.Keys {
		if k == key {
			return n.Vals[i]
		}
	}
	return nil
}

type line struct {
	num    int
	indent int
	text   string // without indentation and trailing comment/space
	raw    string // whole original line (for block scalars)
}

type parser struct {
	lines []line
	pos   int
}

// Parse parses one YAML document.
func Parse(src string) (*Node, error) {
	p := &parser{}
	for i, raw := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		lead := raw[:len(raw)-len(strings.TrimLeft(raw, " \t"))]
		if strings.Contains(lead, "\t") && strings.TrimSpace(raw) != "" {
			return nil, fmt.Errorf("yml: line %d: tab in indentation", i+1)
		}
		text := strings.TrimLeft(raw, " ")
		indent := len(raw) - len(text)
		text = strings.TrimRight(stripComment(text), " \t")
		if text == "---" && len(p.lines) == 0 {
			continue
		}
		if text == "---" || text == "..." {
			return nil, fmt.Errorf("yml: line %d: multiple documents are not supported", i+1)
		}
		p.lines = append(p.lines, line{num: i + 1, indent: indent, text: text, raw: raw})
	}
	p.skipBlank()
	if p.pos >= len(p.lines) {
		return &Node{Kind: Map, Line: 1}, nil
	}
	n, err := p.block(p.lines[p.pos].indent)
	if err != nil {
		return nil, err
	}
	p.skipBlank()
	if p.pos < len(p.lines) {
		l := p.lines[p.pos]
		return nil, fmt.Errorf("yml: line %d: unexpected indentation", l.num)
	}
	return n, nil
}

// stripComment removes a "#" comment that starts the line or follows
// whitespace, outside quotes.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			if i == 0 || strings.ContainsRune(" \t[{,:-", rune(s[i-1])) {
				quote = c
			}
		case c == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			return s[:i]
		}
	}
	return s
}

func (p *parser) skipBlank() {
	for p.pos < len(p.lines) && p.lines[p.pos].text == "" {
		p.pos++
	}
}

func isSeqItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

// block parses the mapping or sequence whose lines start at indent.
func (p *parser) block(indent int) (*Node, error) {
	p.skipBlank()
	l := p.lines[p.pos]
	if isSeqItem(l.text) {
		return p.seq(indent)
	}
	if _, _, ok, err := splitKey(l.text, l.num); err != nil {
		return nil, err
	} else if !ok {
		// A lone scalar (e.g. a multi-line plain scalar is not supported).
		p.pos++
		return p.inline(l.text, l.num)
	}
	return p.mapping(indent)
}

func (p *parser) seq(indent int) (*Node, error) {
	n := &Node{Kind: Seq, Line: p.lines[p.pos].num}
	for {
		p.skipBlank()
		if p.pos >= len(p.lines) {
			return n, nil
		}
		l := p.lines[p.pos]
		if l.indent < indent || !isSeqItem(l.text) {
			if l.indent > indent {
				return nil, fmt.Errorf("yml: line %d: bad indentation in sequence", l.num)
			}
			return n, nil
		}
		if l.indent > indent {
			return nil, fmt.Errorf("yml: line %d: bad indentation in sequence", l.num)
		}
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		if rest == "" {
			p.pos++
			p.skipBlank()
			if p.pos >= len(p.lines) || p.lines[p.pos].indent <= indent {
				n.Items = append(n.Items, &Node{Kind: Scalar, Line: l.num})
				continue
			}
			item, err := p.block(p.lines[p.pos].indent)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, item)
			continue
		}
		inner := indent + (len(l.text) - len(rest))
		if _, _, ok, err := splitKey(rest, l.num); err != nil {
			return nil, err
		} else if ok || isSeqItem(rest) {
			// "- key: value": a mapping whose first line shares the dash.
			p.lines[p.pos] = line{num: l.num, indent: inner, text: rest, raw: l.raw}
			item, err := p.block(inner)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, item)
			continue
		}
		p.pos++
		item, err := p.scalarOrFlow(rest, l.num, indent)
		if err != nil {
			return nil, err
		}
		n.Items = append(n.Items, item)
	}
}

// splitKey splits "key: value" (or "key:"). ok is false when text is not a
// mapping entry.
func splitKey(text string, num int) (key, value string, ok bool, err error) {
	if strings.HasPrefix(text, "[") || strings.HasPrefix(text, "{") {
		return "", "", false, nil
	}
	if strings.HasPrefix(text, "&") || strings.HasPrefix(text, "*") || strings.HasPrefix(text, "!") {
		return "", "", false, fmt.Errorf("yml: line %d: anchors, aliases and tags are not supported", num)
	}
	if text[0] == '@' || text[0] == '`' {
		return "", "", false, fmt.Errorf("yml: line %d: a plain value cannot start with %q (reserved in YAML; quote it)", num, text[0])
	}
	if text[0] == '"' || text[0] == '\'' {
		s, rest, err := quoted(text, num)
		if err != nil {
			return "", "", false, err
		}
		if rest == ":" || strings.HasPrefix(rest, ": ") {
			return s, strings.TrimSpace(rest[1:]), true, nil
		}
		return "", "", false, nil
	}
	for i := 0; i < len(text); i++ {
		if text[i] == ':' && (i+1 == len(text) || text[i+1] == ' ') {
			return strings.TrimSpace(text[:i]), strings.TrimSpace(text[i+1:]), true, nil
		}
	}
	return "", "", false, nil
}

func (p *parser) mapping(indent int) (*Node, error) {
	n := &Node{Kind: Map, Line: p.lines[p.pos].num}
	for {
		p.skipBlank()
		if p.pos >= len(p.lines) {
			return n, nil
		}
		l := p.lines[p.pos]
		if l.indent < indent {
			return n, nil
		}
		if l.indent > indent {
			return nil, fmt.Errorf("yml: line %d: bad indentation in mapping", l.num)
		}
		if isSeqItem(l.text) {
			return n, nil // a sequence of the parent at the same indent
		}
		key, value, ok, err := splitKey(l.text, l.num)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("yml: line %d: expected \"key: value\", got %q", l.num, l.text)
		}
		if n.Get(key) != nil {
			return nil, fmt.Errorf("yml: line %d: duplicate key %q", l.num, key)
		}
		p.pos++
		var val *Node
		switch {
		case value == "":
			p.skipBlank()
			switch {
			case p.pos < len(p.lines) && p.lines[p.pos].indent > indent:
				val, err = p.block(p.lines[p.pos].indent)
			case p.pos < len(p.lines) && p.lines[p.pos].indent == indent && isSeqItem(p.lines[p.pos].text):
				val, err = p.seq(indent)
			default:
				val = &Node{Kind: Scalar, Line: l.num}
			}
		default:
			val, err = p.scalarOrFlow(value, l.num, indent)
		}
		if err != nil {
			return nil, err
		}
		n.Keys = append(n.Keys, key)
		n.Vals = append(n.Vals, val)
		n.KLine = append(n.KLine, l.num)
	}
}

// scalarOrFlow parses an inline value; block scalars and flow collections
// may continue on following lines indented more than parent.
func (p *parser) scalarOrFlow(value string, num, parent int) (*Node, error) {
	if value == "|" || value == "|-" || value == "|+" || value == ">" || value == ">-" || value == ">+" {
		return p.blockScalar(value, num, parent)
	}
	if strings.HasPrefix(value, "[") || strings.HasPrefix(value, "{") {
		// Join continuation lines until the brackets balance.
		for !balanced(value) && p.pos < len(p.lines) && p.lines[p.pos].indent > parent {
			value += " " + p.lines[p.pos].text
			p.pos++
		}
	}
	return p.inline(value, num)
}

func balanced(s string) bool {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		}
	}
	return depth <= 0
}

func (p *parser) blockScalar(style string, num, parent int) (*Node, error) {
	var body []string
	contentIndent := -1
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		if strings.TrimSpace(l.raw) == "" {
			body = append(body, "")
			p.pos++
			continue
		}
		if l.indent <= parent {
			break
		}
		if contentIndent < 0 {
			contentIndent = l.indent
		}
		if l.indent < contentIndent {
			return nil, fmt.Errorf("yml: line %d: block scalar line less indented than its first line", l.num)
		}
		body = append(body, l.raw[contentIndent:])
		p.pos++
	}
	// Trailing blank lines belong to chomping, not content.
	trailing := 0
	for len(body) > 0 && body[len(body)-1] == "" {
		body = body[:len(body)-1]
		trailing++
	}
	var s string
	if style[0] == '>' {
		s = fold(body)
	} else {
		s = strings.Join(body, "\n")
	}
	switch {
	case len(body) == 0:
	case strings.HasSuffix(style, "-"):
	case strings.HasSuffix(style, "+"):
		s += "\n" + strings.Repeat("\n", trailing)
	default:
		s += "\n"
	}
	return &Node{Kind: Scalar, Value: s, Quoted: true, Line: num}, nil
}

func fold(lines []string) string {
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			if l == "" || lines[i-1] == "" || strings.HasPrefix(l, " ") {
				b.WriteString("\n")
			} else {
				b.WriteString(" ")
			}
		}
		b.WriteString(l)
	}
	return b.String()
}

// inline parses a complete one-line value.
func (p *parser) inline(s string, num int) (*Node, error) {
	n, rest, err := flowValue(s, num, false)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(rest) != "" {
		return nil, fmt.Errorf("yml: line %d: unexpected %q after value", num, rest)
	}
	return n, nil
}

// flowValue parses one value at the start of s. Inside a flow collection
// (inFlow) plain scalars end at ',', ']' or '}'.
func flowValue(s string, num int, inFlow bool) (*Node, string, error) {
	s = strings.TrimLeft(s, " ")
	if s == "" {
		return &Node{Kind: Scalar, Line: num}, "", nil
	}
	switch s[0] {
	case '[':
		n := &Node{Kind: Seq, Line: num}
		s = strings.TrimLeft(s[1:], " ")
		for {
			if strings.HasPrefix(s, "]") {
				return n, s[1:], nil
			}
			item, rest, err := flowValue(s, num, true)
			if err != nil {
				return nil, "", err
			}
			n.Items = append(n.Items, item)
			s = strings.TrimLeft(rest, " ")
			switch {
			case strings.HasPrefix(s, ","):
				s = strings.TrimLeft(s[1:], " ")
			case strings.HasPrefix(s, "]"):
			default:
				return nil, "", fmt.Errorf("yml: line %d: expected ',' or ']' in flow sequence", num)
			}
		}
	case '{':
		n := &Node{Kind: Map, Line: num}
		s = strings.TrimLeft(s[1:], " ")
		for {
			if strings.HasPrefix(s, "}") {
				return n, s[1:], nil
			}
			k, rest, err := flowValue(s, num, true)
			if err != nil {
				return nil, "", err
			}
			if k.Kind != Scalar || !strings.HasPrefix(strings.TrimLeft(rest, " "), ":") {
				return nil, "", fmt.Errorf("yml: line %d: expected key: value in flow mapping", num)
			}
			v, rest, err := flowValue(strings.TrimLeft(rest, " ")[1:], num, true)
			if err != nil {
				return nil, "", err
			}
			n.Keys = append(n.Keys, k.Value)
			n.Vals = append(n.Vals, v)
			n.KLine = append(n.KLine, num)
			s = strings.TrimLeft(rest, " ")
			switch {
			case strings.HasPrefix(s, ","):
				s = strings.TrimLeft(s[1:], " ")
			case strings.HasPrefix(s, "}"):
			default:
				return nil, "", fmt.Errorf("yml: line %d: expected ',' or '}' in flow mapping", num)
			}
		}
	case '"', '\'':
		v, rest, err := quoted(s, num)
		if err != nil {
			return nil, "", err
		}
		return &Node{Kind: Scalar, Value: v, Quoted: true, Line: num}, rest, nil
	case '&', '*', '!':
		return nil, "", fmt.Errorf("yml: line %d: anchors, aliases and tags are not supported", num)
	case '@', '`':
		return nil, "", fmt.Errorf("yml: line %d: a plain value cannot start with %q (reserved in YAML; quote it)", num, s[0])
	}
	end := len(s)
	if inFlow {
		for i := 0; i < len(s); i++ {
			if s[i] == ',' || s[i] == ']' || s[i] == '}' || (s[i] == ':' && (i+1 == len(s) || s[i+1] == ' ')) {
				end = i
				break
			}
		}
	}
	return &Node{Kind: Scalar, Value: strings.TrimSpace(s[:end]), Line: num}, s[end:], nil
}

// quoted parses a single- or double-quoted scalar at the start of s and
// returns its value and the text after the closing quote.
func quoted(s string, num int) (string, string, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		if q == '\'' {
			if c == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				return b.String(), s[i+1:], nil
			}
			b.WriteByte(c)
			continue
		}
		switch c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 >= len(s) {
				return "", "", fmt.Errorf("yml: line %d: unfinished escape", num)
			}
			i++
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			case '"', '\\', '/', ' ':
				b.WriteByte(e)
			case 'x', 'u', 'U':
				width := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if i+width >= len(s) {
					return "", "", fmt.Errorf("yml: line %d: short \\%c escape", num, e)
				}
				v, err := strconv.ParseUint(s[i+1:i+1+width], 16, 32)
				if err != nil {
					return "", "", fmt.Errorf("yml: line %d: bad \\%c escape: %w", num, e, err)
				}
				b.WriteRune(rune(v))
				i += width
			default:
				return "", "", fmt.Errorf("yml: line %d: unknown escape \\%c", num, e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("yml: line %d: unterminated %c-quoted string", num, q)
}
