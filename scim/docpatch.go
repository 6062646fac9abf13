// PATCH on a User doc (RFC 7644 §3.5.2): add, replace and remove by path,
// sub-attribute and value filter, with the forms Entra sends.

package scim

import (
	"encoding/json"
	"strings"

	"github.com/usersync/usersync/scim/filter"
)

// patchDoc applies one operation to a User doc.
func patchDoc(d doc, op patchOp) error {
	var value any
	if len(op.Value) > 0 {
		if err := json.Unmarshal(op.Value, &value); err != nil {
			return invalidValue("operation value: %v", err)
		}
	}
	if op.Path == "" {
		obj, ok := value.(map[string]any)
		if !ok {
			return invalidValue("%s without a path needs an object value", op.Op)
		}
		for k, v := range obj {
			if strings.EqualFold(k, SchemaEnterprise) {
				ext, ok := v.(map[string]any)
				if !ok && v != nil {
					return invalidValue("%s must be an object", SchemaEnterprise)
				}
				for ek, ev := range ext {
					if a := EnterpriseSchema.Attr(ek); a != nil && a.Mutability != "readOnly" {
						if err := patchAttr(d, EnterpriseSchema, a, "", nil, op.Op, ev); err != nil {
							return err
						}
					}
				}
				continue
			}
			// A key may be a path itself: Entra sends "name.givenName" and
			// URN-qualified enterprise names as keys.
			p, _, _, err := filter.ParsePath(k)
			if err != nil {
				continue // not an attribute name: ignored, as unknown attributes are
			}
			s, a := resolveUser(p.URI, p.Name)
			if a == nil || a.Mutability == "readOnly" || a.Mutability == "writeOnly" {
				continue // id, meta, groups sent back, password: ignored (RFC 7644 §3.5.2)
			}
			if err := patchAttr(d, s, a, p.Sub, nil, op.Op, v); err != nil {
				return err
			}
		}
		return nil
	}
	p, vf, sub, err := filter.ParsePath(op.Path)
	if err != nil {
		return invalidPath("path %q: %v", op.Path, err)
	}
	if p.Sub != "" {
		sub = p.Sub
	}
	s, a := resolveUser(p.URI, p.Name)
	switch {
	case a == nil:
		return invalidPath("path %q: User has no attribute %q (see /Schemas)", op.Path, p.String())
	case a.Mutability == "readOnly":
		return &Error{Status: 400, ScimType: "mutability", Detail: a.Name + " is read-only"}
	case a.Mutability == "writeOnly":
		return nil // password: accepted, never stored
	}
	return patchAttr(d, s, a, sub, vf, op.Op, value)
}

// patchAttr applies op to attribute a (of schema s) in d: the whole
// attribute, a sub-attribute of it, or the elements a value filter selects.
func patchAttr(d doc, s *Schema, a *Attribute, sub string, vf filter.Expr, op string, value any) error {
	c := container(d, s, op != "remove")
	if c == nil {
		if vf != nil {
			return noTarget(a.Name)
		}
		return nil // removing from an extension the user does not have
	}
	defer func() {
		if s == EnterpriseSchema && len(c) == 0 {
			delete(d, SchemaEnterprise)
		}
	}()
	var sa *Attribute
	if sub != "" {
		if sa = a.Sub(sub); sa == nil {
			return invalidPath("%s has no sub-attribute %q", a.Name, sub)
		}
		if sa.Mutability == "readOnly" {
			return &Error{Status: 400, ScimType: "mutability", Detail: a.Name + "." + sa.Name + " is read-only"}
		}
	}
	if a.Name == "userName" && op == "remove" {
		return &Error{Status: 400, ScimType: "mutability", Detail: "userName is required and cannot be removed"}
	}
	if a.Name == "active" && op == "remove" {
		c["active"] = false // an account without a status is not active
		return nil
	}
	if vf != nil {
		return patchSelected(c, a, sa, vf, op, value)
	}
	if !a.MultiValued {
		if sa == nil {
			return setWhole(c, a, op, value)
		}
		obj, _ := c[a.Name].(map[string]any)
		if obj == nil {
			obj = doc{}
		}
		if err := setSub(obj, sa, op, value, a.Name); err != nil {
			return err
		}
		if len(obj) == 0 {
			delete(c, a.Name)
		} else {
			c[a.Name] = obj
		}
		return nil
	}
	list, _ := c[a.Name].([]any)
	if sa != nil { // emails.value without a filter: every element
		if len(list) == 0 && op != "remove" {
			list = []any{doc{}}
		}
		for _, el := range list {
			if err := setSub(el.(map[string]any), sa, op, value, a.Name); err != nil {
				return err
			}
		}
		return setList(c, a, list)
	}
	switch op {
	case "remove":
		delete(c, a.Name)
		return nil
	case "replace":
		return setWhole(c, a, op, value)
	}
	v, err := coerce(a, value, a.Name)
	if err != nil || v == nil {
		return err
	}
	for _, nv := range v.([]any) { // add: new values join, equal ones are not doubled
		dup := false
		for _, old := range list {
			if equalValue(old, nv) {
				dup = true
				break
			}
		}
		if !dup {
			if isPrimary(nv) {
				clearPrimary(list)
			}
			list = append(list, nv)
		}
	}
	return setList(c, a, list)
}

