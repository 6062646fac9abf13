package okta

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func send(t *testing.T, srv *httptest.Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	req.Header.Set("Authorization", "SSWS tok")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The writes Okta documents for users and groups change a running org:
// create (login unique, required attributes), partial and whole profile
// updates, each lifecycle step where the status allows it, delete in two
// steps, groups and their members. (Issue 26, item 12.)
func TestWrites(t *testing.T) {
	org := NewOrg()
	srv := httptest.NewServer(NewServer(org, Options{Token: "tok"}))
	defer srv.Close()
	profile := map[string]any{"login": "ada@x.example", "email": "ada@x.example", "firstName": "Ada", "lastName": "Lovelace"}
	code, u := send(t, srv, "POST", "/api/v1/users?activate=false", map[string]any{"profile": profile})
	if code != 200 || u["status"] != StatusStaged {
		t.Fatalf("create: %d %v", code, u)
	}
	id := u["id"].(string)
	if code, e := send(t, srv, "POST", "/api/v1/users", map[string]any{"profile": map[string]any{"login": "ADA@x.example", "email": "a@x.example", "firstName": "A"}}); code != 400 || e["errorCode"] != "E0000001" || len(e["errorCauses"].([]any)) != 2 {
		t.Fatalf("a taken login and a missing lastName: %d %v", code, e)
	}
	if code, u := send(t, srv, "POST", "/api/v1/users/"+id, map[string]any{"profile": map[string]any{"lastName": "King"}}); code != 200 || u["profile"].(map[string]any)["lastName"] != "King" || u["profile"].(map[string]any)["firstName"] != "Ada" {
		t.Fatalf("partial update: %d %v", code, u)
	}
	if code, e := send(t, srv, "PUT", "/api/v1/users/"+id, map[string]any{"profile": map[string]any{"login": "ada@x.example"}}); code != 400 || e["errorCode"] != "E0000001" {
		t.Fatalf("a whole replace without the required attributes: %d %v", code, e)
	}
	for _, step := range []struct {
		op   string
		code int
		want string
	}{{"suspend", 400, StatusStaged}, {"activate", 200, StatusActive}, {"suspend", 200, StatusSuspended}, {"suspend", 400, StatusSuspended},
		{"unsuspend", 200, StatusActive}, {"deactivate", 200, StatusDeprovisioned}, {"activate", 200, StatusActive}} {
		code, _ := send(t, srv, "POST", "/api/v1/users/"+id+"/lifecycle/"+step.op, nil)
		if got, _ := org.User(id); code != step.code || got.Status != step.want {
			t.Fatalf("%s: %d, status %s; want %d, %s", step.op, code, got.Status, step.code, step.want)
		}
	}
	code, g := send(t, srv, "POST", "/api/v1/groups", map[string]any{"profile": map[string]any{"name": "Project: Apollo", "description": "d"}})
	if code != 200 || g["type"] != "OKTA_GROUP" {
		t.Fatalf("create group: %d %v", code, g)
	}
	gid := g["id"].(string)
	for i := 0; i < 2; i++ { // idempotent
		if code, _ := send(t, srv, "PUT", "/api/v1/groups/"+gid+"/users/"+id, nil); code != 204 {
			t.Fatalf("add member: %d", code)
		}
	}
	if got, _ := org.Group(gid); !slices.Equal(got.Members, []string{id}) {
		t.Fatalf("members %v", got.Members)
	}
	if code, _ := send(t, srv, "PUT", "/api/v1/groups/"+gid, map[string]any{"profile": map[string]any{"name": "Apollo"}}); code != 200 || len(org.GroupsNamed("Apollo")) != 1 {
		t.Fatalf("rename group: %d", code)
	}
	// Delete deactivates first, then deletes; the user leaves every group.
	if code, _ := send(t, srv, "DELETE", "/api/v1/users/"+id, nil); code != 204 {
		t.Fatalf("delete 1: %d", code)
	}
	if got, ok := org.User(id); !ok || got.Status != StatusDeprovisioned {
		t.Fatalf("after the first delete: %+v %v", got, ok)
	}
	send(t, srv, "DELETE", "/api/v1/users/"+id, nil)
	if _, ok := org.User(id); ok {
		t.Fatal("the second delete kept the user")
	}
	if got, _ := org.Group(gid); len(got.Members) != 0 || len(org.everyone().Members) != 0 {
		t.Fatalf("a deleted user stayed a member: %v / %v", got.Members, org.everyone().Members)
	}
	if code, _ := send(t, srv, "DELETE", "/api/v1/groups/00g0000000everyone0", nil); code != 403 {
		t.Fatalf("deleting Everyone: %d", code)
	}
	if code, _ := send(t, srv, "DELETE", "/api/v1/groups/"+gid, nil); code != 204 || len(org.GroupsNamed("Apollo")) != 0 {
		t.Fatalf("delete group: %d", code)
	}
	if code, e := send(t, srv, "PATCH", "/api/v1/groups", nil); code != 405 || e["errorCode"] != "E0000022" {
		t.Fatalf("an undocumented method: %d %v", code, e)
	}
}
