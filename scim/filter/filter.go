// Package filter parses SCIM filters (RFC 7644 §3.4.2.2): attribute
// expressions with eq ne co sw ew gt ge lt le and pr, the logical operators
// and, or, not with parentheses (not binds tightest, then and, then or),
// and value paths such as emails[type eq "work" and value co "@example.com"].
// Operators and attribute names are case-insensitive; values are JSON
// literals. The result is a syntax tree for the server to translate.
package filter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLength bounds a filter's length; MaxDepth its nesting.
const (
	MaxLength = 4096
	MaxDepth  = 32
)

// Expr is a filter expression: *Compare, *Present, *Logical, *Not or *ValuePath.
type Expr interface{ expr() }

// Path is an attribute path: an optional schema URI, a name and an
// optional sub-attribute ("name.givenName").
type Path struct {
	URI  string // e.g. urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
	Name string
	Sub  string
}

func (p Path) String() string {
	s := p.Name
	if p.URI != "" {
		s = p.URI + ":" + s
	}
	if p.Sub != "" {
		s += "." + p.Sub
	}
	return s
}

// Compare is "path op value". Value is a string, float64, bool or nil (null).
type Compare struct {
	Path  Path
	Op    string // lower case: eq ne co sw ew gt ge lt le
	Value any
}

// Present is "path pr".
type Present struct{ Path Path }

// Logical is "left and right" or "left or right".
type Logical struct {
	Op          string // "and" or "or"
	Left, Right Expr
}

// Not is "not (expr)".
type Not struct{ Expr Expr }

// ValuePath is "path[filter]": the filter applies to the elements of a
// multi-valued attribute, its paths relative to them.
type ValuePath struct {
	Path   Path
	Filter Expr
}

func (*Compare) expr()   {}
func (*Present) expr()   {}
func (*Logical) expr()   {}
func (*Not) expr()       {}
func (*ValuePath) expr() {}

// Error says where a filter is wrong; the SCIM server answers it with
// scimType invalidFilter.
type Error struct {
	Pos int // byte offset
	Msg string
}

func (e *Error) Error() string {
	return fmt.Sprintf("invalid filter at character %d: %s", e.Pos+1, e.Msg)
}

// Parse parses a filter.
func Parse(s string) (Expr, error) {
	if len(s) > MaxLength {
		return nil, &Error{0, fmt.Sprintf("longer than %d characters", MaxLength)}
	}
	p := &parser{s: s}
	e, err := p.or(0, false)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, p.errf("unexpected %q", p.rest(12))
	}
	return e, nil
}

// ParsePath parses an attribute path with an optional value filter and
// sub-attribute, as PATCH paths are: "members", "name.givenName",
// `emails[type eq "work"].value`, `members[value eq "2819c223"]`.
func ParsePath(s string) (path Path, filter Expr, sub string, err error) {
	if len(s) > MaxLength {
		return Path{}, nil, "", &Error{0, fmt.Sprintf("longer than %d characters", MaxLength)}
	}
	p := &parser{s: s}
	p.space()
	if path, err = p.path(); err != nil {
		return
	}
	if p.peek() == '[' {
		p.i++
		if filter, err = p.or(1, true); err != nil {
			return
		}
		p.space()
		if p.peek() != ']' {
			return path, nil, "", p.errf("expected ] to close the value filter")
		}
		p.i++
		if p.peek() == '.' {
			p.i++
			if sub, err = p.name(); err != nil {
				return
			}
		}
	}
	p.space()
	if p.i < len(p.s) {
		return path, nil, "", p.errf("unexpected %q", p.rest(12))
	}
	return path, filter, sub, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) errf(format string, args ...any) error {
	return &Error{p.i, fmt.Sprintf(format, args...)}
}

func (p *parser) rest(n int) string {
	r := p.s[p.i:]
	if len(r) > n {
		r = r[:n] + "…"
	}
	return r
}

func (p *parser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *parser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

// keyword consumes word (case-insensitively) when it stands alone.
func (p *parser) keyword(word string) bool {
	p.space()
	end := p.i + len(word)
	if end > len(p.s) || !strings.EqualFold(p.s[p.i:end], word) {
		return false
	}
	if end < len(p.s) && isNameChar(rune(p.s[end])) {
		return false
	}
	p.i = end
	return true
}

func (p *parser) or(depth int, inValue bool) (Expr, error) {
	return p.chain("or", p.and, depth, inValue)
}

func (p *parser) and(depth int, inValue bool) (Expr, error) {
	return p.chain("and", p.unary, depth, inValue)
}

// chain parses operand (op operand)*, grouping to the left: "and" binds
// tighter than "or" because or's operands are and-chains.
func (p *parser) chain(op string, operand func(depth int, inValue bool) (Expr, error), depth int, inValue bool) (Expr, error) {
	left, err := operand(depth, inValue)
	if err != nil {
		return nil, err
	}
	for p.keyword(op) {
		right, err := operand(depth, inValue)
		if err != nil {
			return nil, err
		}
		left = &Logical{Op: op, Left: left, Right: right}
	}
	return left, nil
}

// parens parses "(filter)", the parser at the opening parenthesis.
func (p *parser) parens(depth int, inValue bool) (Expr, error) {
	p.i++
	e, err := p.or(depth+1, inValue)
	if err != nil {
		return nil, err
	}
	if err := p.close(); err != nil {
		return nil, err
	}
	return e, nil
}

func (p *parser) unary(depth int, inValue bool) (Expr, error) {
	if depth > MaxDepth {
		return nil, p.errf("nested deeper than %d", MaxDepth)
	}
	p.space()
	save := p.i
	if p.keyword("not") {
		p.space()
		if p.peek() != '(' {
			return nil, p.errf("expected ( after not")
		}
		e, err := p.parens(depth, inValue)
		if err != nil {
			return nil, err
		}
		return &Not{Expr: e}, nil
	}
	p.i = save
	if p.peek() == '(' {
		return p.parens(depth, inValue)
	}
	return p.attrExp(depth, inValue)
}

func (p *parser) close() error {
	p.space()
	if p.peek() != ')' {
		return p.errf("expected )")
	}
	p.i++
	return nil
}

var compareOps = map[string]bool{"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "gt": true, "ge": true, "lt": true, "le": true}

func (p *parser) attrExp(depth int, inValue bool) (Expr, error) {
	p.space()
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	if p.peek() == '[' {
		if inValue {
			return nil, p.errf("value filters cannot nest")
		}
		p.i++
		f, err := p.or(depth+1, true)
		if err != nil {
			return nil, err
		}
		p.space()
		if p.peek() != ']' {
			return nil, p.errf("expected ] to close the value filter")
		}
		p.i++
		if p.peek() == '.' {
			// Entra's form beyond the ABNF: emails[type eq "work"].value eq
			// "x" holds when one element matches the filter and the comparison.
			p.i++
			sub, err := p.name()
			if err != nil {
				return nil, err
			}
			c, err := p.operation(Path{Name: sub})
			if err != nil {
				return nil, err
			}
			f = &Logical{Op: "and", Left: f, Right: c}
		}
		return &ValuePath{Path: path, Filter: f}, nil
	}
	return p.operation(path)
}

// operation reads " op value" or " pr" after an attribute path.
func (p *parser) operation(path Path) (Expr, error) {
	if p.i < len(p.s) && p.s[p.i] != ' ' {
		return nil, p.errf("expected a space after %q", path.String())
	}
	p.space()
	start := p.i
	for p.i < len(p.s) && unicode.IsLetter(rune(p.s[p.i])) {
		p.i++
	}
	op := strings.ToLower(p.s[start:p.i])
	if op == "pr" {
		return &Present{Path: path}, nil
	}
	if !compareOps[op] {
		p.i = start
		return nil, p.errf("expected an operator (eq ne co sw ew gt ge lt le pr) after %q", path.String())
	}
	if p.i >= len(p.s) || p.s[p.i] != ' ' {
		return nil, p.errf("expected a space and a value after %q", op)
	}
	p.space()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	return &Compare{Path: path, Op: op, Value: v}, nil
}

// path reads [URI ":"] ATTRNAME ["." subAttr]. A URI is recognised by
// its "urn:" prefix; its last colon separates it from the name.
func (p *parser) path() (Path, error) {
	start := p.i
	for p.i < len(p.s) && (isNameChar(rune(p.s[p.i])) || p.s[p.i] == ':' || p.s[p.i] == '.') {
		p.i++
	}
	raw := p.s[start:p.i]
	if raw == "" {
		return Path{}, p.errf("expected an attribute name")
	}
	var path Path
	if strings.HasPrefix(strings.ToLower(raw), "urn:") {
		k := strings.LastIndex(raw, ":")
		path.URI, raw = raw[:k], raw[k+1:]
	}
	name, sub, _ := strings.Cut(raw, ".")
	if !validName(name) || (sub != "" && !validName(sub)) || strings.Count(raw, ".") > 1 || strings.Contains(raw, ":") {
		bad := p.s[start:p.i]
		p.i = start
		return Path{}, p.errf("%q is not an attribute path", bad)
	}
	path.Name, path.Sub = name, sub
	return path, nil
}

func (p *parser) name() (string, error) {
	start := p.i
	for p.i < len(p.s) && isNameChar(rune(p.s[p.i])) {
		p.i++
	}
	if !validName(p.s[start:p.i]) {
		return "", p.errf("expected an attribute name")
	}
	return p.s[start:p.i], nil
}

// ATTRNAME = ALPHA *(nameChar), nameChar = "-" / "_" / DIGIT / ALPHA;
// "$ref" is allowed too (RFC 7643 §2.1 uses it for references).
func validName(s string) bool {
	if s == "$ref" {
		return true
	}
	if s == "" || !isAlpha(rune(s[0])) {
		return false
	}
	for _, c := range s {
		if !isNameChar(c) {
			return false
		}
	}
	return true
}

func isAlpha(c rune) bool { return c < utf8.RuneSelf && unicode.IsLetter(c) }

func isNameChar(c rune) bool {
	return isAlpha(c) || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '$'
}

// value reads a JSON literal: string, number, true, false or null.
func (p *parser) value() (any, error) {
	switch {
	case p.peek() == '"':
		start := p.i
		p.i++
		for p.i < len(p.s) && p.s[p.i] != '"' {
			if p.s[p.i] == '\\' {
				p.i++
			}
			p.i++
		}
		if p.i >= len(p.s) {
			p.i = start
			return nil, p.errf("unterminated string")
		}
		p.i++
		var v string
		if err := json.Unmarshal([]byte(p.s[start:p.i]), &v); err != nil {
			p.i = start
			return nil, p.errf("bad string %s: %v", p.s[start:p.i], err)
		}
		return v, nil
	case p.keyword("true"):
		return true, nil
	case p.keyword("false"):
		return false, nil
	case p.keyword("null"):
		return nil, nil
	}
	start := p.i
	for p.i < len(p.s) && strings.IndexByte("+-0123456789.eE", p.s[p.i]) >= 0 {
		p.i++
	}
	if start == p.i {
		return nil, p.errf("expected a value (a \"string\", number, true, false or null)")
	}
	f, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil || !json.Valid([]byte(p.s[start:p.i])) {
		p.i = start
		return nil, p.errf("bad number %q", p.s[start:p.i])
	}
	return f, nil
}

// String renders an expression back in filter syntax (fully parenthesised).
func String(e Expr) string {
	switch e := e.(type) {
	case *Compare:
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(e.Value)
		return e.Path.String() + " " + e.Op + " " + strings.TrimSuffix(b.String(), "\n")
	case *Present:
		return e.Path.String() + " pr"
	case *Logical:
		return "(" + String(e.Left) + " " + e.Op + " " + String(e.Right) + ")"
	case *Not:
		return "not (" + String(e.Expr) + ")"
	case *ValuePath:
		return e.Path.String() + "[" + String(e.Filter) + "]"
	}
	return ""
}
