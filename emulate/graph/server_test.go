package graph

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func getJSON(t *testing.T, srv *httptest.Server, token, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestWireDetails(t *testing.T) {
	tenant := Generate(9, 50, 2)
	srv := httptest.NewServer(NewServer(tenant, Options{ClientID: "c", ClientSecret: "s"}))
	defer srv.Close()
	resp, err := http.PostForm(srv.URL+"/"+tenant.ID+"/oauth2/v2.0/token", url.Values{"client_id": {"c"}, "client_secret": {"s"},
		"grant_type": {"client_credentials"}, "scope": {srv.URL + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" || tok.ExpiresIn != 3599 || tok.TokenType != "Bearer" {
		t.Fatalf("token answer %+v", tok)
	}
	if code, body := getJSON(t, srv, "", "/v1.0/groups"); code != 401 || body["error"].(map[string]any)["code"] != "InvalidAuthenticationToken" {
		t.Fatalf("no bearer: %d %v", code, body)
	}
	if code, body := getJSON(t, srv, tok.AccessToken, "/v1.0/users?$top=1000"); code != 400 || !strings.Contains(body["error"].(map[string]any)["message"].(string), "between 1 and 999") {
		t.Fatalf("$top=1000: %d %v", code, body)
	}
	code, body := getJSON(t, srv, tok.AccessToken, "/v1.0/users?$top=20")
	if code != 200 || len(body["value"].([]any)) != 20 || body["@odata.nextLink"] == nil {
		t.Fatalf("users page: %d %v", code, body)
	}
	u := body["value"].([]any)[0].(map[string]any)
	if _, ok := u["accountEnabled"]; ok {
		t.Fatal("accountEnabled returned without $select")
	}
	if _, ok := u["userPrincipalName"]; !ok {
		t.Fatal("default properties missing")
	}
	next, _ := url.Parse(body["@odata.nextLink"].(string))
	code, body = getJSON(t, srv, tok.AccessToken, next.RequestURI())
	if code != 200 || len(body["value"].([]any)) != 20 {
		t.Fatalf("next page: %d", code)
	}
	if code, _ := getJSON(t, srv, tok.AccessToken, "/v1.0/groups?$filter=endswith(displayName,'A')"); code != 400 {
		t.Fatalf("unsupported filter: %d", code)
	}
}

func FuzzEqFilter(f *testing.F) {
	for _, s := range []string{"displayName eq 'Sales'", "displayName eq 'O''Brien'", "displayName eq 'a'b'", "displayName eq '", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		v, ok, err := eqFilter(filter, "displayName")
		if err != nil || !ok {
			return
		}
		// What parsed must round-trip through the quoting a client does.
		again, ok, err := eqFilter("displayName eq '"+strings.ReplaceAll(v, "'", "''")+"'", "displayName")
		if err != nil || !ok || again != v {
			t.Fatalf("%q → %q → %q %v", filter, v, again, err)
		}
	})
}

// The emulator writes its pages by hand (appendValue): what a client
// decodes must be what encoding/json's encoding of the same objects
// decodes to, for every kind of value the emulator's objects hold.
func TestAppendValueMatchesEncodingJSON(t *testing.T) {
	items := []any{
		map[string]any{"@odata.type": "#microsoft.graph.user", "id": "1", "displayName": `Zoë "Z" <admin> & co`, "mail": nil, "accountEnabled": false,
			"assignedLicenses": []map[string]any{{"skuId": "s", "disabledPlans": []string{}}}, "businessPhones": []string{"+1 555\t0100"}},
		map[string]any{"groupTypes": []string(nil), "count": 7, "nested": map[string]any{"b": true, "a": []any{1.5, "x"}}},
		"line\u2028sep\x01", nil, true, 42, (*string)(nil), &[]string{"set"}[0],
	}
	for _, v := range items {
		got := appendValue(nil, v)
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%v encoded as %s: not JSON: %v", v, got, err)
		}
		json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%v: decodes to %v, encoding/json's to %v", v, g, w)
		}
	}
}

// A page's users are written from the user (userObject), not from a map
// per user: the same JSON as userJSON's map, with and without $select.
func TestUserObjectMatchesUserJSON(t *testing.T) {
	tenant := Generate(3, 40, 1)
	sels := []map[string]bool{nil,
		{"id": true, "mail": true, "accountEnabled": true, "assignedLicenses": true, "department": true, "extension_abc_costCenter": true, "city": true},
		{"userPrincipalName": true}}
	if len(tenant.users) == 0 {
		t.Fatal("no users")
	}
	for _, u := range tenant.users {
		for _, sel := range sels {
			var g, w any
			if err := json.Unmarshal(appendValue(nil, userObject{u, userPropsOf(sel)}), &g); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(userJSON(u, sel))
			json.Unmarshal(want, &w)
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("user %s, $select %v: %v, want %v", u.ID, sel, g, w)
			}
		}
	}
}
