package scim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/usersync/usersync"
)

// MaxUserName is the longest userName accepted over SCIM (the seed's limit).
const MaxUserName = 100

// SourceSCIM owns users and groups created over SCIM.
const SourceSCIM = "scim"

// flexBool reads true/false and Entra's "True"/"False" strings.
type flexBool struct {
	set, v bool
}

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		b.v = x
	case string:
		p, err := strconv.ParseBool(strings.ToLower(x))
		if err != nil {
			return fmt.Errorf("%q is not a boolean", x)
		}
		b.v = p
	default:
		return fmt.Errorf("%s is not a boolean", data)
	}
	b.set = true
	return nil
}

// userResource is a User as clients send it; unknown attributes are ignored.
type userResource struct {
	Schemas    []string `json:"schemas"`
	ExternalID string   `json:"externalId"`
	UserName   string   `json:"userName"`
	Active     flexBool `json:"active"`
	Name       struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Emails []struct {
		Value   string   `json:"value"`
		Type    string   `json:"type"`
		Primary flexBool `json:"primary"`
	} `json:"emails"`
	Enterprise map[string]any `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

// workEmail picks the work email, else the primary one, else the first.
func (in *userResource) workEmail() string {
	for _, e := range in.Emails {
		if strings.EqualFold(e.Type, "work") {
			return e.Value
		}
	}
	for _, e := range in.Emails {
		if e.Primary.v {
			return e.Value
		}
	}
	if len(in.Emails) > 0 {
		return in.Emails[0].Value
	}
	return ""
}

// toUser maps the resource to a directory user: a regular SSO user owned
// by SCIM; enterprise extension attributes become custom attributes.
func (in *userResource) toUser() (*usersync.User, error) {
	if in.UserName == "" {
		return nil, &Error{Status: 400, ScimType: "invalidValue", Detail: "userName is required"}
	}
	if utf8.RuneCountInString(in.UserName) > MaxUserName {
		return nil, &Error{Status: 400, ScimType: "invalidValue", Detail: fmt.Sprintf("userName is longer than %d characters", MaxUserName)}
	}
	email := in.workEmail()
	if email == "" {
		return nil, &Error{Status: 400, ScimType: "invalidValue", Detail: "a work email is required (emails[type eq \"work\"].value)"}
	}
	u := &usersync.User{Username: in.UserName, Email: email, FirstName: in.Name.GivenName, LastName: in.Name.FamilyName,
		Enabled: !in.Active.set || in.Active.v, Type: usersync.UserRegular, AuthMethod: usersync.AuthSSO,
		Source: SourceSCIM, SourceID: in.ExternalID, Attributes: map[string]string{}}
	for k, v := range in.Enterprise {
		switch x := v.(type) {
		case string:
			u.Attributes[k] = x
		case float64, bool:
			u.Attributes[k] = fmt.Sprint(x)
		case map[string]any: // manager: {"value": id, "displayName": …}
			if id, ok := x["value"].(string); ok {
				u.Attributes[k] = id
			}
		}
	}
	return u, nil
}

func (s *Server) userJSON(r *http.Request, u *usersync.User, prefix string) map[string]any {
	id := strconv.FormatInt(u.ID, 10)
	out := map[string]any{
		"schemas":     []string{SchemaUser},
		"id":          id,
		"userName":    scimName(u, prefix),
		"name":        map[string]any{"givenName": u.FirstName, "familyName": u.LastName, "formatted": strings.TrimSpace(u.FirstName + " " + u.LastName)},
		"displayName": strings.TrimSpace(u.FirstName + " " + u.LastName),
		"active":      u.Enabled,
		"meta": map[string]any{"resourceType": "User", "created": u.CreatedAt.Format(time.RFC3339Nano), "lastModified": u.UpdatedAt.Format(time.RFC3339Nano),
			"location": s.root(r) + "/Users/" + id, "version": etag(u.Version)},
	}
	if u.Source == SourceSCIM && u.SourceID != "" {
		out["externalId"] = u.SourceID // the SCIM client's own id for users it owns
	}
	if u.Email != "" {
		out["emails"] = []map[string]any{{"value": u.Email, "type": "work", "primary": true}}
	}
	if len(u.Attributes) > 0 {
		ext := map[string]any{}
		for k, v := range u.Attributes {
			ext[k] = v
		}
		out[SchemaEnterprise] = ext
		out["schemas"] = []string{SchemaUser, SchemaEnterprise}
	}
	return out
}

// serviceProviderConfig says what this server really supports now.
func (s *Server) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, 200, map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/usersync/usersync",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []map[string]any{{"type": "oauthbearertoken", "name": "API token",
			"description": "A usersync API token of an administrator, as Authorization: Bearer <token>", "primary": true}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.root(r) + "/ServiceProviderConfig"},
	})
}

func (s *Server) resourceTypes(w http.ResponseWriter, r *http.Request) {
	user := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": "User", "name": "User",
		"endpoint": "/Users", "schema": SchemaUser, "schemaExtensions": []map[string]any{{"schema": SchemaEnterprise, "required": false}},
		"meta": map[string]any{"resourceType": "ResourceType", "location": s.root(r) + "/ResourceTypes/User"}}
	group := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": "Group", "name": "Group",
		"endpoint": "/Groups", "schema": SchemaGroup, "meta": map[string]any{"resourceType": "ResourceType", "location": s.root(r) + "/ResourceTypes/Group"}}
	writeJSON(w, 200, map[string]any{"schemas": []string{SchemaListResp}, "totalResults": 2, "startIndex": 1, "itemsPerPage": 2, "Resources": []any{user, group}})
}

func (s *Server) schemas(w http.ResponseWriter, r *http.Request) {
	attr := func(name, typ string, required, caseExact bool, uniqueness string) map[string]any {
		return map[string]any{"name": name, "type": typ, "multiValued": false, "required": required, "caseExact": caseExact,
			"mutability": "readWrite", "returned": "default", "uniqueness": uniqueness}
	}
	user := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"}, "id": SchemaUser, "name": "User",
		"attributes": []any{
			attr("userName", "string", true, false, "server"),
			attr("externalId", "string", false, true, "none"),
			attr("active", "boolean", false, false, "none"),
			map[string]any{"name": "name", "type": "complex", "multiValued": false, "required": false, "subAttributes": []any{
				attr("givenName", "string", false, false, "none"), attr("familyName", "string", false, false, "none")}},
			map[string]any{"name": "emails", "type": "complex", "multiValued": true, "required": true, "subAttributes": []any{
				attr("value", "string", true, false, "none"), attr("type", "string", false, false, "none"), attr("primary", "boolean", false, false, "none")}},
		}}
	ent := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"}, "id": SchemaEnterprise, "name": "EnterpriseUser",
		"description": "Stored as custom attributes: employeeNumber, department, manager (its value), and any other string attribute"}
	group := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"}, "id": SchemaGroup, "name": "Group",
		"attributes": []any{attr("displayName", "string", true, false, "server"), attr("externalId", "string", false, true, "none"),
			attr("description", "string", false, false, "none"),
			map[string]any{"name": "members", "type": "complex", "multiValued": true, "required": false, "subAttributes": []any{
				attr("value", "string", true, true, "none"), attr("display", "string", false, false, "none")}}}}
	writeJSON(w, 200, map[string]any{"schemas": []string{SchemaListResp}, "totalResults": 3, "startIndex": 1, "itemsPerPage": 3, "Resources": []any{user, ent, group}})
}
