// The discovery endpoints (RFC 7644 §4): what this server supports, and
// the schemas of what it serves, from the same definitions the handlers use.

package scim

import (
	"net/http"
	"strings"
)

// Discovery schema URIs (RFC 7643 §5–§7).
const (
	SchemaSPC          = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	SchemaResourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	SchemaSchema       = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// serviceProviderConfig answers RFC 7643 §5's attributes, and RFC 9865
// §4's "pagination" only to a client that asks for it by name
// (?attributes=pagination), as an attribute whose "returned" is "request"
// (RFC 7643 §7). Strict RFC 7643 client libraries (scim2-models, used by
// scim2-client and scim2-tester) refuse a configuration with any attribute
// they do not know, and stopped at discovery; cursors work whether or not
// a client read it (RFC 9865 §2: a request with "cursor" gets them).
func (s *Server) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	spc := map[string]any{
		"schemas":          []string{SchemaSPC},
		"documentationUri": "https://github.com/usersync/usersync#scim-20-endpoint",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": true, "maxOperations": MaxBulkOperations, "maxPayloadSize": MaxBulkPayload},
		"filter":           map[string]any{"supported": true, "maxResults": MaxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []map[string]any{{"type": "oauthbearertoken", "name": "API token",
			"description": "A usersync API token of an administrator, as Authorization: Bearer <token>", "primary": true}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": s.root(r) + "/ServiceProviderConfig"},
	}
	for _, a := range strings.Split(r.URL.Query().Get("attributes"), ",") {
		if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(a, SchemaSPC+":")), "pagination") {
			// RFC 9865 §4. No cursorTimeout: it is a positive number of
			// seconds, and these cursors (positions in the sort order, not
			// server state) do not expire.
			spc["pagination"] = map[string]any{"cursor": true, "index": true, "defaultPaginationMethod": "index",
				"defaultPageSize": DefaultPageSize, "maxPageSize": MaxResults}
		}
	}
	writeJSON(w, 200, spc)
}

// resourceTypeJSON describes a resource type (RFC 7643 §6).
func (s *Server) resourceTypeJSON(r *http.Request, name string) map[string]any {
	schemas := resourceSchemas[name]
	out := map[string]any{"schemas": []string{SchemaResourceType}, "id": name, "name": name,
		"endpoint": "/" + name + "s", "description": schemas[0].Description, "schema": schemas[0].ID,
		"meta": map[string]any{"resourceType": "ResourceType", "location": s.root(r) + "/ResourceTypes/" + name}}
	if len(schemas) > 1 {
		var ext []map[string]any
		for _, x := range schemas[1:] {
			ext = append(ext, map[string]any{"schema": x.ID, "required": false})
		}
		out["schemaExtensions"] = ext
	}
	return out
}

var resourceTypeNames = []string{"User", "Group"}

func (s *Server) resourceTypes(w http.ResponseWriter, r *http.Request) {
	var list []map[string]any
	for _, n := range resourceTypeNames {
		list = append(list, s.resourceTypeJSON(r, n))
	}
	writeList(w, 1, len(list), list)
}

func (s *Server) resourceType(w http.ResponseWriter, r *http.Request) {
	for _, n := range resourceTypeNames {
		if strings.EqualFold(n, r.PathValue("name")) {
			writeJSON(w, 200, s.resourceTypeJSON(r, n))
			return
		}
	}
	writeError(w, &Error{Status: 404, Detail: "no resource type " + r.PathValue("name") + ": User and Group are served"})
}

// allSchemas are the schemas served, in the order /Schemas lists them.
var allSchemas = []*Schema{UserSchema, EnterpriseSchema, GroupSchema}

func (s *Server) schemaJSON(r *http.Request, sc *Schema) map[string]any {
	return map[string]any{"schemas": []string{SchemaSchema}, "id": sc.ID, "name": sc.Name, "description": sc.Description,
		"attributes": sc.Attributes, "meta": map[string]any{"resourceType": "Schema", "location": s.root(r) + "/Schemas/" + sc.ID}}
}

func (s *Server) schemas(w http.ResponseWriter, r *http.Request) {
	var list []map[string]any
	for _, sc := range allSchemas {
		list = append(list, s.schemaJSON(r, sc))
	}
	writeList(w, 1, len(list), list)
}

func (s *Server) schema(w http.ResponseWriter, r *http.Request) {
	for _, sc := range allSchemas {
		if strings.EqualFold(sc.ID, r.PathValue("id")) {
			writeJSON(w, 200, s.schemaJSON(r, sc))
			return
		}
	}
	writeError(w, &Error{Status: 404, Detail: "no schema " + r.PathValue("id")})
}
