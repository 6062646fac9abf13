package usersync

import (
	"strings"
	"time"
)

// Cond is a condition on users that the store evaluates in the database
// (the SCIM filter is translated into one). Build it from Match, All, Any,
// Not and Always.
type Cond interface{ cond() }

// MatchOp compares a field with a value.
type MatchOp string

const (
	OpEq      MatchOp = "eq"
	OpNe      MatchOp = "ne"
	OpCo      MatchOp = "co" // contains
	OpSw      MatchOp = "sw" // starts with
	OpEw      MatchOp = "ew" // ends with
	OpGt      MatchOp = "gt"
	OpGe      MatchOp = "ge"
	OpLt      MatchOp = "lt"
	OpLe      MatchOp = "le"
	OpPresent MatchOp = "pr" // has a non-empty value
)

// Match compares one field. Fields: id, username, email, firstName,
// lastName, enabled, softDeleted, type, source, sourceId, createdAt, updatedAt, and
// attributes.<name>. Strings compare case-insensitively unless CaseExact
// (username always ignores case); Value is a string, bool, number or
// time.Time as the field needs.
type Match struct {
	Field     string
	Op        MatchOp
	Value     any
	CaseExact bool
}

// All holds when every condition holds (true when empty).
type All []Cond

// Any holds when some condition holds (false when empty).
type Any []Cond

// Not negates a condition.
type Not struct{ Cond Cond }

// Always is a constant condition.
type Always bool

// IDIn holds for the objects with one of these ids (one index probe each).
type IDIn []int64

// ProfileMatch compares a value in users' profiles (see User.Profile),
// named by its Path of keys from the profile's top or, inside a
// ProfileEach, from the element. Strings compare case-insensitively unless
// CaseExact; Value is a string, bool or number (float64). A value of
// another JSON type, or none, matches no comparison (and not pr).
type ProfileMatch struct {
	Path      []string
	Op        MatchOp
	Value     any
	CaseExact bool
}

// ProfileEach holds when some element of the array at Path (in the
// profile, or in the element of an enclosing ProfileEach) satisfies Where;
// a nil Where holds for any element.
type ProfileEach struct {
	Path  []string
	Where Cond
}

func (ProfileMatch) cond() {}
func (ProfileEach) cond()  {}
func (Match) cond()        {}
func (All) cond()          {}
func (Any) cond()          {}
func (Not) cond()          {}
func (Always) cond()       {}
func (IDIn) cond()         {}

// GroupMatchFields are the group fields a Match may name: the name (always
// compared ignoring case), description, alias, source, sourceId, id, times,
// member (a direct user member's id: eq, or pr for a group with users) and
// memberGroup (the same for groups nested in it).
var GroupMatchFields = map[string]FieldKind{
	"id": KindNumber, "name": KindString, "description": KindString, "alias": KindString, "source": KindString, "sourceId": KindString,
	"createdAt": KindTime, "updatedAt": KindTime, "member": KindMember, "memberGroup": KindMember,
}

// MatchFields are the user fields a Match may name, with their kinds.
var MatchFields = map[string]FieldKind{
	"id": KindNumber, "username": KindString, "email": KindString, "firstName": KindString, "lastName": KindString,
	"enabled": KindBool, "type": KindString, "source": KindString, "sourceId": KindString,
	"createdAt": KindTime, "updatedAt": KindTime, "softDeleted": KindBool,
	"profile": KindProfile,
	// displayName is first and last name; memberOf compares the names of
	// the groups a user is in (directly or through nested groups: holds
	// when one of them matches; ne is "in no group equal to"); role is a
	// role held by hand.
	"displayName": KindString, "memberOf": KindString, "role": KindString,
}

// FieldKind is the type of a field's values.
type FieldKind int

const (
	KindString FieldKind = iota
	KindBool
	KindNumber
	KindTime
	KindMember  // the id of a user the object has as a direct member
	KindProfile // ProfileMatch and ProfileEach conditions apply
)

// FieldKindOf returns a field's kind among fields; attributes.<name>
// fields are strings.
func FieldKindOf(fields map[string]FieldKind, field string) (FieldKind, bool) {
	if name, ok := strings.CutPrefix(field, "attributes."); ok {
		return KindString, name != ""
	}
	k, ok := fields[field]
	return k, ok
}