// setWhole adds or replaces a whole attribute; a complex one merges the
// sub-attributes given (RFC 7644 §3.5.2.1, §3.5.2.3).
func setWhole(c doc, a *Attribute, op string, value any) error {
	if op == "remove" {
		delete(c, a.Name)
		return nil
	}
	v, err := coerce(a, value, a.Name)
	if err != nil {
		return err
	}
	if m, ok := v.(map[string]any); ok && !a.MultiValued {
		if old, ok := c[a.Name].(map[string]any); ok {
			for k, sv := range m {
				old[k] = sv
			}
			return nil
		}
	}
	if v == nil {
		delete(c, a.Name)
	} else {
		c[a.Name] = v
	}
	return nil
}

func setSub(obj doc, sa *Attribute, op string, value any, parent string) error {
	if op == "remove" {
		delete(obj, sa.Name)
		return nil
	}
	v, err := coerce(sa, value, parent+"."+sa.Name)
	if err != nil {
		return err
	}
	if v == nil {
		delete(obj, sa.Name)
	} else {
		obj[sa.Name] = v
	}
	return nil
}

// entraTypes are the typed values Entra's default attribute mappings write
// with attr[type eq "…"].sub, expecting the element to be made when the
// user has none (as "add" and "replace" both do for it). For any other
// attribute or type, a filter that selects nothing is noTarget.
var entraTypes = map[string]map[string]bool{
	"emails":       {"work": true},
	"phonenumbers": {"work": true, "mobile": true, "fax": true},
	"addresses":    {"work": true},
}

func entraAddsMissing(attr, typ string) bool {
	return entraTypes[strings.ToLower(attr)][strings.ToLower(typ)]
}

// patchSelected applies op to the elements of a multi-valued attribute that
// a value filter selects. A filter that selects nothing is noTarget for
// replace and remove (RFC 7644 §3.5.2.2, §3.5.2.3) except in the form
// Entra sends for its mapped types, attr[type eq "work"].sub, which adds
// the element.
func patchSelected(c doc, a *Attribute, sa *Attribute, vf filter.Expr, op string, value any) error {
	if !a.MultiValued || a.Type != "complex" {
		return invalidPath("%s is not multi-valued: a value filter does not apply", a.Name)
	}
	list, _ := c[a.Name].([]any)
	var hit []int
	for i, el := range list {
		m, _ := el.(map[string]any)
		ok, err := matchElem(vf, m, a)
		if err != nil {
			return err
		}
		if ok {
			hit = append(hit, i)
		}
	}
	if len(hit) == 0 {
		t := typeEq(vf)
		if op == "remove" || !entraAddsMissing(a.Name, t) {
			return noTarget(a.Name + "[" + filter.String(vf) + "]")
		}
		el := doc{"type": t}
		list = append(list, el)
		hit = []int{len(list) - 1}
	}
	if op == "remove" && sa == nil {
		drop := map[int]bool{}
		for _, i := range hit {
			drop[i] = true
		}
		var kept []any
		for i, el := range list {
			if !drop[i] {
				kept = append(kept, el)
			}
		}
		return setList(c, a, kept)
	}
	for _, i := range hit {
		el := list[i].(map[string]any)
		if sa != nil {
			if err := setSub(el, sa, op, value, a.Name); err != nil {
				return err
			}
			if sa.Name == "primary" && el["primary"] == true {
				clearPrimaryBut(list, i)
			}
			continue
		}
		v, err := coerceOne(a, value, a.Name)
		if err != nil {
			return err
		}
		m, _ := v.(map[string]any)
		if op == "replace" {
			for k := range el {
				delete(el, k)
			}
		}
		for k, sv := range m {
			el[k] = sv
		}
		if el["primary"] == true {
			clearPrimaryBut(list, i)
		}
	}
	return setList(c, a, list)
}

// setList stores a multi-valued attribute's values, dropping empty ones
// and duplicates.
func setList(c doc, a *Attribute, list []any) error {
	var out []any
	for _, el := range list {
		if m, ok := el.(map[string]any); ok && len(m) == 0 {
			continue
		}
		out = append(out, el)
	}
	out = dedupe(a, out)
	if len(out) == 0 {
		delete(c, a.Name)
	} else {
		c[a.Name] = out
	}
	return nil
}

// typeEq is T when a value filter is exactly type eq "T".
func typeEq(e filter.Expr) string {
	if c, ok := e.(*filter.Compare); ok && c.Op == "eq" && strings.EqualFold(c.Path.Name, "type") {
		s, _ := c.Value.(string)
		return s
	}
	return ""
}

func noTarget(path string) error {
	return &Error{Status: 400, ScimType: "noTarget", Detail: path + " matches no value (RFC 7644 §3.5.2)"}
}

func isPrimary(v any) bool {
	m, _ := v.(map[string]any)
	return m["primary"] == true
}

// clearPrimary makes no value primary: a new primary value takes over
// (RFC 7644 §3.5.2).
func clearPrimary(list []any) { clearPrimaryBut(list, -1) }

func clearPrimaryBut(list []any, keep int) {
	for i, el := range list {
		if m, ok := el.(map[string]any); ok && i != keep && m["primary"] == true {
			delete(m, "primary")
		}
	}
}

// dedupe drops the values of a multi-valued attribute that repeat an
// earlier one: the same type and value (compared as the value
// sub-attribute's caseExact says), or equal as a whole for values without
// a "value". RFC 7643 §2.4: a service provider SHOULD NOT return duplicate
// values; users kept every email as sent and echoed pairs back. A dropped
// duplicate that was primary makes the kept one primary.
func dedupe(a *Attribute, list []any) []any {
	if len(list) < 2 {
		return list
	}
	exact := true
	if sa := a.Sub("value"); sa != nil {
		exact = sa.CaseExact
	}
	key := func(el any) string {
		m, ok := el.(map[string]any)
		if !ok {
			j, _ := json.Marshal(el)
			return string(j)
		}
		v, ok := m["value"].(string)
		if !ok {
			j, _ := json.Marshal(m)
			return "=" + string(j)
		}
		t, _ := m["type"].(string)
		if !exact {
			v = strings.ToLower(v)
		}
		return strings.ToLower(t) + "\x00" + v
	}
	seen := make(map[string]int, len(list))
	out := list[:0:0]
	for _, el := range list {
		k := key(el)
		if i, dup := seen[k]; dup {
			if isPrimary(el) {
				if m, ok := out[i].(map[string]any); ok {
					m["primary"] = true
				}
			}
			continue
		}
		seen[k] = len(out)
		out = append(out, el)
	}
	return out
}

func equalValue(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
