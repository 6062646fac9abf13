package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// send sends an authenticated request with a JSON body to the emulator.
func send(t *testing.T, get func(string, ...string) (int, http.Header, string), base, token, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tokenFor(t *testing.T, base, tenant string) string {
	t.Helper()
	resp, err := http.Post(base+"/"+tenant+"/oauth2/v2.0/token", "application/x-www-form-urlencoded",
		strings.NewReader("client_id=c&client_secret=s&grant_type=client_credentials&scope="+base+"/.default"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	return tok.AccessToken
}

func ref(id string) string { return `"https://graph.microsoft.com/v1.0/directoryObjects/` + id + `"` }

// Group writes follow wire facts §5: required fields, limits, mailNickname
// rules and uniqueness among Microsoft 365 groups, 20 binds all or nothing,
// "already exist" and 404 on member writes; what was written is read back.
func TestGroupWrites(t *testing.T) {
	tenant := Generate(3, 30, 1)
	srv, get := emu(t, tenant)
	tok := tokenFor(t, srv.URL, tenant.ID)
	w := func(method, path, body string) (int, string) { return send(t, get, srv.URL, tok, method, path, body) }
	users := tenant.GroupsNamed("All Users")[0].Members
	for _, bad := range []struct{ body, says string }{
		{`{"mailEnabled":false,"securityEnabled":true,"mailNickname":"x"}`, "displayName"},
		{`{"displayName":"G","securityEnabled":true,"mailNickname":"x"}`, "required"},
		{`{"displayName":"` + strings.Repeat("a", 257) + `","mailEnabled":false,"securityEnabled":true,"mailNickname":"x"}`, "displayName"},
		{`{"displayName":"G","description":"` + strings.Repeat("d", 1025) + `","mailEnabled":false,"securityEnabled":true,"mailNickname":"x"}`, "description"},
		{`{"displayName":"G","mailEnabled":false,"securityEnabled":true,"mailNickname":"` + strings.Repeat("n", 65) + `"}`, "mailNickname"},
		{`{"displayName":"G","mailEnabled":false,"securityEnabled":true,"mailNickname":"a b"}`, "mailNickname"},
		{`{"displayName":"G","mailEnabled":false,"securityEnabled":true,"mailNickname":"a@b"}`, "mailNickname"},
		{`{"displayName":"G","mailEnabled":true,"securityEnabled":true,"mailNickname":"x"}`, "security groups"},
	} {
		if code, body := w("POST", "/v1.0/groups", bad.body); code != 400 || !strings.Contains(body, bad.says) {
			t.Fatalf("%s: %d %s", bad.body, code, body)
		}
	}
	var binds []string
	for _, id := range users[:20] {
		binds = append(binds, ref(id))
	}
	code, body := w("POST", "/v1.0/groups", `{"displayName":"Sec","mailEnabled":false,"securityEnabled":true,"mailNickname":"sec","groupTypes":[],"members@odata.bind":[`+strings.Join(binds, ",")+`]}`)
	if code != 201 || !strings.Contains(body, `"securityEnabled":true`) {
		t.Fatalf("create: %d %s", code, body)
	}
	var g struct{ ID string }
	json.Unmarshal([]byte(body), &g)
	if got, _ := tenant.Group(g.ID); len(got.Members) != 20 {
		t.Fatalf("members bound at creation: %d", len(got.Members))
	}
	if code, body := w("POST", "/v1.0/groups", `{"displayName":"Too","mailEnabled":false,"securityEnabled":true,"mailNickname":"too","members@odata.bind":[`+strings.Join(append(binds, ref(users[20])), ",")+`]}`); code != 400 || !strings.Contains(body, "maximum of 20") {
		t.Fatalf("21 binds: %d %s", code, body)
	}
	// Unified: mailNickname unique among them.
	uni := `{"displayName":"U","mailEnabled":true,"securityEnabled":false,"mailNickname":"team","groupTypes":["Unified"],"visibility":"Private"}`
	if code, body := w("POST", "/v1.0/groups", uni); code != 201 || !strings.Contains(body, `"visibility":"Private"`) {
		t.Fatalf("unified: %d %s", code, body)
	}
	if code, body := w("POST", "/v1.0/groups", uni); code != 400 || !strings.Contains(body, "mailNickname already exists") {
		t.Fatalf("second unified of the same nickname: %d %s", code, body)
	}
	// PATCH with binds: all or nothing.
	before, _ := tenant.Group(g.ID)
	if code, body := w("PATCH", "/v1.0/groups/"+g.ID, `{"members@odata.bind":[`+ref(users[21])+`,`+ref("no-such-user")+`]}`); code != 404 {
		t.Fatalf("bad bind: %d %s", code, body)
	}
	if after, _ := tenant.Group(g.ID); len(after.Members) != len(before.Members) {
		t.Fatal("a failed bind added members")
	}
	if code, body := w("PATCH", "/v1.0/groups/"+g.ID, `{"members@odata.bind":[`+ref(users[0])+`]}`); code != 400 || !strings.Contains(body, "already exist") {
		t.Fatalf("bind of a member: %d %s", code, body)
	}
	if code, _ := w("PATCH", "/v1.0/groups/"+g.ID, `{"displayName":"Renamed","description":"d","members@odata.bind":[`+ref(users[21])+`]}`); code != 204 {
		t.Fatalf("patch: %d", code)
	}
	// One member at a time.
	if code, _ := w("POST", "/v1.0/groups/"+g.ID+"/members/$ref", `{"@odata.id":`+ref(users[22])+`}`); code != 204 {
		t.Fatalf("add $ref: %d", code)
	}
	if code, body := w("POST", "/v1.0/groups/"+g.ID+"/members/$ref", `{"@odata.id":`+ref(users[22])+`}`); code != 400 || !strings.Contains(body, "already exist") {
		t.Fatalf("add $ref twice: %d %s", code, body)
	}
	if code, _ := w("DELETE", "/v1.0/groups/"+g.ID+"/members/"+users[22]+"/$ref", ""); code != 204 {
		t.Fatalf("remove $ref: %d", code)
	}
	if code, _ := w("DELETE", "/v1.0/groups/"+g.ID+"/members/"+users[22]+"/$ref", ""); code != 404 {
		t.Fatalf("remove $ref twice: %d", code)
	}
	// Removals in a $batch, each its own answer.
	var reqs []string
	for i, id := range users[:3] {
		reqs = append(reqs, fmt.Sprintf(`{"id":"%d","method":"DELETE","url":"/groups/%s/members/%s/$ref"}`, i, g.ID, id))
	}
	code, body = w("POST", "/v1.0/$batch", `{"requests":[`+strings.Join(reqs, ",")+`]}`)
	if code != 200 || strings.Count(body, `"status":204`) != 3 {
		t.Fatalf("batch removals: %d %s", code, body)
	}
	// Read back through the read API, as a pull would.
	if _, _, body := get("/v1.0/groups/" + g.ID); !strings.Contains(body, `"displayName":"Renamed"`) {
		t.Fatalf("read back: %s", body)
	}
	if _, _, body := get("/v1.0/groups?$filter=mailNickname%20eq%20'sec'"); !strings.Contains(body, g.ID) {
		t.Fatalf("find by mailNickname: %s", body)
	}
	if code, _ := w("DELETE", "/v1.0/groups/"+g.ID, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := get("/v1.0/groups/" + g.ID); code != 404 {
		t.Fatalf("deleted group still read: %d", code)
	}
	resp, err := http.Get(srv.URL + CountsPath)
	if err != nil {
		t.Fatal(err)
	}
	var counts struct{ Writes map[string]int }
	json.NewDecoder(resp.Body).Decode(&counts)
	resp.Body.Close()
	if counts.Writes["POST /groups"] < 3 || counts.Writes["DELETE /groups/{id}/members/{id}/$ref"] != 5 {
		t.Fatalf("counts: %+v", counts)
	}
}

// The write quota answers 429 with Retry-After; a group created a moment
// ago answers 404 while the replication lag lasts.
func TestWriteQuotaAndLag(t *testing.T) {
	tenant := Generate(4, 5, 1)
	srv := newTestServer(t, tenant, Options{ClientID: "c", ClientSecret: "s", WriteBudget: 2, WriteWindow: time.Hour, ReplicationLag: 300 * time.Millisecond})
	tok := tokenFor(t, srv, tenant.ID)
	do := func(method, path, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, srv+path, bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, _, body := do("POST", "/v1.0/groups", `{"displayName":"G","mailEnabled":false,"securityEnabled":true,"mailNickname":"g"}`)
	var g struct{ ID string }
	json.Unmarshal([]byte(body), &g)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	if code, _, _ := do("GET", "/v1.0/groups/"+g.ID, ""); code != 404 {
		t.Fatalf("read during the lag: %d", code)
	}
	time.Sleep(350 * time.Millisecond)
	if code, _, _ := do("GET", "/v1.0/groups/"+g.ID, ""); code != 200 {
		t.Fatalf("read after the lag: %d", code)
	}
	do("PATCH", "/v1.0/groups/"+g.ID, `{"description":"x"}`)
	code, h, _ := do("PATCH", "/v1.0/groups/"+g.ID, `{"description":"y"}`)
	if code != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("over the write quota: %d %v", code, h)
	}
}

func newTestServer(t *testing.T, tenant *Tenant, o Options) string {
	t.Helper()
	srv := httptest.NewServer(NewServer(tenant, o))
	t.Cleanup(srv.Close)
	return srv.URL
}

// User and license writes follow wire facts §6: required fields, a UPN
// in a verified domain and unique, soft delete, assignLicense refused
// without a usage location, beyond the seats, or for an unknown SKU.
func TestUserWrites(t *testing.T) {
	tenant := Generate(3, 30, 1)
	srv, get := emu(t, tenant)
	tok := tokenFor(t, srv.URL, tenant.ID)
	w := func(method, path, body string) (int, string) { return send(t, get, srv.URL, tok, method, path, body) }
	const ok = `"accountEnabled":true,"displayName":"Josh","mailNickname":"josh","passwordProfile":{"password":"Secret-Password-1"}`
	for _, bad := range []struct{ body, says string }{
		{`{"displayName":"Josh","mailNickname":"josh","userPrincipalName":"josh@contoso.example","passwordProfile":{"password":"Secret-Password-1"}}`, "accountEnabled"},
		{`{"accountEnabled":true,"mailNickname":"josh","userPrincipalName":"josh@contoso.example","passwordProfile":{"password":"Secret-Password-1"}}`, "'displayName'"},
		{`{"accountEnabled":true,"displayName":"Josh","mailNickname":"josh","userPrincipalName":"josh@contoso.example"}`, "passwordProfile"},
		{`{` + ok + `,"userPrincipalName":"josh@fabrikam.com"}`, "verified domain"},
		{`{` + ok + `,"userPrincipalName":"josh@contoso.example","favouriteColour":"blue"}`, "favouriteColour"},
		{`{"accountEnabled":true,"displayName":"Josh","mailNickname":"jo sh","userPrincipalName":"josh@contoso.example","passwordProfile":{"password":"Secret-Password-1"}}`, "mailNickname"},
	} {
		if code, body := w("POST", "/v1.0/users", bad.body); code != 400 || !strings.Contains(body, bad.says) {
			t.Fatalf("%s: %d %s", bad.body, code, body)
		}
	}
	existing := tenant.GroupsNamed("All Users")[0].Members[0]
	taken, _ := tenant.User(existing)
	if code, body := w("POST", "/v1.0/users", `{`+ok+`,"userPrincipalName":"`+strings.ToUpper(taken.UserPrincipalName)+`"}`); code != 400 || !strings.Contains(body, "Another object with the same value for property userPrincipalName already exists.") {
		t.Fatalf("a taken UPN: %d %s", code, body)
	}
	code, body := w("POST", "/v1.0/users", `{`+ok+`,"userPrincipalName":"josh@contoso.example","onPremisesImmutableId":"imm-1"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var made struct{ ID string }
	json.Unmarshal([]byte(body), &made)
	sku := "3fa21d5b-0000-4000-8000-0000000000a3" // Office Professional: 30/2 + 10 = 25 seats
	assign := `{"addLicenses":[{"skuId":"` + sku + `","disabledPlans":[]}],"removeLicenses":[]}`
	if code, body := w("POST", "/v1.0/users/"+made.ID+"/assignLicense", assign); code != 400 || !strings.Contains(body, "usage location") {
		t.Fatalf("without a usage location: %d %s", code, body)
	}
	if code, _ := w("PATCH", "/v1.0/users/"+made.ID, `{"usageLocation":"US"}`); code != 204 {
		t.Fatalf("patch: %d", code)
	}
	if code, body := w("POST", "/v1.0/users/"+made.ID+"/assignLicense", `{"addLicenses":[{"skuId":"00000000-0000-0000-0000-000000000000","disabledPlans":[]}],"removeLicenses":[]}`); code != 400 || !strings.Contains(body, "valid company License") {
		t.Fatalf("an unknown SKU: %d %s", code, body)
	}
	if code, body := w("POST", "/v1.0/users/"+made.ID+"/assignLicense", assign); code != 200 || !strings.Contains(body, made.ID) {
		t.Fatalf("assign: %d %s", code, body)
	}
	if code, body := w("PATCH", "/v1.0/users/"+made.ID, `{"usageLocation":null}`); code != 400 || !strings.Contains(body, "usage location") {
		t.Fatalf("removing the usage location of a licensed user: %d %s", code, body)
	}
	// Fill the seats: the next assignment is refused.
	for i := 1; i < 25; i++ {
		u := User{ID: fmt.Sprintf("seat-%d", i), UserPrincipalName: fmt.Sprintf("seat%d@contoso.example", i), UsageLocation: "US", Licenses: []AssignedLicense{{SkuID: sku}}}
		tenant.AddUser(u)
	}
	code, body = w("POST", "/v1.0/users", `{`+ok+`,"userPrincipalName":"late@contoso.example","usageLocation":"US"}`)
	json.Unmarshal([]byte(body), &made)
	if code, body := w("POST", "/v1.0/users/"+made.ID+"/assignLicense", assign); code != 400 || !strings.Contains(body, "does not have any available licenses") {
		t.Fatalf("beyond the seats: %d %s", code, body)
	}
	_, body = w("GET", "/v1.0/subscribedSkus", "")
	if !strings.Contains(body, `"consumedUnits":25`) || !strings.Contains(body, `"enabled":25`) {
		t.Fatalf("subscribedSkus: %s", body)
	}
	if code, _ := w("DELETE", "/v1.0/users/"+made.ID, ""); code != 204 || !tenant.Deleted(made.ID) {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := w("GET", "/v1.0/users/"+made.ID, ""); code != 404 {
		t.Fatalf("a deleted user is still read: %d", code)
	}
}

// Upsert by uniqueName, as Graph documents it (group: upsert): PATCH
// /groups(uniqueName='…') with Prefer: create-if-missing creates the group
// once (201 with it) and updates it after that (204); without the header a
// missing key is 404. uniqueName is unique, immutable once set, found by
// key during the replication lag, and $filter-able (eq, startswith).
func TestGroupUpsertByUniqueName(t *testing.T) {
	tenant := Generate(3, 5, 1)
	srv := newTestServer(t, tenant, Options{ClientID: "c", ClientSecret: "s", ReplicationLag: time.Hour})
	tok := tokenFor(t, srv, tenant.ID)
	do := func(method, path, prefer, body string) (int, string) {
		req, _ := http.NewRequest(method, srv+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if prefer != "" {
			req.Header.Set("Prefer", prefer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	const spec = `{"displayName":"G","mailEnabled":false,"securityEnabled":true,"mailNickname":"g"}`
	before := len(tenant.Groups())
	if code, body := do("PATCH", "/v1.0/groups(uniqueName='k.1')", "", spec); code != 404 {
		t.Fatalf("without Prefer, a missing key: %d %s", code, body)
	}
	code, body := do("PATCH", "/v1.0/groups(uniqueName='k.1')", "create-if-missing", spec)
	if code != 201 || !strings.Contains(body, `"uniqueName":"k.1"`) {
		t.Fatalf("upsert create: %d %s", code, body)
	}
	var g struct{ ID string }
	json.Unmarshal([]byte(body), &g)
	// Again, while the group replicates (an hour here): found by its key.
	if code, body := do("PATCH", "/v1.0/groups/(uniqueName='k.1')", "create-if-missing", `{"displayName":"G2","mailEnabled":false,"securityEnabled":true,"mailNickname":"g"}`); code != 204 || body != "" {
		t.Fatalf("upsert of an existing key: %d %s", code, body)
	}
	if n := len(tenant.Groups()); n != before+1 {
		t.Fatalf("%d groups after two upserts of one key, want %d", n, before+1)
	}
	if got, _ := tenant.Group(g.ID); got.DisplayName != "G2" || got.UniqueName != "k.1" {
		t.Fatalf("after the update: %+v", got)
	}
	if code, body := do("GET", "/v1.0/groups(uniqueName='k.1')?$select=id,uniqueName", "", ""); code != 200 || !strings.Contains(body, g.ID) {
		t.Fatalf("get by key: %d %s", code, body)
	}
	if code, body := do("GET", "/v1.0/groups?$filter="+url.QueryEscape("uniqueName eq 'k.1'"), "", ""); code != 200 || strings.Contains(body, g.ID) {
		t.Fatalf("a $filter lags like every list query: %d %s", code, body)
	}
	if code, body := do("POST", "/v1.0/groups", "", `{"displayName":"H","mailEnabled":false,"securityEnabled":true,"mailNickname":"h","uniqueName":"K.1"}`); code != 400 || !strings.Contains(body, "uniqueName") {
		t.Fatalf("a second group with the key: %d %s", code, body)
	}
	if code, body := do("PATCH", "/v1.0/groups(uniqueName='k.1')", "", `{"uniqueName":"other"}`); code != 400 {
		t.Fatalf("a key differing from the URL's: %d %s", code, body)
	}
	old := tenant.Groups()[0].ID
	if code, body := do("PATCH", "/v1.0/groups/"+old, "", `{"uniqueName":"k.2"}`); code != 204 {
		t.Fatalf("setting a key on a group that has none: %d %s", code, body)
	}
	if code, body := do("PATCH", "/v1.0/groups/"+old, "", `{"uniqueName":"k.3"}`); code != 400 || !strings.Contains(body, "immutable") {
		t.Fatalf("changing a key: %d %s", code, body)
	}
	if code, body := do("GET", "/v1.0/groups?$filter="+url.QueryEscape("startswith(uniqueName,'k.')")+"&$select=id,uniqueName", "", ""); code != 200 || !strings.Contains(body, `"k.2"`) || strings.Contains(body, `"k.1"`) {
		t.Fatalf("startswith (the lagging k.1 not yet listed): %d %s", code, body)
	}
}