// Validate reports the first problem with a condition on users: an unknown
// field, an operator the field's kind does not allow, or a value of the
// wrong type.
func Validate(c Cond) error { return ValidateFields(c, MatchFields) }

// ValidateFields is Validate for the given fields (MatchFields or GroupMatchFields).
func ValidateFields(c Cond, fields map[string]FieldKind) error {
	switch c := c.(type) {
	case Match:
		kind, ok := FieldKindOf(fields, c.Field)
		if !ok || kind == KindProfile {
			return Errorf(EINVALID, "unknown field %q", c.Field)
		}
		if c.Op == OpPresent {
			return nil
		}
		switch c.Op {
		case OpEq, OpNe, OpGt, OpGe, OpLt, OpLe:
		case OpCo, OpSw, OpEw:
			if kind != KindString {
				return Errorf(EINVALID, "operator %s applies to strings, and %s is not one", c.Op, c.Field)
			}
		default:
			return Errorf(EINVALID, "unknown operator %q", c.Op)
		}
		if kind == KindMember && c.Op != OpEq {
			return Errorf(EINVALID, "%s is a set of user ids: only eq and pr test it", c.Field)
		}
		if kind == KindBool && c.Op != OpEq && c.Op != OpNe {
			return Errorf(EINVALID, "%s is true or false: only eq and ne compare it", c.Field)
		}
		var typeOK bool
		switch kind {
		case KindString:
			_, typeOK = c.Value.(string)
		case KindBool:
			_, typeOK = c.Value.(bool)
		case KindNumber, KindMember:
			_, typeOK = c.Value.(float64)
		case KindTime:
			_, typeOK = c.Value.(time.Time)
		}
		if !typeOK {
			return Errorf(EINVALID, "%s cannot be compared with %v (%T)", c.Field, c.Value, c.Value)
		}
		if v, ok := c.Value.(string); ok {
			if err := checkText(v); err != "" {
				return Errorf(EINVALID, "the value compared with %s %s", c.Field, err)
			}
		}
		return nil
	case All:
		for _, s := range c {
			if err := ValidateFields(s, fields); err != nil {
				return err
			}
		}
	case Any:
		for _, s := range c {
			if err := ValidateFields(s, fields); err != nil {
				return err
			}
		}
	case Not:
		return ValidateFields(c.Cond, fields)
	case ProfileMatch:
		if fields["profile"] != KindProfile {
			return Errorf(EINVALID, "profiles are conditions on users only")
		}
		return validateProfileMatch(c)
	case ProfileEach:
		if fields["profile"] != KindProfile {
			return Errorf(EINVALID, "profiles are conditions on users only")
		}
		if len(c.Path) == 0 {
			return Errorf(EINVALID, "a profile condition on each element needs a path")
		}
		if c.Where != nil {
			return ValidateFields(c.Where, fields)
		}
	case Always, IDIn, nil:
	default:
		return Errorf(EINVALID, "unknown condition %T", c)
	}
	return nil
}

func validateProfileMatch(m ProfileMatch) error {
	if len(m.Path) == 0 {
		return Errorf(EINVALID, "a profile comparison needs a path")
	}
	name := strings.Join(m.Path, ".")
	switch m.Op {
	case OpPresent:
		return nil
	case OpEq, OpNe, OpGt, OpGe, OpLt, OpLe, OpCo, OpSw, OpEw:
	default:
		return Errorf(EINVALID, "unknown operator %q", m.Op)
	}
	for _, p := range m.Path {
		if err := checkText(p); err != "" {
			return Errorf(EINVALID, "the attribute name %q %s", p, err)
		}
	}
	switch v := m.Value.(type) {
	case string:
		if err := checkText(v); err != "" {
			return Errorf(EINVALID, "the value compared with %s %s", name, err)
		}
	case float64:
		if m.Op == OpCo || m.Op == OpSw || m.Op == OpEw {
			return Errorf(EINVALID, "operator %s applies to strings, not the number compared with %s", m.Op, name)
		}
	case bool:
		if m.Op != OpEq && m.Op != OpNe {
			return Errorf(EINVALID, "%s compared with true or false: only eq and ne apply", name)
		}
	default:
		return Errorf(EINVALID, "%s cannot be compared with %v (%T)", name, m.Value, m.Value)
	}
	return nil
}
