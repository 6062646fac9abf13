package graph

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// served serves a small tenant and returns a token for it; the panic
// log goes to logs.
func served(t testing.TB, logs io.Writer) (*httptest.Server, *Tenant, string) {
	tenant := Generate(3, 12, 2)
	s := NewServer(tenant, Options{ClientID: "c", ClientSecret: "s", Log: slog.New(slog.NewTextHandler(logs, nil))})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, tenant, token(t, s, tenant)
}

// A $select without id was answered with a dropped connection: the user
// list was sorted by the rendered objects' "id", which they lacked.
func TestSelectWithoutID(t *testing.T) {
	var logs bytes.Buffer
	srv, tenant, tok := served(t, &logs)
	code, body := getJSON(t, srv, tok, "/v1.0/users?$select=userPrincipalName&$top=5")
	if code != 200 {
		t.Fatalf("$select=userPrincipalName: %d %v", code, body)
	}
	page := body["value"].([]any)
	if len(page) != 5 || page[0].(map[string]any)["id"] != nil || page[0].(map[string]any)["userPrincipalName"] == nil {
		t.Fatalf("page: %v", page)
	}
	// The pages still come in id order: the next page follows on.
	code, all := getJSON(t, srv, tok, "/v1.0/users?$select=id,userPrincipalName&$top=999")
	if code != 200 || len(all["value"].([]any)) != len(tenant.users) {
		t.Fatalf("all users: %d", code)
	}
	if want := all["value"].([]any)[0].(map[string]any)["userPrincipalName"]; page[0].(map[string]any)["userPrincipalName"] != want {
		t.Fatalf("first of the page without id is %v, want %v", page[0], want)
	}
}

// FuzzQueryOptions sends any $select, $filter, $top, $expand, $count and
// $skiptoken to every list and read the emulator serves: each answer is a
// Graph answer below 500 (a panic would be a logged 500, see
// internal/recovery), as the SCIM parser is fuzzed.
func FuzzQueryOptions(f *testing.F) {
	for _, seed := range [][6]string{
		{"userPrincipalName", "", "", "", "", ""},
		{"id,displayName", "displayName eq 'Group 1'", "5", "members", "true", ""},
		{"members", "startswith(uniqueName,'usersync.')", "999", "members($select=id)", "false", "bzo6NQ"},
		{"", "userPrincipalName eq 'a''b@x'", "0", "", "", "!!"},
		{",,", "uniqueName eq ''", "-1", "owners", "TRUE", "o:99999"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4], seed[5])
	}
	var logs bytes.Buffer
	tenant := Generate(3, 12, 2)
	s := NewServer(tenant, Options{ClientID: "c", ClientSecret: "s", Log: slog.New(slog.NewTextHandler(&logs, nil))})
	tok := token(f, s, tenant)
	var group, user string
	for id := range tenant.groups {
		group = id
		break
	}
	for id := range tenant.users {
		user = id
		break
	}
	paths := []string{"/v1.0/users", "/v1.0/groups", "/v1.0/users/" + user, "/v1.0/groups/" + group,
		"/v1.0/groups/" + group + "/members", "/v1.0/groups/" + group + "/transitiveMembers/microsoft.graph.user",
		"/v1.0/groups/" + group + "/members/$count", "/v1.0/users/delta", "/v1.0/groups/delta", "/v1.0/users/$count"}
	f.Fuzz(func(t *testing.T, sel, filter, top, expand, count, skip string) {
		q := url.Values{}
		for k, v := range map[string]string{"$select": sel, "$filter": filter, "$top": top, "$expand": expand, "$count": count, "$skiptoken": skip} {
			if v != "" {
				q.Set(k, v)
			}
		}
		for _, p := range paths {
			req := httptest.NewRequest("GET", p+"?"+q.Encode(), nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("ConsistencyLevel", "eventual")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("GET %s?%s: %d %s\n%s", p, q.Encode(), rec.Code, rec.Body, logs.String())
			}
		}
	})
}

// token gets an access token from s in process.
func token(t testing.TB, s *Server, tenant *Tenant) string {
	req := httptest.NewRequest("POST", "/"+tenant.ID+"/oauth2/v2.0/token", strings.NewReader(url.Values{"client_id": {"c"}, "client_secret": {"s"},
		"grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	b := rec.Body.String()
	if !strings.Contains(b, `"access_token":"`) {
		t.Fatalf("token: %d %s", rec.Code, b)
	}
	return strings.Split(strings.Split(b, `"access_token":"`)[1], `"`)[0]
}
