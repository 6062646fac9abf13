// The discovery endpoints (RFC 7644 §4): what this server really supports.

package scim

import "net/http"

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
