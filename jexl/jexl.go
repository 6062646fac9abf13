// Package jexl evaluates the JEXL expressions Grouper's provisioners are
// configured with ("group.name.replaceAll('^app:', ”)", "subject
// .getAttributeValue('azurePrincipal') ?: subjectIdValue + '@' + domain"),
// on top of expr-lang/expr: a JEXL expression is rewritten into expr's
// syntax — Java-style method calls on strings, maps and subjects become
// functions, "?:" (elvis) and ternary conditions follow JEXL's truthiness —
// then compiled once and run per object.
//
// Values are strings, maps (a group, its parentStem) and Subjects; a nil
// result is the empty string.
package jexl

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Subject is a member as subject expressions see it.
type Subject interface {
	// Attribute returns an attribute's value ("" when it has none).
	Attribute(name string) string
}

// Program is a compiled expression.
type Program struct {
	src string
	p   *vm.Program
}

// Error is an expression that does not compile: where, and what was expected.
type Error struct {
	Expr     string
	Position int // 1-based character
	Message  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("expression %q: %s at character %d", e.Expr, e.Message, e.Position)
}

// Shape lists the properties of a variable that is a map: a property
// mapped to a Shape has properties in turn, one mapped to nil is a value.
// A property not listed (and not a method) is a compile error, so that a
// typo fails at once rather than reading as null.
type Shape map[string]Shape

// Compile checks and compiles a JEXL expression over the variables named.
func Compile(src string, vars ...string) (*Program, error) {
	return CompileShaped(src, nil, vars...)
}

// CompileShaped is Compile with the shapes of some variables checked.
func CompileShaped(src string, shapes map[string]Shape, vars ...string) (*Program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Expr: src, Position: 1, Message: "empty expression"}
	}
	rw := &rewrite{vars: map[string]bool{elvisMark: true}, shapes: shapes}
	for _, v := range vars {
		rw.vars[v] = true
	}
	opts := []expr.Option{expr.AllowUndefinedVariables(), expr.Patch(rw)}
	opts = append(opts, functions...)
	p, err := expr.Compile(elvis(src), opts...)
	if err == nil && rw.badMember != nil {
		return nil, &Error{Expr: src, Position: rw.badMember.Location().From + 1, Message: rw.badWhy}
	}
	if err == nil && rw.unknown != nil {
		return nil, &Error{Expr: src, Position: rw.unknown.Location().From + 1, Message: fmt.Sprintf("unknown variable %q (known: %s)", rw.unknown.Value, strings.Join(vars, ", "))}
	}
	if err != nil {
		var fe *file.Error
		if ok := asFileError(err, &fe); ok {
			return nil, &Error{Expr: src, Position: fe.Column + 1, Message: expectation(fe.Message)}
		}
		return nil, &Error{Expr: src, Position: 1, Message: err.Error()}
	}
	return &Program{src: src, p: p}, nil
}

func asFileError(err error, fe **file.Error) bool {
	e, ok := err.(*file.Error)
	if ok {
		*fe = e
	}
	return ok
}

// expectation words expr's parser messages as what was expected.
func expectation(msg string) string {
	msg = strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0])
	switch {
	case strings.HasPrefix(msg, "unexpected token EOF"):
		return "the expression ends too early (a value or a closing parenthesis was expected)"
	case strings.HasPrefix(msg, "unexpected token"):
		return msg + " (a value, an operator or a parenthesis was expected)"
	}
	return msg
}

// Source returns the expression as written.
func (p *Program) Source() string { return p.src }

// Eval runs the expression with values for its variables.
func (p *Program) Eval(vars map[string]any) (string, error) {
	out, err := expr.Run(p.p, vars)
	if err != nil {
		return "", fmt.Errorf("expression %q: %v", p.src, err)
	}
	switch v := out.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	}
	return fmt.Sprint(out), nil
}

// methods maps the Java methods JEXL expressions call to the functions
// that stand for them, each taking the receiver first.
var methods = map[string]string{
	"replaceAll": "jReplaceAll", "replaceFirst": "jReplaceFirst", "replace": "jReplace", "length": "jLength",
	"toLowerCase": "jLower", "toUpperCase": "jUpper", "trim": "jTrim", "substring": "jSubstring",
	"startsWith": "jStartsWith", "endsWith": "jEndsWith", "contains": "jContains", "indexOf": "jIndexOf",
	"get": "jGet", "containsKey": "jContainsKey", "getAttributeValue": "jAttribute", "isEmpty": "jIsEmpty",
}

// elvisMark stands for JEXL's "?:" in expr's syntax: "a ?: b" is written
// "a ? elvisMark : b", a ternary, which has the same (lowest) precedence.
const elvisMark = "__jexl_elvis__"

// elvis rewrites "?:" outside string literals.
func elvis(src string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(src) {
				b.WriteByte(c)
				i++
				c = src[i]
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '?' && i+1 < len(src) && src[i+1] == ':':
			b.WriteString("? " + elvisMark + " :")
			i++
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// rewrite turns JEXL into expr: x.m(args) → fn(x, args); "a ?: b" →
// jElvis(a, b); c ? a : b with c tested for JEXL truth. It notes the first
// variable the expression names that it was not given.
type rewrite struct {
	vars      map[string]bool
	unknown   *ast.IdentifierNode
	shapes    map[string]Shape
	badMember ast.Node
	badWhy    string
}

// shapeOf is the shape of a variable or property chain, nil when unknown.
func (r *rewrite) shapeOf(n ast.Node) (Shape, string) {
	switch n := n.(type) {
	case *ast.IdentifierNode:
		return r.shapes[n.Value], n.Value
	case *ast.ChainNode:
		return r.shapeOf(n.Node)
	case *ast.MemberNode:
		parent, path := r.shapeOf(n.Node)
		if prop, ok := n.Property.(*ast.StringNode); ok && parent != nil {
			return parent[prop.Value], path + "." + prop.Value
		}
	}
	return nil, ""
}

func (r *rewrite) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		// JEXL navigates past a missing object to null (a group one
		// folder deep has no parentStem.parentStem): never an error.
		defer func() {
			if m, ok := (*node).(*ast.MemberNode); ok && !m.Method {
				m.Optional = true
				ast.Patch(node, &ast.ChainNode{Node: m})
			}
		}()
		shape, path := r.shapeOf(n.Node)
		prop, ok := n.Property.(*ast.StringNode)
		if !ok || shape == nil || r.badMember != nil {
			break
		}
		if _, known := shape[prop.Value]; !known && methods[prop.Value] == "" {
			names := make([]string, 0, len(shape))
			for k := range shape {
				names = append(names, k)
			}
			sort.Strings(names)
			r.badMember, r.badWhy = n, fmt.Sprintf("%s has no property %q (it has: %s)", path, prop.Value, strings.Join(names, ", "))
		}
	case *ast.IdentifierNode:
		if !r.vars[n.Value] && !functionNames[n.Value] && r.unknown == nil {
			r.unknown = n
		}
	case *ast.CallNode:
		if m, ok := n.Callee.(*ast.MemberNode); ok {
			if name, ok := m.Property.(*ast.StringNode); ok {
				if fn, known := methods[name.Value]; known {
					ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: append([]ast.Node{m.Node}, n.Arguments...)})
				}
			}
		}
	case *ast.BinaryNode:
		if n.Operator == "+" { // JEXL's: null adds as nothing to a string
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "jAdd"}, Arguments: []ast.Node{n.Left, n.Right}})
		}
	case *ast.ConditionalNode:
		if id, ok := n.Exp1.(*ast.IdentifierNode); ok && id.Value == elvisMark {
			ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "jElvis"}, Arguments: []ast.Node{n.Cond, n.Exp2}})
			return
		}
		if c, ok := n.Cond.(*ast.CallNode); ok {
			if id, ok := c.Callee.(*ast.IdentifierNode); ok && id.Value == "jTruth" {
				return
			}
		}
		n.Cond = &ast.CallNode{Callee: &ast.IdentifierNode{Value: "jTruth"}, Arguments: []ast.Node{n.Cond}}
	}
}

// truth is JEXL's: nil, false, "", 0 and empty collections are false.
func truth(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case int:
		return x != 0
	case float64:
		return x != 0
	case map[string]any:
		return len(x) > 0
	case []any:
		return len(x) > 0
	}
	return true
}

// add is JEXL's +: numbers add, anything else concatenates as text, a null
// as nothing (Grouper's JEXL gives "b" for null + "b", not an error).
func add(a, b any) any {
	switch x := a.(type) {
	case int:
		switch y := b.(type) {
		case int:
			return x + y
		case float64:
			return float64(x) + y
		}
	case float64:
		switch y := b.(type) {
		case int:
			return x + float64(y)
		case float64:
			return x + y
		}
	case nil:
		if b == nil {
			return nil
		}
	}
	return str(a) + str(b)
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	return fmt.Sprint(v)
}

var (
	reMu    sync.Mutex
	reCache = map[string]*regexp.Regexp{}
)

// javaRegexp compiles a Java regular expression (as String.replaceAll
// takes) with Go's syntax, which covers what such expressions use.
func javaRegexp(s string) (*regexp.Regexp, error) {
	reMu.Lock()
	defer reMu.Unlock()
	if re, ok := reCache[s]; ok {
		return re, nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %v", s, err)
	}
	reCache[s] = re
	return re, nil
}

// javaReplacement turns Java's $1 references into Go's ${1}.
var javaGroupRef = regexp.MustCompile(`\$(\d+)`)

func javaReplacement(s string) string { return javaGroupRef.ReplaceAllString(s, "$${$1}") }

// functionNames are the functions expressions are rewritten to call.
var functionNames = map[string]bool{}

func fn(name string, f func(args ...any) (any, error)) expr.Option {
	functionNames[name] = true
	return expr.Function(name, f)
}

var functions = []expr.Option{
	fn("jTruth", func(a ...any) (any, error) { return truth(a[0]), nil }),
	fn("jAdd", func(a ...any) (any, error) { return add(a[0], a[1]), nil }),
	fn("jElvis", func(a ...any) (any, error) {
		if truth(a[0]) {
			return a[0], nil
		}
		return a[1], nil
	}),
	fn("jReplaceAll", func(a ...any) (any, error) {
		re, err := javaRegexp(str(a[1]))
		if err != nil {
			return nil, err
		}
		return re.ReplaceAllString(str(a[0]), javaReplacement(str(a[2]))), nil
	}),
	fn("jReplaceFirst", func(a ...any) (any, error) {
		re, err := javaRegexp(str(a[1]))
		if err != nil {
			return nil, err
		}
		s := str(a[0])
		loc := re.FindStringSubmatchIndex(s)
		if loc == nil {
			return s, nil
		}
		return s[:loc[0]] + string(re.ExpandString(nil, javaReplacement(str(a[2])), s, loc)) + s[loc[1]:], nil
	}),
	fn("jReplace", func(a ...any) (any, error) { return strings.ReplaceAll(str(a[0]), str(a[1]), str(a[2])), nil }),
	fn("jLength", func(a ...any) (any, error) { return len([]rune(str(a[0]))), nil }),
	fn("jLower", func(a ...any) (any, error) { return strings.ToLower(str(a[0])), nil }),
	fn("jUpper", func(a ...any) (any, error) { return strings.ToUpper(str(a[0])), nil }),
	fn("jTrim", func(a ...any) (any, error) { return strings.TrimSpace(str(a[0])), nil }),
	fn("jIsEmpty", func(a ...any) (any, error) { return !truth(a[0]), nil }),
	fn("jStartsWith", func(a ...any) (any, error) { return strings.HasPrefix(str(a[0]), str(a[1])), nil }),
	fn("jEndsWith", func(a ...any) (any, error) { return strings.HasSuffix(str(a[0]), str(a[1])), nil }),
	fn("jContains", func(a ...any) (any, error) { return strings.Contains(str(a[0]), str(a[1])), nil }),
	fn("jIndexOf", func(a ...any) (any, error) {
		i := strings.Index(str(a[0]), str(a[1]))
		if i > 0 {
			i = len([]rune(str(a[0])[:i]))
		}
		return i, nil
	}),
	fn("jSubstring", func(a ...any) (any, error) {
		r := []rune(str(a[0]))
		from, to := toInt(a[1]), len(r)
		if len(a) > 2 {
			to = toInt(a[2])
		}
		if from < 0 || to > len(r) || from > to {
			return nil, fmt.Errorf("substring(%d, %d) of a %d-character string", from, to, len(r))
		}
		return string(r[from:to]), nil
	}),
	fn("jGet", func(a ...any) (any, error) {
		m, _ := a[0].(map[string]any)
		return m[str(a[1])], nil
	}),
	fn("jContainsKey", func(a ...any) (any, error) {
		m, _ := a[0].(map[string]any)
		_, ok := m[str(a[1])]
		return ok, nil
	}),
	fn("jAttribute", func(a ...any) (any, error) {
		s, ok := a[0].(Subject)
		if !ok {
			return nil, fmt.Errorf("getAttributeValue is asked of %T, not a subject", a[0])
		}
		if v := s.Attribute(str(a[1])); v != "" {
			return v, nil
		}
		return nil, nil // as Java's null: ?: falls back
	}),
}

func toInt(v any) int {
	switch x := v.(type) {
	case int:
		return x
	case float64:
		return int(x)
	}
	return 0
}
