package graph

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func emulator(t *testing.T, tenant *Tenant, o Options) (*httptest.Server, string) {
	t.Helper()
	o.ClientID, o.ClientSecret = "c", "s"
	srv := httptest.NewServer(NewServer(tenant, o))
	t.Cleanup(srv.Close)
	resp, err := http.PostForm(srv.URL+"/"+tenant.ID+"/oauth2/v2.0/token", url.Values{"client_id": {"c"}, "client_secret": {"s"},
		"grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	return srv, tok.AccessToken
}

// follow reads a delta round to its end and returns its items and delta link.
func follow(t *testing.T, srv *httptest.Server, token, path string) (items []map[string]any, deltaLink string, pages int) {
	t.Helper()
	for path != "" {
		code, body := getJSON(t, srv, token, path)
		if code != 200 {
			t.Fatalf("GET %s: %d %v", path, code, body)
		}
		pages++
		for _, v := range body["value"].([]any) {
			items = append(items, v.(map[string]any))
		}
		path = ""
		if next, ok := body["@odata.nextLink"].(string); ok {
			u, _ := url.Parse(next)
			path = u.RequestURI()
		} else {
			deltaLink = body["@odata.deltaLink"].(string)
		}
	}
	return items, deltaLink, pages
}

func uri(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.RequestURI()
}

func TestDeltaRounds(t *testing.T) {
	tenant := Generate(3, 600, 3)
	srv, token := emulator(t, tenant, Options{})
	all := tenant.GroupsNamed("All Users")[0]

	// Initial users round: every user, in pages, ending in a delta link.
	users, link, pages := follow(t, srv, token, "/v1.0/users/delta?$select=userPrincipalName,surname")
	if len(users) != 600 || pages != 3 || link == "" {
		t.Fatalf("initial round: %d users in %d pages, link %q", len(users), pages, link)
	}
	if _, ok := users[0]["surname"]; !ok || users[0]["givenName"] != nil {
		t.Fatalf("$select not applied: %v", users[0])
	}
	// Nothing changed: an empty round.
	if again, next, _ := follow(t, srv, token, uri(t, link)); len(again) != 0 || next == "" {
		t.Fatalf("no-change round gave %d items", len(again))
	}
	// Two changes and a deletion: only those come back; the query ($select) is kept by the token.
	tenant.UpdateUser(all.Members[0], func(u *User) { u.Surname = "Changed" })
	tenant.UpdateUser(all.Members[0], func(u *User) { u.Surname = "Changed twice" })
	tenant.DeleteUser(all.Members[1])
	changed, link2, _ := follow(t, srv, token, uri(t, link))
	if len(changed) != 2 || changed[0]["surname"] != "Changed twice" || changed[1]["@removed"] == nil {
		t.Fatalf("changes round: %v", changed)
	}
	if after, _, _ := follow(t, srv, token, uri(t, link2)); len(after) != 0 {
		t.Fatalf("the new link replays %d items", len(after))
	}
	// Replaying the old link gives the same changes again (idempotent consumers cope).
	if replay, _, _ := follow(t, srv, token, uri(t, link)); len(replay) != 2 {
		t.Fatalf("replayed round gave %d items", len(replay))
	}

	// Groups delta scoped by id: the initial round splits All Users' 599
	// members over several items, all for the same group.
	gpath := "/v1.0/groups/delta?" + url.Values{"$filter": {"id eq '" + all.ID + "'"}, "$select": {"displayName,members"}}.Encode()
	items, glink, _ := follow(t, srv, token, gpath)
	total := 0
	for _, it := range items {
		if it["id"] != all.ID {
			t.Fatalf("filtered round returned group %v", it["id"])
		}
		total += len(it["members@delta"].([]any))
	}
	if len(items) != 3 || total != 599 {
		t.Fatalf("initial group round: %d items, %d members", len(items), total)
	}
	tenant.RemoveMember(all.ID, all.Members[2])
	tenant.AddMember(all.ID, all.Members[1]) // deleted user: not added
	tenant.RemoveMember(all.ID, all.Members[3])
	tenant.AddMember(all.ID, all.Members[3]) // removed then added back: the latest state wins
	items, _, _ = follow(t, srv, token, uri(t, glink))
	if len(items) != 1 {
		t.Fatalf("group changes: %v", items)
	}
	md := items[0]["members@delta"].([]any)
	if len(md) != 2 || md[0].(map[string]any)["@removed"] == nil || md[1].(map[string]any)["@removed"] != nil {
		t.Fatalf("members@delta: %v", md)
	}

	// $deltatoken=latest: no data, a link from now.
	latest, llink, _ := follow(t, srv, token, "/v1.0/users/delta?$deltatoken=latest&$select=id")
	if len(latest) != 0 || llink == "" {
		t.Fatalf("latest: %v", latest)
	}
	// $top is refused on delta.
	if code, _ := getJSON(t, srv, token, "/v1.0/users/delta?$top=10"); code != 400 {
		t.Fatalf("$top on delta: %d", code)
	}
	// Expired tokens: 410 Gone, code syncStateNotFound, Location to start over.
	tenant.ExpireDeltaTokens()
	req, _ := http.NewRequest("GET", srv.URL+uri(t, link), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 410 || body["error"].(map[string]any)["code"] != "syncStateNotFound" || !strings.Contains(resp.Header.Get("Location"), "users/delta") {
		t.Fatalf("expired token: %d %v %q", resp.StatusCode, body, resp.Header.Get("Location"))
	}
}

func TestDeltaTokenLifetime(t *testing.T) {
	tenant := Generate(3, 5, 1)
	srv, token := emulator(t, tenant, Options{DeltaTokenLifetime: time.Nanosecond})
	_, link, _ := follow(t, srv, token, "/v1.0/users/delta")
	if code, _ := getJSON(t, srv, token, uri(t, link)); code != 410 {
		t.Fatalf("token past its lifetime: %d", code)
	}
}

func TestBatchAndCount(t *testing.T) {
	tenant := Generate(4, 30, 2)
	srv, token := emulator(t, tenant, Options{RequestBudget: 3, Window: time.Minute})
	all := tenant.GroupsNamed("All Users")[0]
	var reqs []map[string]any
	for i := 0; i < 5; i++ {
		reqs = append(reqs, map[string]any{"id": string(rune('a' + i)), "method": "GET", "url": "/users/" + all.Members[i] + "?$select=id,surname"})
	}
	post := func(v any) (int, map[string]any) {
		b, _ := json.Marshal(v)
		req, _ := http.NewRequest("POST", srv.URL+"/v1.0/$batch", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	code, body := post(map[string]any{"requests": reqs})
	if code != 200 {
		t.Fatalf("batch: %d %v", code, body)
	}
	statuses := map[float64]int{}
	for _, r := range body["responses"].([]any) {
		r := r.(map[string]any)
		statuses[r["status"].(float64)]++
		if r["status"].(float64) == 429 && r["headers"].(map[string]any)["Retry-After"] == nil {
			t.Fatal("throttled inner request without Retry-After")
		}
		if r["status"].(float64) == 200 && r["body"].(map[string]any)["surname"] == nil {
			t.Fatalf("inner body: %v", r)
		}
	}
	if statuses[200] != 3 || statuses[429] != 2 {
		t.Fatalf("inner statuses %v; want 3 served and 2 throttled by the budget of 3", statuses)
	}
	if code, _ := post(map[string]any{"requests": make([]map[string]any, 21)}); code != 400 {
		t.Fatalf("21 requests in a batch: %d", code)
	}

	srv2, token2 := emulator(t, tenant, Options{})
	req, _ := http.NewRequest("GET", srv2.URL+"/v1.0/groups/"+all.ID+"/transitiveMembers/microsoft.graph.user/$count", nil)
	req.Header.Set("Authorization", "Bearer "+token2)
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("$count without ConsistencyLevel: %d", resp.StatusCode)
	}
	req.Header.Set("ConsistencyLevel", "eventual")
	resp, _ = http.DefaultClient.Do(req)
	var n int
	json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	if resp.StatusCode != 200 || n != 30 {
		t.Fatalf("$count: %d %d", resp.StatusCode, n)
	}
}

func TestLoadTenant(t *testing.T) {
	src := Generate(5, 20, 3)
	var buf bytes.Buffer
	if err := src.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTenant(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != src.ID || len(got.users) != 20 || len(got.GroupsNamed("All Users")[0].Members) != 20 {
		t.Fatalf("round trip lost data: %s %d", got.ID, len(got.users))
	}
	for _, bad := range []struct{ in, want string }{
		{`{"users":[]}`, `"id"`},
		{`{"id":"t","users":[{"id":"a"},{"id":"a"}]}`, `"a" appears twice`},
		{`{"id":"t","groups":[{"id":"g","displayName":"G","members":["nope"]}]}`, `member "nope"`},
		{`{"id":"t","colour":1}`, `unknown field "colour"`},
	} {
		if _, err := LoadTenant(strings.NewReader(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("LoadTenant(%s) = %v; want an error naming %s", bad.in, err, bad.want)
		}
	}
}

func FuzzIDFilter(f *testing.F) {
	for _, s := range []string{"id eq 'a'", "id eq 'a' or id eq 'b'", "id eq 'O''x'", "displayName eq 'a'", "id eq 'a' or", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		ids, err := idFilter(filter)
		if err != nil || ids == nil {
			return
		}
		// What parsed must round-trip through the quoting a client does.
		var clauses []string
		for id := range ids {
			clauses = append(clauses, "id eq '"+strings.ReplaceAll(id, "'", "''")+"'")
		}
		again, err := idFilter(strings.Join(clauses, " or "))
		if err != nil || len(again) != len(ids) {
			t.Fatalf("%q → %v → %v %v", filter, ids, again, err)
		}
		for id := range ids {
			if !again[id] {
				t.Fatalf("%q: id %q lost on the round trip", filter, id)
			}
		}
	})
}
