// Package rules is the condition language of role mappings and user
// provisioning rules: the SCIM filter grammar (RFC 7644 §3.4.2.2) over the
// directory's user fields, compiled into a directory condition so that the
// database evaluates it over every user in one query, and checked against
// a few users with the part of the condition that decided each.
//
// The seed's kinds of condition, written in it:
//
//	member of contains "Office 365"   memberOf co "Office 365"
//	display name equals "Josh Ames"   displayName eq "Josh Ames"
//	department does not contain "IT" not (attributes.department co "IT")
//	email is empty                    not (email pr)
//	all of … / any of …               … and … / … or …
package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/scim/filter"
)

// Fields are the user fields a condition may name (and attributes.NAME
// for custom attributes), with the directory field each stands for.
var Fields = map[string]string{
	"username": "username", "email": "email", "firstname": "firstName", "lastname": "lastName",
	"displayname": "displayName", "memberof": "memberOf", "role": "role", "type": "type",
	"source": "source", "enabled": "enabled",
}

// FieldNames lists the fields for messages.
func FieldNames() string {
	var names []string
	for _, v := range Fields {
		names = append(names, v)
	}
	sort.Strings(names)
	return strings.Join(names, ", ") + ", attributes.NAME"
}

// Condition is a parsed, compiled condition.
type Condition struct {
	Source string
	Cond   usersync.Cond // for the store
	expr   filter.Expr   // nil: always holds
}

// Parse compiles a condition; "" holds for every user. A condition that
// does not parse is EINVALID with the position and what was expected.
func Parse(src string) (*Condition, error) {
	c := &Condition{Source: src}
	if strings.TrimSpace(src) == "" {
		c.Cond = usersync.Always(true)
		return c, nil
	}
	e, err := filter.Parse(src)
	if err != nil {
		var fe *filter.Error
		if ok := asFilterError(err, &fe); ok {
			return nil, usersync.Errorf(usersync.EINVALID, "condition %q: at character %d: %s", src, fe.Pos+1, fe.Msg)
		}
		return nil, usersync.Errorf(usersync.EINVALID, "condition %q: %v", src, err)
	}
	cond, err := compile(e)
	if err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "condition %q: %s", src, usersync.ErrorMessage(err))
	}
	if err := usersync.Validate(cond); err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "condition %q: %s", src, usersync.ErrorMessage(err))
	}
	c.Cond, c.expr = cond, e
	return c, nil
}

func asFilterError(err error, out **filter.Error) bool {
	fe, ok := err.(*filter.Error)
	if ok {
		*out = fe
	}
	return ok
}

func compile(e filter.Expr) (usersync.Cond, error) {
	switch e := e.(type) {
	case *filter.Logical:
		l, err := compile(e.Left)
		if err != nil {
			return nil, err
		}
		r, err := compile(e.Right)
		if err != nil {
			return nil, err
		}
		if e.Op == "and" {
			return usersync.All{l, r}, nil
		}
		return usersync.Any{l, r}, nil
	case *filter.Not:
		c, err := compile(e.Expr)
		if err != nil {
			return nil, err
		}
		return usersync.Not{Cond: c}, nil
	case *filter.Present:
		f, err := field(e.Path)
		if err != nil {
			return nil, err
		}
		return usersync.Match{Field: f, Op: usersync.OpPresent}, nil
	case *filter.Compare:
		f, err := field(e.Path)
		if err != nil {
			return nil, err
		}
		v := e.Value
		if v == nil {
			// x eq null is "x is empty"
			m := usersync.Match{Field: f, Op: usersync.OpPresent}
			if e.Op == "ne" {
				return m, nil
			}
			if e.Op == "eq" {
				return usersync.Not{Cond: m}, nil
			}
			return nil, usersync.Errorf(usersync.EINVALID, "%s %s null: only eq and ne compare with null", e.Path, e.Op)
		}
		if f == "enabled" {
			if _, ok := v.(bool); !ok {
				return nil, usersync.Errorf(usersync.EINVALID, "enabled is true or false, not %v", v)
			}
		} else if n, ok := v.(float64); ok {
			v = fmt.Sprint(n) // every other field is text: employeeNumber eq 42 means "42"
		} else if _, ok := v.(string); !ok {
			return nil, usersync.Errorf(usersync.EINVALID, "%s compares with a \"string\", not %v", e.Path, v)
		}
		return usersync.Match{Field: f, Op: usersync.MatchOp(e.Op), Value: v}, nil
	case *filter.ValuePath:
		return nil, usersync.Errorf(usersync.EINVALID, "value filters ([…]) are not part of rule conditions")
	}
	return nil, usersync.Errorf(usersync.EINVALID, "unknown condition %T", e)
}

