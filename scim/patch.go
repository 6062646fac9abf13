package scim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/usersync/usersync/scim/filter"
)

// patchRequest is a PatchOp message (RFC 7644 §3.5.2).
type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// MaxOperations bounds the operations of one PATCH.
const MaxOperations = 1000

func (p *patchRequest) check() error {
	if len(p.Operations) == 0 {
		return &Error{Status: 400, ScimType: "invalidValue", Detail: "a PATCH needs Operations"}
	}
	if len(p.Operations) > MaxOperations {
		return &Error{Status: 400, ScimType: "tooMany", Detail: fmt.Sprintf("at most %d operations per PATCH", MaxOperations)}
	}
	for i := range p.Operations {
		op := strings.ToLower(p.Operations[i].Op) // Entra sends Replace, Add, Remove
		if op != "add" && op != "replace" && op != "remove" {
			return &Error{Status: 400, ScimType: "invalidValue", Detail: fmt.Sprintf("operation %d: op %q is not add, replace or remove", i+1, p.Operations[i].Op)}
		}
		p.Operations[i].Op = op
		if op == "remove" && p.Operations[i].Path == "" {
			return &Error{Status: 400, ScimType: "noTarget", Detail: fmt.Sprintf("operation %d: remove needs a path", i+1)}
		}
	}
	return nil
}

// userState is the part of a User that SCIM can change.
type userState struct {
	UserName, ExternalID, GivenName, FamilyName, Email string
	Active                                             bool
	Attrs                                              map[string]string
}

func invalidPath(format string, args ...any) *Error {
	return &Error{Status: 400, ScimType: "invalidPath", Detail: fmt.Sprintf(format, args...)}
}

func invalidValue(format string, args ...any) *Error {
	return &Error{Status: 400, ScimType: "invalidValue", Detail: fmt.Sprintf(format, args...)}
}

// apply applies one operation to the state. Attributes usersync does not
// keep are ignored, as the issue asks (clients send many).
func (st *userState) apply(op patchOp) error {
	if op.Path == "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(op.Value, &obj); err != nil {
			return invalidValue("%s without a path needs an object value", op.Op)
		}
		for k, v := range obj {
			if err := st.set(k, v); err != nil {
				return err
			}
		}
		return nil
	}
	path, vf, sub, err := filter.ParsePath(op.Path)
	if err != nil {
		return invalidPath("path %q: %v", op.Path, err)
	}
	name := strings.ToLower(path.Name)
	if vf != nil || (name == "emails" && sub != "") {
		if name != "emails" || path.URI != "" {
			return nil // a value filter on an attribute usersync does not keep
		}
		if vf != nil && !workEmailFilter(vf) {
			if op.Op == "remove" {
				return &Error{Status: 400, ScimType: "noTarget", Detail: fmt.Sprintf("%s matches no email: usersync keeps the work email only", op.Path)}
			}
			return nil
		}
		if op.Op == "remove" {
			return invalidValue("the work email is required and cannot be removed")
		}
		if sub != "" && !strings.EqualFold(sub, "value") {
			return nil // type, primary: fixed
		}
		var s string
		if sub == "" {
			var e struct {
				Value string `json:"value"`
			}
			if json.Unmarshal(op.Value, &e) != nil {
				return invalidValue("%s needs an email object", op.Path)
			}
			s = e.Value
		} else if json.Unmarshal(op.Value, &s) != nil {
			return invalidValue("%s needs a string", op.Path)
		}
		if s == "" {
			return invalidValue("the work email cannot be empty")
		}
		st.Email = s
		return nil
	}
	key := path.Name
	if path.URI != "" {
		key = path.URI + ":" + path.Name
	}
	if path.Sub != "" {
		key += "." + path.Sub
	}
	if op.Op == "remove" {
		return st.remove(key)
	}
	return st.set(key, op.Value)
}

// workEmailFilter reports whether a value filter selects the work email:
// type eq "work", primary eq true, or value comparisons (any email).
func workEmailFilter(e filter.Expr) bool {
	switch e := e.(type) {
	case *filter.Compare:
		switch strings.ToLower(e.Path.Name) {
		case "type":
			s, _ := e.Value.(string)
			return e.Op == "eq" && strings.EqualFold(s, "work")
		case "primary":
			b, _ := e.Value.(bool)
			return e.Op == "eq" && b
		}
		return true
	case *filter.Logical:
		if e.Op == "and" {
			return workEmailFilter(e.Left) && workEmailFilter(e.Right)
		}
		return workEmailFilter(e.Left) || workEmailFilter(e.Right)
	}
	return true
}

func enterpriseKey(key string) (string, bool) {
	if len(key) > len(SchemaEnterprise)+1 && strings.EqualFold(key[:len(SchemaEnterprise)], SchemaEnterprise) && key[len(SchemaEnterprise)] == ':' {
		return key[len(SchemaEnterprise)+1:], true
	}
	return "", false
}

func stringValue(raw json.RawMessage, what string) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", invalidValue("%s: %v", what, err)
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case float64, bool:
		return fmt.Sprint(x), nil
	case nil:
		return "", nil
	case map[string]any: // {"value": …}, as manager is sent
		if s, ok := x["value"].(string); ok {
			return s, nil
		}
	}
	return "", invalidValue("%s needs a string", what)
}

// set replaces one attribute, by its name or dotted path (Entra sends
// "name.givenName" as a key of a path-less replace).
func (st *userState) set(key string, raw json.RawMessage) error {
	if attr, ok := enterpriseKey(key); ok {
		s, err := stringValue(raw, key)
		if err != nil {
			return err
		}
		st.Attrs[attr] = s
		return nil
	}
	if strings.EqualFold(key, SchemaEnterprise) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return invalidValue("%s needs an object", key)
		}
		for k, v := range obj {
			s, err := stringValue(v, k)
			if err != nil {
				return err
			}
			st.Attrs[k] = s
		}
		return nil
	}
	key = strings.TrimPrefix(strings.TrimPrefix(key, SchemaUser+":"), strings.ToLower(SchemaUser)+":")
	switch strings.ToLower(key) {
	case "username":
		s, err := stringValue(raw, key)
		if err != nil {
			return err
		}
		if s == "" || len([]rune(s)) > MaxUserName {
			return invalidValue("userName must have 1 to %d characters", MaxUserName)
		}
		st.UserName = s
	case "externalid":
		s, err := stringValue(raw, key)
		if err != nil {
			return err
		}
		st.ExternalID = s
	case "active":
		var b flexBool
		if err := json.Unmarshal(raw, &b); err != nil {
			return invalidValue("active: %v", err)
		}
		st.Active = b.v
	case "name.givenname":
		s, err := stringValue(raw, key)
		if err != nil {
			return err
		}
		st.GivenName = s
	case "name.familyname":
		s, err := stringValue(raw, key)
		if err != nil {
			return err
		}
		st.FamilyName = s
	case "name":
		var n struct {
			GivenName  *string `json:"givenName"`
			FamilyName *string `json:"familyName"`
		}
		if err := json.Unmarshal(raw, &n); err != nil {
			return invalidValue("name needs an object")
		}
		if n.GivenName != nil {
			st.GivenName = *n.GivenName
		}
		if n.FamilyName != nil {
			st.FamilyName = *n.FamilyName
		}
	case "emails":
		var in userResource
		if err := json.Unmarshal([]byte(`{"emails":`+string(raw)+`}`), &in); err != nil {
			var one struct {
				Value string `json:"value"`
			}
			if json.Unmarshal(raw, &one) != nil || one.Value == "" {
				return invalidValue("emails needs a list of emails")
			}
			st.Email = one.Value
			return nil
		}
		if e := in.workEmail(); e != "" {
			st.Email = e
		}
	}
	return nil
}

func (st *userState) remove(key string) error {
	if attr, ok := enterpriseKey(key); ok {
		delete(st.Attrs, attr)
		return nil
	}
	switch strings.ToLower(strings.TrimPrefix(key, SchemaUser+":")) {
	case "username":
		return &Error{Status: 400, ScimType: "mutability", Detail: "userName is required and cannot be removed"}
	case "emails", "emails.value":
		return invalidValue("the work email is required and cannot be removed")
	case "externalid":
		st.ExternalID = ""
	case "name":
		st.GivenName, st.FamilyName = "", ""
	case "name.givenname":
		st.GivenName = ""
	case "name.familyname":
		st.FamilyName = ""
	case "active":
		st.Active = false
	}
	return nil
}

// etag is a user's or group's version as a weak ETag.
func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }
