package scim_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/usersync/usersync/internal/dirtest"
)

func memberSet(t *testing.T, c *client, gid string) map[string]bool {
	t.Helper()
	code, g, _ := c.do("GET", "/Groups/"+gid, nil)
	if code != 200 {
		t.Fatalf("get group: %d %v", code, g)
	}
	out := map[string]bool{}
	ms, _ := g["members"].([]any)
	for _, m := range ms {
		out[m.(map[string]any)["value"].(string)] = true
	}
	return out
}

// TestEntraGroupSequence replays Entra's group requests: lookup by
// displayName with members excluded, create, add and remove members
// (both remove forms), rename (with and without a path), delete.
func TestEntraGroupSequence(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		var ids []string
		for _, n := range []string{"u1@x.example", "u2@x.example", "u3@x.example"} {
			_, u, _ := c.do("POST", "/Users", entraUser(n, "ext-"+n))
			ids = append(ids, u["id"].(string))
		}
		lookup := func(name string) int {
			code, body, _ := c.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "`+name+`"`), nil)
			if code != 200 {
				t.Fatalf("lookup: %d %v", code, body)
			}
			for _, r := range body["Resources"].([]any) {
				if _, has := r.(map[string]any)["members"]; has {
					t.Fatal("members returned although excluded")
				}
			}
			return int(body["totalResults"].(float64))
		}
		if lookup("Group1DisplayName") != 0 {
			t.Fatal("found before create")
		}
		code, g, _ := c.do("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Group1DisplayName", "meta": map[string]any{"resourceType": "Group"}, "members": []any{}})
		if code != 201 || g["externalId"] != "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159" {
			t.Fatalf("create: %d %v", code, g)
		}
		gid := g["id"].(string)
		if lookup("group1displayname") != 1 {
			t.Fatal("lookup after create (names compare ignoring case)")
		}
		if code, body, _ := c.do("POST", "/Groups", map[string]any{"displayName": "Group1DisplayName"}); code != 409 || body["scimType"] != "uniqueness" {
			t.Fatalf("duplicate: %d %v", code, body)
		}
		code, _, _ = c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "Add", "path": "members", "value": []map[string]any{{"value": ids[0]}, {"value": ids[1]}, {"value": ids[2]}}}))
		if m := memberSet(t, c, gid); code != 200 || len(m) != 3 {
			t.Fatalf("add members: %d %v", code, m)
		}
		c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "Remove", "path": "members", "value": []map[string]any{{"value": ids[0]}}}))
		c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "Remove", "path": `members[value eq "` + ids[1] + `"]`}))
		if m := memberSet(t, c, gid); len(m) != 1 || !m[ids[2]] {
			t.Fatalf("after removes: %v", m)
		}
		code, _, _ = c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"}))
		if code != 200 || lookup("1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName") != 1 {
			t.Fatalf("rename: %d", code)
		}
		c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "Replace", "value": map[string]any{"id": gid, "displayName": "Renamed Again"}}))
		if lookup("Renamed Again") != 1 {
			t.Fatal("rename without a path")
		}
		// Adding an unknown user changes nothing and says which.
		seq, _ := d.LastChangeSeq(context.Background())
		if code, body, _ := c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "Add", "path": "members", "value": []map[string]any{{"value": "999999"}}})); code != 400 || body["scimType"] != "invalidValue" {
			t.Fatalf("unknown member: %d %v", code, body)
		}
		if s, _ := d.LastChangeSeq(context.Background()); s != seq {
			t.Fatal("a refused PATCH changed the directory")
		}
		if code, _, _ := c.do("DELETE", "/Groups/"+gid, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		if code, _, _ := c.do("GET", "/Groups/"+gid, nil); code != 404 {
			t.Fatalf("after delete: %d", code)
		}
	})
}

// TestOktaSequence replays Okta's requests: user lookup with paging
// parameters, create, read, PUT replacement, deactivation by a path-less
// PATCH, and groups created with members, renamed, patched and replaced by PUT.
func TestOktaSequence(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		c, _ := start(t, open(t))
		code, body, _ := c.do("GET", "/Users?filter="+url.QueryEscape(`userName eq "isaac.brock@example.com"`)+"&startIndex=1&count=100", nil)
		if code != 200 || body["totalResults"].(float64) != 0 {
			t.Fatalf("lookup: %d %v", code, body)
		}
		okta := map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "isaac.brock@example.com",
			"name":        map[string]any{"givenName": "Isaac", "familyName": "Brock"},
			"emails":      []map[string]any{{"primary": true, "value": "isaac.brock@example.com", "type": "work"}},
			"displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7", "groups": []any{},
			"password": "1mz050nq", "active": true}
		code, u, _ := c.do("POST", "/Users", okta)
		if code != 201 {
			t.Fatalf("create: %d %v", code, u)
		}
		id := u["id"].(string)
		if code, _, _ := c.do("GET", "/Users/"+id, nil); code != 200 {
			t.Fatalf("read: %d", code)
		}
		okta["name"] = map[string]any{"givenName": "Another", "familyName": "Name"}
		okta["id"] = id
		if code, u, _ = c.do("PUT", "/Users/"+id, okta); code != 200 || u["name"].(map[string]any)["givenName"] != "Another" {
			t.Fatalf("PUT: %d %v", code, u)
		}
		if code, u, _ = c.do("PATCH", "/Users/"+id, ops(map[string]any{"op": "replace", "value": map[string]any{"active": false}})); code != 200 || u["active"] != false {
			t.Fatalf("deactivate: %d %v", code, u)
		}
		if code, u, _ = c.do("PATCH", "/Users/"+id, ops(map[string]any{"op": "replace", "value": map[string]any{"active": true}})); code != 200 || u["userName"] != "isaac.brock@example.com" {
			t.Fatalf("reactivate: %d %v", code, u)
		}
		_, other, _ := c.do("POST", "/Users", entraUser("other@example.com", "00uother"))
		oid := other["id"].(string)

		code, g, _ := c.do("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": "Test SCIMv2", "members": []map[string]any{{"value": id, "display": "isaac.brock@example.com"}}})
		if code != 201 || len(g["members"].([]any)) != 1 {
			t.Fatalf("group create: %d %v", code, g)
		}
		gid := g["id"].(string)
		if code, _, _ := c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "Test SCIMv2 renamed"}})); code != 200 {
			t.Fatalf("rename: %d", code)
		}
		c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "add", "path": "members", "value": []map[string]any{{"value": oid, "display": "other"}}}))
		c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": "remove", "path": `members[value eq "` + id + `"]`}))
		if m := memberSet(t, c, gid); len(m) != 1 || !m[oid] {
			t.Fatalf("after add and remove: %v", m)
		}
		code, g, _ = c.do("PUT", "/Groups/"+gid, map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "id": gid,
			"displayName": "Put Name", "members": []map[string]any{{"value": id}}})
		if code != 200 || g["displayName"] != "Put Name" || len(g["members"].([]any)) != 1 || g["members"].([]any)[0].(map[string]any)["value"] != id {
			t.Fatalf("PUT group: %d %v", code, g)
		}
		if code, _, _ := c.do("DELETE", "/Groups/"+gid, nil); code != 204 {
			t.Fatalf("delete group: %d", code)
		}
	})
}

// TestGroupPatchAllOrNothing: a POST or a PATCH naming a member that does
// not exist changes nothing (the PATCH renames too); a good one changes the group's
// ETag, and a stale If-Match is refused.
func TestGroupPatchAllOrNothing(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		c, _ := start(t, open(t))
		_, u, _ := c.do("POST", "/Users", entraUser("member@example.com", "m-1"))
		uid := u["id"].(string)
		code, body, _ := c.do("POST", "/Groups", map[string]any{"displayName": "Before", "members": []map[string]any{{"value": uid}, {"value": "999999"}}})
		if code != 400 || body["scimType"] != "invalidValue" {
			t.Fatalf("POST with a missing member: %d %v", code, body)
		}
		_, g, h := c.do("POST", "/Groups", map[string]any{"displayName": "Before"}) // the name is free: nothing was created
		gid, tag := g["id"].(string), h.Get("ETag")
		if gid == "" {
			t.Fatalf("create after a refused create: %v", g)
		}

		bad := ops(
			map[string]any{"op": "Replace", "path": "displayName", "value": "After"},
			map[string]any{"op": "Add", "path": "members", "value": []map[string]any{{"value": uid}, {"value": "999999"}}},
		)
		if code, body, _ := c.do("PATCH", "/Groups/"+gid, bad); code != 400 || body["scimType"] != "invalidValue" {
			t.Fatalf("PATCH with a missing member: %d %v", code, body)
		}
		_, g, h = c.do("GET", "/Groups/"+gid, nil)
		if g["displayName"] != "Before" || len(memberSet(t, c, gid)) != 0 || h.Get("ETag") != tag {
			t.Fatalf("a refused PATCH changed the group: %v, ETag %s (was %s)", g, h.Get("ETag"), tag)
		}

		good := ops(map[string]any{"op": "add", "path": "members", "value": []map[string]any{{"value": uid}}})
		if code, body, _ := c.doWith("PATCH", "/Groups/"+gid, good, map[string]string{"If-Match": tag}); code != 200 {
			t.Fatalf("PATCH with a matching If-Match: %d %v", code, body)
		}
		_, _, h = c.do("GET", "/Groups/"+gid+"?excludedAttributes=members", nil)
		if h.Get("ETag") == tag {
			t.Fatalf("adding a member left the group's ETag at %s", tag)
		}
		if code, _, _ := c.doWith("PATCH", "/Groups/"+gid, bad, map[string]string{"If-Match": tag}); code != 412 {
			t.Fatalf("stale If-Match on a group: %d, want 412", code)
		}
	})
}

// TestConcurrentUserPatches: PATCHes of one user from several clients at
// once, without If-Match, all apply, none losing another's change (each is
// computed from the user inside its write).
func TestConcurrentUserPatches(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		c, _ := start(t, open(t))
		_, u, _ := c.do("POST", "/Users", entraUser("busy@example.com", "b-1"))
		id := u["id"].(string)
		const clients, each = 8, 10
		// Each client has an attribute of its own, and all share costCenter.
		own := []string{"nickName", "title", "userType", "preferredLanguage", "locale", "timezone", "displayName", "profileUrl"}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed []string
		for k := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				gc := &client{goroutineT{&mu, &failed}, c.base, c.token}
				for i := range each {
					patch := ops(map[string]any{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
						"value": fmt.Sprint(i)}, map[string]any{"op": "add", "path": own[k], "value": fmt.Sprint(i)})
					if code, body, _ := gc.do("PATCH", "/Users/"+id, patch); code != 200 {
						gc.t.Fatal(fmt.Sprintf("client %d PATCH %d: %d %v", k, i, code, body))
					}
				}
			}()
		}
		wg.Wait()
		if len(failed) > 0 {
			t.Fatal(failed[0])
		}
		_, u, h := c.do("GET", "/Users/"+id, nil)
		if want := fmt.Sprintf(`W/"%d"`, 1+clients*each); h.Get("ETag") != want {
			t.Fatalf("ETag %s after %d PATCHes, want %s", h.Get("ETag"), clients*each, want)
		}
		for k := range clients {
			if v := u[own[k]]; v != fmt.Sprint(each-1) {
				t.Fatalf("client %d's last PATCH is lost: %s = %v", k, own[k], v)
			}
		}
	})
}

// TestGroupMemberFilter: which groups hold a user, asked by filter, in the
// database.
func TestGroupMemberFilter(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		c, _ := start(t, open(t))
		_, a, _ := c.do("POST", "/Users", entraUser("a@example.com", "a"))
		_, b, _ := c.do("POST", "/Users", entraUser("b@example.com", "b"))
		aid, bid := a["id"].(string), b["id"].(string)
		member := func(ids ...string) []map[string]any {
			var out []map[string]any
			for _, id := range ids {
				out = append(out, map[string]any{"value": id})
			}
			return out
		}
		c.do("POST", "/Groups", map[string]any{"displayName": "Both", "members": member(aid, bid)})
		c.do("POST", "/Groups", map[string]any{"displayName": "OnlyB", "members": member(bid)})
		c.do("POST", "/Groups", map[string]any{"displayName": "Empty"})
		for _, tc := range []struct{ filter, want string }{
			{`members[value eq "` + aid + `"]`, "Both"},
			{`members.value eq "` + bid + `"`, "Both OnlyB"},
			{`members eq "` + bid + `" and not (members[value eq "` + aid + `"])`, "OnlyB"},
			{`displayName eq "Both" and members[value eq "` + bid + `" and type eq "User"]`, "Both"},
			{`members[value eq "999999"]`, ""},
			{`not (members pr) and displayName ne "Default Group"`, "Empty"},
		} {
			code, body, _ := c.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(tc.filter), nil)
			if code != 200 {
				t.Fatalf("%s: %d %v", tc.filter, code, body)
			}
			var got []string
			for _, r := range body["Resources"].([]any) {
				got = append(got, r.(map[string]any)["displayName"].(string))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("%s: %q, want %q", tc.filter, strings.Join(got, " "), tc.want)
			}
		}
		if code, body, _ := c.do("GET", "/Groups?filter="+url.QueryEscape(`members co "1"`), nil); code != 400 || body["scimType"] != "invalidFilter" {
			t.Fatalf("members co: %d %v", code, body)
		}
	})
}

// TestDefaultGroupIsBuiltIn: the Default Group cannot be renamed or deleted
// over SCIM; the answer is 403, not a server error.
func TestDefaultGroupIsBuiltIn(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		c, _ := start(t, open(t))
		_, list, _ := c.do("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "Default Group"`), nil)
		rs, _ := list["Resources"].([]any)
		if len(rs) != 1 {
			t.Fatalf("Default Group lookup: %v", list)
		}
		id := rs[0].(map[string]any)["id"].(string)
		rename := ops(map[string]any{"op": "Replace", "path": "displayName", "value": "Everyone Else"})
		if code, body, _ := c.do("PATCH", "/Groups/"+id, rename); code != 403 || !strings.Contains(body["detail"].(string), "built in") {
			t.Fatalf("rename: %d %v", code, body)
		}
		if code, body, _ := c.do("DELETE", "/Groups/"+id, nil); code != 403 {
			t.Fatalf("delete: %d %v", code, body)
		}
	})
}

// A group a SCIM client creates keeps its displayName exactly: a ':' is
// part of the name (Entra allows it), not a folder path, and no folder is
// made for it, on create and on rename. (Issue 26, item 8: "Project:
// Apollo" was a 400, and "Sales:EMEA" made a folder "Sales".)
func TestGroupNamesAsSent(t *testing.T) {
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		c, _ := start(t, d)
		for _, name := range []string{"Project: Apollo", "Sales:EMEA"} {
			code, g, _ := c.do("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name})
			if code != 201 || g["displayName"] != name {
				t.Fatalf("create %q: %d %v", name, code, g)
			}
			rename := ops(map[string]any{"op": "replace", "path": "displayName", "value": name + ": renamed"})
			if code, body, _ := c.do("PATCH", "/Groups/"+g["id"].(string), rename); code/100 != 2 {
				t.Fatalf("rename %q: %d %v", name, code, body)
			}
		}
		if fs, _ := d.FindFolders(context.Background(), ""); len(fs) != 0 {
			t.Fatalf("SCIM made folders: %+v", fs)
		}
		if g, err := d.FindGroupByName(context.Background(), "Sales:EMEA: renamed"); err != nil || g.Folder() != "" {
			t.Fatalf("renamed group: %+v %v", g, err)
		}
	})
}
