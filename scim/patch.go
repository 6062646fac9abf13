package scim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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

func invalidPath(format string, args ...any) *Error {
	return &Error{Status: 400, ScimType: "invalidPath", Detail: fmt.Sprintf(format, args...)}
}

func invalidValue(format string, args ...any) *Error {
	return &Error{Status: 400, ScimType: "invalidValue", Detail: fmt.Sprintf(format, args...)}
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

// etag is a user's or group's version as a weak ETag.
func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }
