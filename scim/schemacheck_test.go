package scim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Every response a test client reads is checked against the schemas the
// server serves at /Schemas (RFC 7643 §7): a client that builds its model
// from them must accept every response. Attributes must be defined, of
// their type, never "returned": "never", and unassigned values absent
// (RFC 7643 §2.5: no "", [] or {}).

type servedAttr struct {
	Name          string        `json:"name"`
	Type          string        `json:"type"`
	MultiValued   bool          `json:"multiValued"`
	Returned      string        `json:"returned"`
	SubAttributes []*servedAttr `json:"subAttributes"`
}

type servedSchema struct {
	ID         string        `json:"id"`
	Attributes []*servedAttr `json:"attributes"`
}

var schemaCache sync.Map // base URL → map[id]*servedSchema

// servedSchemas reads a server's /Schemas once; nil when the client may
// not read them (no token, not an administrator).
func servedSchemas(base, token string) map[string]*servedSchema {
	if v, ok := schemaCache.Load(base); ok {
		return v.(map[string]*servedSchema)
	}
	req, _ := http.NewRequest("GET", base+"/Schemas", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil
	}
	var list struct{ Resources []*servedSchema }
	if json.NewDecoder(resp.Body).Decode(&list) != nil {
		return nil
	}
	out := map[string]*servedSchema{}
	for _, s := range list.Resources {
		out[strings.ToLower(s.ID)] = s
	}
	schemaCache.Store(base, out)
	return out
}

const (
	coreUser  = "urn:ietf:params:scim:schemas:core:2.0:User"
	coreGroup = "urn:ietf:params:scim:schemas:core:2.0:Group"
	listResp  = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// checkBody checks a response body: a resource, or a list of them.
func checkBody(schemas map[string]*servedSchema, body map[string]any) error {
	if schemas == nil || body == nil {
		return nil
	}
	ids, _ := body["schemas"].([]any)
	if len(ids) == 0 {
		return nil // not a SCIM message (e.g. a 204 without a body)
	}
	first, _ := ids[0].(string)
	if first == listResp {
		list, _ := body["Resources"].([]any)
		for i, r := range list {
			m, ok := r.(map[string]any)
			if !ok {
				return fmt.Errorf("Resources[%d] is not an object", i)
			}
			if _, ok := m["schemas"]; !ok {
				continue // a ResourceType or Schema listing
			}
			if err := checkResource(schemas, m); err != nil {
				return fmt.Errorf("Resources[%d]: %w", i, err)
			}
		}
		return nil
	}
	if first == coreUser || first == coreGroup {
		return checkResource(schemas, body)
	}
	return nil
}

func checkResource(schemas map[string]*servedSchema, res map[string]any) error {
	ids, _ := res["schemas"].([]any)
	core, _ := ids[0].(string)
	if core != coreUser && core != coreGroup {
		return nil
	}
	listed := map[string]bool{}
	for _, id := range ids {
		s, _ := id.(string)
		if schemas[strings.ToLower(s)] == nil {
			return fmt.Errorf("schemas names %q, which /Schemas does not serve", s)
		}
		listed[strings.ToLower(s)] = true
	}
	if id, _ := res["id"].(string); id == "" {
		return fmt.Errorf("no id")
	}
	for k, v := range res {
		if k == "schemas" {
			continue
		}
		if ext := schemas[strings.ToLower(k)]; ext != nil {
			if !listed[strings.ToLower(k)] {
				return fmt.Errorf("extension %s is present but not listed in schemas", k)
			}
			obj, ok := v.(map[string]any)
			if !ok || len(obj) == 0 {
				return fmt.Errorf("extension %s is %v", k, v)
			}
			for ek, ev := range obj {
				if err := checkValue(find(ext.Attributes, ek), ek, ev); err != nil {
					return err
				}
			}
			continue
		}
		if err := checkValue(find(schemas[strings.ToLower(core)].Attributes, k), k, v); err != nil {
			return err
		}
	}
	return nil
}

func find(list []*servedAttr, name string) *servedAttr {
	for _, a := range list {
		if a.Name == name {
			return a
		}
	}
	return nil
}

func checkValue(a *servedAttr, path string, v any) error {
	if a == nil {
		return fmt.Errorf("%s is not in the served schema", path)
	}
	if a.Returned == "never" {
		return fmt.Errorf("%s is returned though its schema says never", path)
	}
	if a.MultiValued {
		list, ok := v.([]any)
		if !ok || len(list) == 0 {
			return fmt.Errorf("%s is multi-valued but is %v", path, v)
		}
		for i, el := range list {
			if err := checkOne(a, fmt.Sprintf("%s[%d]", path, i), el); err != nil {
				return err
			}
		}
		return nil
	}
	return checkOne(a, path, v)
}

func checkOne(a *servedAttr, path string, v any) error {
	switch a.Type {
	case "complex":
		obj, ok := v.(map[string]any)
		if !ok || len(obj) == 0 {
			return fmt.Errorf("%s is complex but is %v", path, v)
		}
		for k, sv := range obj {
			if err := checkValue(find(a.SubAttributes, k), path+"."+k, sv); err != nil {
				return err
			}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s is boolean but is %v", path, v)
		}
	case "decimal", "integer":
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s is a number but is %v", path, v)
		}
	default:
		if s, ok := v.(string); !ok || s == "" {
			return fmt.Errorf("%s is a %s but is %#v", path, a.Type, v)
		}
	}
	return nil
}
