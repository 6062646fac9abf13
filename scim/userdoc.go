// A User as a JSON document: read from a client against the schema, split
// into the directory's fields and the profile, and put back together for
// responses. The directory's fields stay the truth for what they hold.

package scim

import (
	"cmp"
	"fmt"
	"net/mail"
	"reflect"
	"strconv"
	"strings"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/scim/filter"
)

// doc is a resource's attributes by their schema names; the enterprise
// extension's are in a doc under its URN.
type doc = map[string]any

// resolveUser finds the attribute a name or path names on a User: core
// names, URN-qualified ones, and (as Entra sends them) enterprise names
// without their URN. The schema is nil for common attributes.
func resolveUser(uri, name string) (*Schema, *Attribute) {
	switch {
	case uri == "" || strings.EqualFold(uri, SchemaUser):
		if a := UserSchema.Attr(name); a != nil {
			return UserSchema, a
		}
		if a := findAttr(commonAttributes, name); a != nil {
			return nil, a
		}
		if uri == "" {
			if a := EnterpriseSchema.Attr(name); a != nil {
				return EnterpriseSchema, a
			}
		}
	case strings.EqualFold(uri, SchemaEnterprise):
		if a := EnterpriseSchema.Attr(name); a != nil {
			return EnterpriseSchema, a
		}
	}
	return nil, nil
}

// splitKey splits a body key into a URI and a name: "userName",
// "urn:…:core:2.0:User:userName", "urn:…:enterprise:2.0:User:manager".
func splitKey(k string) (uri, name string) {
	if strings.HasPrefix(strings.ToLower(k), "urn:") {
		if i := strings.LastIndex(k, ":"); i > 0 {
			return k[:i], k[i+1:]
		}
	}
	return "", k
}

// container returns the doc a schema's attributes live in, made if asked.
func container(d doc, s *Schema, make bool) doc {
	if s != EnterpriseSchema {
		return d
	}
	ext, _ := d[SchemaEnterprise].(map[string]any)
	if ext == nil && make {
		ext = doc{}
		d[SchemaEnterprise] = ext
	}
	return ext
}

// put sets (or, for nil, removes) an attribute of schema s in d.
func put(d doc, s *Schema, name string, v any) {
	c := container(d, s, v != nil)
	if c == nil {
		return
	}
	if v == nil {
		delete(c, name)
	} else {
		c[name] = v
	}
	if s == EnterpriseSchema && len(c) == 0 {
		delete(d, SchemaEnterprise)
	}
}

// readUserDoc reads a User body into a doc: attributes by their schema
// names, values of the schema's types. Unknown and read-only attributes
// are ignored (RFC 7644 §3.3, §3.5.1); password is accepted and dropped;
// null, "" and [] are unassigned (RFC 7643 §2.5).
func readUserDoc(in map[string]any) (doc, error) {
	out := doc{}
	for k, v := range in {
		if strings.EqualFold(k, SchemaEnterprise) {
			obj, ok := v.(map[string]any)
			if v != nil && !ok {
				return nil, invalidValue("%s must be an object", SchemaEnterprise)
			}
			for ek, ev := range obj {
				if a := EnterpriseSchema.Attr(ek); a != nil && a.Mutability != "readOnly" {
					c, err := coerce(a, ev, a.Name)
					if err != nil {
						return nil, err
					}
					put(out, EnterpriseSchema, a.Name, c)
				}
			}
			continue
		}
		s, a := resolveUser(splitKey(k))
		if a == nil || a.Mutability == "readOnly" || a.Mutability == "writeOnly" {
			continue
		}
		c, err := coerce(a, v, a.Name)
		if err != nil {
			return nil, err
		}
		put(out, s, a.Name, c)
	}
	return out, nil
}

// coerce checks a value against its attribute and returns it in the form
// stored; nil means unassigned.
func coerce(a *Attribute, v any, path string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if !a.MultiValued {
		if list, ok := v.([]any); ok && len(list) == 1 && a.Type == "complex" {
			v = list[0] // Entra sends manager as [{"value": …}]
		}
		return coerceOne(a, v, path)
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v} // one value where a list belongs
	}
	out := make([]any, 0, len(list))
	for i, el := range list {
		c, err := coerceOne(a, el, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, c)
		}
	}
	out = dedupe(a, out)
	primaries := 0
	for _, c := range out {
		if m, ok := c.(map[string]any); ok && m["primary"] == true {
			primaries++
		}
	}
	if primaries > 1 {
		return nil, invalidValue("%s: %d values are primary; at most one may be (RFC 7643 §2.4)", path, primaries)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func coerceOne(a *Attribute, v any, path string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch a.Type {
	case "complex":
		if s, ok := v.(string); ok && a.Sub("value") != nil {
			v = map[string]any{"value": s} // manager as a plain id
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, invalidValue("%s must be an object", path)
		}
		out := doc{}
		for k, sv := range obj {
			sa := a.Sub(k)
			if sa == nil || sa.Mutability == "readOnly" {
				continue
			}
			c, err := coerce(sa, sv, path+"."+sa.Name)
			if err != nil {
				return nil, err
			}
			if c != nil {
				out[sa.Name] = c
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case string: // Entra sends "True" and "False"
			if b, err := strconv.ParseBool(strings.ToLower(x)); err == nil {
				return b, nil
			}
		}
		return nil, invalidValue("%s must be true or false, not %v", path, v)
	case "decimal", "integer":
		if n, ok := v.(float64); ok {
			return n, nil
		}
		return nil, invalidValue("%s must be a number, not %v", path, v)
	default: // string, reference, binary, dateTime
		switch x := v.(type) {
		case string:
			if x == "" {
				return nil, nil
			}
			return x, nil
		case float64, bool:
			if a.Type == "string" {
				return fmt.Sprint(x), nil // an employeeNumber sent as a number
			}
		}
		return nil, invalidValue("%s must be a string, not %v", path, v)
	}
}

// userFields is what a User doc gives the directory's own fields.
type userFields struct {
	UserName, ExternalID, GivenName, FamilyName, Email string
	Active                                             bool
	Attrs                                              map[string]string // the enterprise extension's
	InvalidEmail                                       string            // the email chosen, when it is not a valid address
}

// split reads the directory's fields out of a doc and returns the
// profile: the doc without userName, active and externalId, which live
// in the directory's fields only.
func split(d doc) (userFields, map[string]any, error) {
	f := userFields{Active: true, Attrs: map[string]string{}}
	f.UserName, _ = d["userName"].(string)
	if f.UserName == "" {
		return f, nil, invalidValue("userName is required")
	}
	if n := len([]rune(f.UserName)); n > MaxUserName {
		return f, nil, invalidValue("userName is longer than %d characters (%d)", MaxUserName, n)
	}
	if b, ok := d["active"].(bool); ok {
		f.Active = b
	}
	f.ExternalID, _ = d["externalId"].(string)
	if name, ok := d["name"].(map[string]any); ok {
		f.GivenName, _ = name["givenName"].(string)
		f.FamilyName, _ = name["familyName"].(string)
	}
	if e := chosenEmail(d); e != "" {
		if validEmail(e) {
			f.Email = e
		} else {
			f.InvalidEmail = e
		}
	}
	if ext, ok := d[SchemaEnterprise].(map[string]any); ok {
		for _, a := range EnterpriseSchema.Attributes {
			switch v := ext[a.Name].(type) {
			case string:
				f.Attrs[a.Name] = v
			case map[string]any:
				if id, ok := v["value"].(string); ok {
					f.Attrs[a.Name] = id
				}
			}
		}
	}
	profile := doc{}
	for k, v := range d {
		switch k {
		case "userName", "active", "externalId":
		default:
			profile[k] = v
		}
	}
	if len(profile) == 0 {
		profile = nil
	}
	return f, profile, nil
}

// chosenEmail is the email the directory keeps: the work one, else the
// primary, else the first.
func chosenEmail(d doc) string {
	i := chosenEmailIndex(d)
	if i < 0 {
		return ""
	}
	s, _ := d["emails"].([]any)[i].(map[string]any)["value"].(string)
	return s
}

func chosenEmailIndex(d doc) int {
	list, _ := d["emails"].([]any)
	pick := -1
	for i, e := range list {
		m, _ := e.(map[string]any)
		if t, _ := m["type"].(string); strings.EqualFold(t, "work") {
			return i
		}
		if m["primary"] == true && pick < 0 {
			pick = i
		}
	}
	if pick < 0 && len(list) > 0 {
		pick = 0
	}
	return pick
}

func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

// enterpriseAttrs are the custom attributes the enterprise extension shows.
func isEnterpriseAttr(name string) bool { return EnterpriseSchema.Attr(name) != nil }

// view is a user as a SCIM client sees it, without id, meta, schemas and
// groups: the profile, with the directory's fields over it (a pull or the
// command line may have changed them since). Nothing is made up: a field
// the directory does not have and the client never sent is absent.
func view(u *usersync.User, prefix string) doc {
	d := cloneDoc(u.Profile)
	d["userName"] = scimName(u, prefix)
	d["active"] = u.Enabled
	if u.Source == SourceSCIM && u.SourceID != "" {
		d["externalId"] = u.SourceID // the SCIM client's own id for users it owns
	}
	name, _ := d["name"].(map[string]any)
	if name == nil {
		name = doc{}
	}
	for k, v := range map[string]string{"givenName": u.FirstName, "familyName": u.LastName} {
		if v == "" {
			delete(name, k)
		} else {
			name[k] = v
		}
	}
	if len(name) > 0 {
		d["name"] = name
	} else {
		delete(d, "name")
	}
	if i := chosenEmailIndex(d); i >= 0 {
		list := d["emails"].([]any)
		el := list[i].(map[string]any)
		cur, _ := el["value"].(string)
		switch {
		case cur == u.Email || (!validEmail(cur) && u.Email == ""):
		case u.Email == "":
			d["emails"] = append(list[:i:i], list[i+1:]...) // the directory's email was cleared
			if len(d["emails"].([]any)) == 0 {
				delete(d, "emails")
			}
		default:
			el["value"] = u.Email
		}
	} else if u.Email != "" {
		d["emails"] = []any{doc{"value": u.Email, "type": "work", "primary": true}}
	}
	ext, _ := d[SchemaEnterprise].(map[string]any)
	if ext == nil {
		ext = doc{}
	}
	for _, a := range EnterpriseSchema.Attributes {
		v, ok := u.Attributes[a.Name]
		switch {
		case !ok || v == "":
			delete(ext, a.Name)
		case a.Type == "complex":
			if m, _ := ext[a.Name].(map[string]any); m == nil || m["value"] != v {
				ext[a.Name] = doc{"value": v}
			}
		default:
			ext[a.Name] = v
		}
	}
	if len(ext) > 0 {
		d[SchemaEnterprise] = ext
	} else {
		delete(d, SchemaEnterprise)
	}
	return d
}

func cloneDoc(d map[string]any) doc {
	out := make(doc, len(d)+4)
	for k, v := range d {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneDoc(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}

// fieldsOf is what the directory holds of u, as split returns it.
func fieldsOf(u *usersync.User, prefix string) userFields {
	f := userFields{UserName: scimName(u, prefix), GivenName: u.FirstName, FamilyName: u.LastName, Email: u.Email, Active: u.Enabled, Attrs: map[string]string{}}
	if u.Source == SourceSCIM {
		f.ExternalID = u.SourceID
	}
	for k, v := range u.Attributes {
		if isEnterpriseAttr(k) {
			f.Attrs[k] = v
		}
	}
	return f
}

// sameProfile reports whether two profiles hold the same values.
func sameProfile(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// matchElem evaluates a value filter (the part in brackets) on one element
// of a multi-valued attribute a.
func matchElem(e filter.Expr, el map[string]any, a *Attribute) (bool, error) {
	switch e := e.(type) {
	case *filter.Logical:
		l, err := matchElem(e.Left, el, a)
		if err != nil {
			return false, err
		}
		r, err := matchElem(e.Right, el, a)
		if e.Op == "and" {
			return l && r, err
		}
		return l || r, err
	case *filter.Not:
		v, err := matchElem(e.Expr, el, a)
		return !v, err
	case *filter.Present:
		sa := a.Sub(e.Path.Name)
		if sa == nil {
			return false, invalidFilter("%s has no sub-attribute %q", a.Name, e.Path.Name)
		}
		v, ok := el[sa.Name]
		return ok && v != nil && v != "", nil
	case *filter.Compare:
		sa := a.Sub(e.Path.Name)
		if sa == nil {
			return false, invalidFilter("%s has no sub-attribute %q", a.Name, e.Path.Name)
		}
		return compareValue(el[sa.Name], e.Op, e.Value, sa.CaseExact), nil
	}
	return false, invalidFilter("value filters compare sub-attributes")
}

func compareValue(have any, op string, want any, exact bool) bool {
	switch w := want.(type) {
	case string:
		h, ok := have.(string)
		if !ok {
			return op == "ne"
		}
		if !exact {
			h, w = strings.ToLower(h), strings.ToLower(w)
		}
		switch op {
		case "co":
			return strings.Contains(h, w)
		case "sw":
			return strings.HasPrefix(h, w)
		case "ew":
			return strings.HasSuffix(h, w)
		}
		return compareOrdered(h, op, w)
	case bool:
		h, ok := have.(bool)
		if !ok {
			h = false // an unassigned boolean reads as false
		}
		return (op == "eq") == (h == w)
	case float64:
		h, ok := have.(float64)
		if !ok {
			return op == "ne"
		}
		return compareOrdered(h, op, w)
	case nil:
		return (op == "eq") == (have == nil)
	}
	return false
}

func compareOrdered[T cmp.Ordered](h T, op string, w T) bool {
	switch op {
	case "eq":
		return h == w
	case "ne":
		return h != w
	case "gt":
		return h > w
	case "ge":
		return h >= w
	case "lt":
		return h < w
	case "le":
		return h <= w
	}
	return false
}
