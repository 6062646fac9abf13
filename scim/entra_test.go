package scim_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/scim"
)

const patchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

func ops(o ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{patchOp}, "Operations": o}
}

// TestEntraUserSequence replays what Microsoft Entra's provisioning service
// sends for a user: lookups by userName and externalId, create, attribute
// updates in Entra's forms, disable ("False"), re-enable, delete — with
// both soft-delete settings.
func TestEntraUserSequence(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		ctx := context.Background()
		filter := func(f string) int {
			code, body, _ := c.do("GET", "/Users?filter="+url.QueryEscape(f), nil)
			if code != 200 {
				t.Fatalf("filter %s: %d %v", f, code, body)
			}
			return int(body["totalResults"].(float64))
		}
		if n := filter(`userName eq "Test_User_dfeef4c5@contoso.com"`); n != 0 {
			t.Fatal("lookup before create found a user")
		}
		code, u, _ := c.do("POST", "/Users", map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "Test_User_dfeef4c5@contoso.com", "active": true,
			"emails": []map[string]any{{"primary": true, "type": "work", "value": "Test_User_dfeef4c5@contoso.com"}},
			"meta":   map[string]any{"resourceType": "User"},
			"name":   map[string]any{"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
			"roles":  []any{},
		})
		if code != 201 {
			t.Fatalf("create: %d %v", code, u)
		}
		id := u["id"].(string)
		if filter(`userName eq "Test_User_dfeef4c5@contoso.com"`) != 1 || filter(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`) != 1 {
			t.Fatal("lookups after create")
		}
		// Attribute updates as Entra sends them: capitalised ops, value paths, dotted keys without a path.
		code, u, h := c.do("PATCH", "/Users/"+id, ops(
			map[string]any{"op": "Replace", "path": `emails[type eq "work"].value`, "value": "updatedEmail@microsoft.com"},
			map[string]any{"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
			map[string]any{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Research"},
			map[string]any{"op": "replace", "value": map[string]any{"name.givenName": "Ada", "displayName": "ignored", "nickName": "ignored"}},
		))
		if code != 200 || u["emails"].([]any)[0].(map[string]any)["value"] != "updatedEmail@microsoft.com" || u["name"].(map[string]any)["familyName"] != "updatedFamilyName" ||
			u["name"].(map[string]any)["givenName"] != "Ada" || h.Get("ETag") == "" {
			t.Fatalf("update: %d %v", code, u)
		}
		if ext := u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any); ext["department"] != "Research" {
			t.Fatalf("enterprise attribute: %v", ext)
		}
		code, u, _ = c.do("PATCH", "/Users/"+id, ops(map[string]any{"op": "Replace", "path": "userName", "value": "5b50642d-79fc@contoso.com"}))
		if code != 200 || u["userName"] != "5b50642d-79fc@contoso.com" {
			t.Fatalf("rename: %d %v", code, u)
		}
		// Disable with the string "False" (SCIM_REMOVE_USER_ON_SOFT_DELETE=N, the default):
		// disabled, renamed with the prefix; re-enable restores the name.
		code, u, _ = c.do("PATCH", "/Users/"+id, ops(map[string]any{"op": "Replace", "path": "active", "value": "False"}))
		if code != 200 || u["active"] != false || u["userName"] != "5b50642d-79fc@contoso.com" {
			t.Fatalf("disable: %d %v", code, u)
		}
		// The directory marks the name; the client sees and finds its own.
		if stored, _ := d.FindUserByID(ctx, mustID(t, id)); stored.Username != "deleted_5b50642d-79fc@contoso.com" || stored.Enabled {
			t.Fatalf("the disabled user is stored as %q (enabled %v)", stored.Username, stored.Enabled)
		}
		if filter(`userName eq "5b50642d-79fc@contoso.com"`) != 1 {
			t.Fatal("the disabled user is not found by the userName its client gave it")
		}
		code, u, _ = c.do("PATCH", "/Users/"+id, ops(map[string]any{"op": "Replace", "path": "active", "value": "True"}))
		if code != 200 || u["active"] != true || u["userName"] != "5b50642d-79fc@contoso.com" {
			t.Fatalf("re-enable: %d %v", code, u)
		}
		// Bad paths, ops and values are SCIM errors that change nothing.
		var tooMany []map[string]any
		for i := range scim.MaxOperations + 1 {
			tooMany = append(tooMany, map[string]any{"op": "Replace", "path": "name.givenName", "value": fmt.Sprint(i)})
		}
		for _, bad := range []struct {
			body           any
			scimType, says string
		}{
			{ops(map[string]any{"op": "Replace", "path": "emails[type eq", "value": "x"}), "invalidPath", "path"},
			{ops(map[string]any{"op": "Move", "path": "userName", "value": "x"}), "invalidValue", "Move"},
			{ops(map[string]any{"op": "Remove", "path": "userName"}), "mutability", "userName"},
			{ops(map[string]any{"op": "Remove", "path": `emails[type eq "home"]`}), "noTarget", "home"},
			{ops(map[string]any{"op": "Replace", "path": "active", "value": "perhaps"}), "invalidValue", "perhaps"},
			{`{"Operations": "nope"}`, "invalidSyntax", "JSON"},
			{ops(tooMany...), "tooMany", "1000"},
		} {
			seq, _ := d.LastChangeSeq(ctx)
			code, body, _ := c.do("PATCH", "/Users/"+id, bad.body)
			if code != 400 || body["scimType"] != bad.scimType || !strings.Contains(body["detail"].(string), bad.says) {
				t.Errorf("PATCH %v: %d %v", bad.body, code, body)
			}
			if s, _ := d.LastChangeSeq(ctx); s != seq {
				t.Errorf("PATCH %v changed the directory", bad.body)
			}
		}

		// SCIM_REMOVE_USER_ON_SOFT_DELETE=Y: disabling deletes the user;
		// Entra re-creates it (POST) when the user is restored.
		if _, err := d.SetSetting(ctx, "SCIM_REMOVE_USER_ON_SOFT_DELETE", "Y"); err != nil {
			t.Fatal(err)
		}
		if code, _, _ := c.do("PATCH", "/Users/"+id, ops(map[string]any{"op": "Replace", "path": "active", "value": false})); code != 204 {
			t.Fatalf("soft delete with Y: %d", code)
		}
		if filter(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`) != 0 {
			t.Fatal("the soft-deleted user still exists")
		}
		code, u, _ = c.do("POST", "/Users", entraUser("5b50642d-79fc@contoso.com", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"))
		if code != 201 {
			t.Fatalf("re-create: %d %v", code, u)
		}
		if code, _, _ := c.do("DELETE", "/Users/"+u["id"].(string), nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
	})
}

func TestIfMatch(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		c, _ := start(t, open(t))
		_, u, h := c.do("POST", "/Users", entraUser("etag@example.com", "e-1"))
		id, tag := u["id"].(string), h.Get("ETag")
		if tag == "" || u["meta"].(map[string]any)["version"] != tag {
			t.Fatalf("ETag %q, meta %v", tag, u["meta"])
		}
		patch := ops(map[string]any{"op": "replace", "path": "name.givenName", "value": "New"})
		if code, _, _ := c.doWith("PATCH", "/Users/"+id, patch, map[string]string{"If-Match": tag}); code != 200 {
			t.Fatalf("matching If-Match: %d", code)
		}
		if code, body, _ := c.doWith("PATCH", "/Users/"+id, patch, map[string]string{"If-Match": tag}); code != 412 {
			t.Fatalf("stale If-Match: %d %v", code, body)
		}
	})
}

func mustID(t *testing.T, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