func field(p filter.Path) (string, error) {
	if p.URI != "" {
		return "", usersync.Errorf(usersync.EINVALID, "%s: rule conditions name fields without a schema", p)
	}
	if strings.EqualFold(p.Name, "attributes") && p.Sub != "" {
		return "attributes." + p.Sub, nil
	}
	if f, ok := Fields[strings.ToLower(p.Name)]; ok && p.Sub == "" {
		return f, nil
	}
	return "", usersync.Errorf(usersync.EINVALID, "unknown field %q: a condition names %s", p.String(), FieldNames())
}

// Verdict says whether a condition holds for one user, and why.
type Verdict struct {
	Username string `json:"username"`
	Holds    bool   `json:"holds"`
	Because  string `json:"because"`
}

// leaf is one comparison of a condition, as text, with the users it holds for.
type leaf struct {
	text  string
	holds map[int64]bool
}

// Check evaluates the condition for each user, every comparison in the
// database (the same SQL the provisioner uses), and says which part
// decided it. A comparison on role counts roles given by mappings ms as
// well as those held by hand (ExpandRoles).
func (c *Condition) Check(ctx context.Context, users usersync.UserService, list []*usersync.User, ms []*usersync.Mapping) ([]Verdict, error) {
	out := make([]Verdict, len(list))
	if c.expr == nil {
		for i, u := range list {
			out[i] = Verdict{Username: u.Username, Holds: true, Because: "the condition is empty: it holds for every user"}
		}
		return out, nil
	}
	ids := make(usersync.IDIn, len(list))
	for i, u := range list {
		ids[i] = u.ID
	}
	leaves := map[filter.Expr]*leaf{}
	var walk func(e filter.Expr) error
	walk = func(e filter.Expr) error {
		switch x := e.(type) {
		case *filter.Logical:
			if err := walk(x.Left); err != nil {
				return err
			}
			return walk(x.Right)
		case *filter.Not:
			return walk(x.Expr)
		}
		cond, err := compile(e)
		if err == nil {
			cond, err = ExpandRoles(cond, ms)
		}
		if err != nil {
			return err
		}
		found, err := users.UserIDs(ctx, usersync.All{ids, cond})
		if err != nil {
			return err
		}
		l := &leaf{text: text(e), holds: map[int64]bool{}}
		for _, id := range found {
			l.holds[id] = true
		}
		leaves[e] = l
		return nil
	}
	if err := walk(c.expr); err != nil {
		return nil, err
	}
	for i, u := range list {
		holds, why := explain(c.expr, leaves, u.ID)
		out[i] = Verdict{Username: u.Username, Holds: holds, Because: why}
	}
	return out, nil
}

// explain evaluates e for a user and names the comparisons that decided it.
func explain(e filter.Expr, leaves map[filter.Expr]*leaf, id int64) (bool, string) {
	switch x := e.(type) {
	case *filter.Logical:
		lh, lw := explain(x.Left, leaves, id)
		rh, rw := explain(x.Right, leaves, id)
		if x.Op == "and" {
			switch {
			case lh && rh:
				return true, lw + " and " + rw
			case !lh:
				return false, lw
			default:
				return false, rw
			}
		}
		switch {
		case lh:
			return true, lw
		case rh:
			return true, rw
		default:
			return false, lw + " and " + rw
		}
	case *filter.Not:
		h, w := explain(x.Expr, leaves, id)
		return !h, w
	}
	l := leaves[e]
	if l.holds[id] {
		return true, l.text + " holds"
	}
	return false, l.text + " does not hold"
}

// text writes a comparison back as the condition language spells it.
func text(e filter.Expr) string {
	switch x := e.(type) {
	case *filter.Present:
		return x.Path.String() + " pr"
	case *filter.Compare:
		v, _ := json.Marshal(x.Value)
		return x.Path.String() + " " + x.Op + " " + string(v)
	}
	return fmt.Sprint(e)
}
