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

func (Match) cond()  {}
func (All) cond()    {}
func (Any) cond()    {}
func (Not) cond()    {}
func (Always) cond() {}

// GroupMatchFields are the group fields a Match may name: the name (always
// compared ignoring case), description, alias, source, sourceId, id, times,
// and member (a direct user member's id: eq, or pr for a non-empty group).
var GroupMatchFields = map[string]FieldKind{
	"id": KindNumber, "name": KindString, "description": KindString, "alias": KindString, "source": KindString, "sourceId": KindString,
	"createdAt": KindTime, "updatedAt": KindTime, "member": KindMember,
}

// MatchFields are the user fields a Match may name, with their kinds.
var MatchFields = map[string]FieldKind{
	"id": KindNumber, "username": KindString, "email": KindString, "firstName": KindString, "lastName": KindString,
	"enabled": KindBool, "type": KindString, "source": KindString, "sourceId": KindString,
	"createdAt": KindTime, "updatedAt": KindTime, "softDeleted": KindBool,
}

// FieldKind is the type of a field's values.
type FieldKind int

const (
	KindString FieldKind = iota
	KindBool
	KindNumber
	KindTime
	KindMember // the id of a user the object has as a direct member
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
		if !ok {
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
	case Always, nil:
	default:
		return Errorf(EINVALID, "unknown condition %T", c)
	}
	return nil
}
