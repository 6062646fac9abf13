package graph

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// emu serves a tenant and returns a function that sends an authenticated
// GET with extra headers and returns status, headers and the raw body.
func emu(t *testing.T, tenant *Tenant) (*httptest.Server, func(path string, headers ...string) (int, http.Header, string)) {
	t.Helper()
	srv := httptest.NewServer(NewServer(tenant, Options{ClientID: "c", ClientSecret: "s"}))
	t.Cleanup(srv.Close)
	resp, err := http.PostForm(srv.URL+"/"+tenant.ID+"/oauth2/v2.0/token", url.Values{"client_id": {"c"}, "client_secret": {"s"},
		"grant_type": {"client_credentials"}, "scope": {srv.URL + "/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token := regexp.MustCompile(`"access_token":"([^"]+)"`).FindStringSubmatch(string(b))[1]
	return srv, func(path string, headers ...string) (int, http.Header, string) {
		t.Helper()
		target := path
		if !strings.HasPrefix(path, "http") {
			target = srv.URL + path
		}
		req, _ := http.NewRequest("GET", target, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// A delta round with no changes answers "value": [] (the Graph SDK's page
// iterator fails on null).
func TestQuietDeltaRoundIsEmptyArray(t *testing.T) {
	tenant := Generate(3, 10, 2)
	_, get := emu(t, tenant)
	for _, kind := range []string{"users", "groups"} {
		_, _, body := get("/v1.0/" + kind + "/delta?$deltatoken=latest")
		link := regexp.MustCompile(`"@odata.deltaLink":"([^"]+)"`).FindStringSubmatch(body)[1]
		link = strings.ReplaceAll(link, `\u0026`, "&")
		code, _, quiet := get(link)
		if code != 200 || !strings.Contains(quiet, `"value":[]`) {
			t.Fatalf("%s quiet round: %d %s", kind, code, quiet)
		}
	}
}

// $count as a segment and as a parameter follow the advanced-query rules
// (wire facts §3): they need ConsistencyLevel: eventual.
func TestCounts(t *testing.T) {
	tenant := Generate(4, 30, 2)
	_, get := emu(t, tenant)
	if code, _, body := get("/v1.0/users/$count"); code != 400 || !strings.Contains(body, "$count is not currently supported.") {
		t.Fatalf("/users/$count without the header: %d %s", code, body)
	}
	if code, _, body := get("/v1.0/users/$count", "ConsistencyLevel", "eventual"); code != 200 || body != "30" {
		t.Fatalf("/users/$count: %d %q", code, body)
	}
	if _, _, body := get("/v1.0/users?$count=true&$top=5", "ConsistencyLevel", "eventual"); !strings.Contains(body, `"@odata.count":30`) {
		t.Fatalf("$count=true: %s", body)
	}
	if _, _, body := get("/v1.0/users?$count=true&$top=5"); strings.Contains(body, "@odata.count") {
		t.Fatalf("$count=true without the header is ignored: %s", body)
	}
}

// Every answer carries request-id and client-request-id (the client's own
// echoed); error bodies repeat them as GUIDs.
func TestRequestIDs(t *testing.T) {
	_, get := emu(t, Generate(5, 3, 1))
	_, h, _ := get("/v1.0/users", "client-request-id", "5f1e0c9a-0000-4000-8000-00000000c11e")
	if !guidRE.MatchString(h.Get("request-id")) || h.Get("client-request-id") != "5f1e0c9a-0000-4000-8000-00000000c11e" {
		t.Fatalf("headers: %v", h)
	}
	code, h, body := get("/v1.0/groups/no-such-group")
	ids := regexp.MustCompile(`"request-id":"([^"]+)"`).FindStringSubmatch(body)
	if code != 404 || ids == nil || ids[1] != h.Get("request-id") || !guidRE.MatchString(ids[1]) || strings.Contains(body, `"emu"`) {
		t.Fatalf("error body: %d %s (header %s)", code, body, h.Get("request-id"))
	}
}

// Delta tokens are not valid across emulator processes or tenants: a
// restarted emulator (its journal starts again) answers 410.
func TestDeltaTokensBoundToProcess(t *testing.T) {
	_, get := emu(t, Generate(6, 10, 2))
	_, _, body := get("/v1.0/users/delta?$deltatoken=latest")
	link := strings.ReplaceAll(regexp.MustCompile(`"@odata.deltaLink":"([^"]+)"`).FindStringSubmatch(body)[1], `\u0026`, "&")
	if code, _, _ := get(link); code != 200 {
		t.Fatalf("same process: %d", code)
	}
	u, _ := url.Parse(link)
	other, get2 := emu(t, Generate(6, 10, 2)) // the same tenant, another process
	if code, _, body := get2(other.URL + u.Path + "?" + u.RawQuery); code != 410 || !strings.Contains(body, "syncStateNotFound") {
		t.Fatalf("another process: %d %s", code, body)
	}
}

// An unknown $select property is refused with 400, as Graph does, naming it.
func TestUnknownSelectRefused(t *testing.T) {
	tenant := Generate(7, 10, 2)
	_, get := emu(t, tenant)
	g := tenant.GroupsNamed("All Users")[0]
	for _, path := range []string{"/v1.0/users?$select=id,userPrincipleName", "/v1.0/groups/" + g.ID + "/transitiveMembers/microsoft.graph.user?$select=mial",
		"/v1.0/users/delta?$select=logn", "/v1.0/users/" + g.Members[0] + "?$select=surnam"} {
		if code, _, body := get(path); code != 400 || !strings.Contains(body, "Could not find a property named '") {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	if code, _, _ := get("/v1.0/users?$select=id,department,companyName,extension_abc_x"); code != 200 {
		t.Fatalf("known properties: %d", code)
	}
}

// Behind a TLS-terminating proxy, links are https (X-Forwarded-Proto).
func TestForwardedProto(t *testing.T) {
	_, get := emu(t, Generate(8, 150, 1))
	if _, _, body := get("/v1.0/users?$top=10", "X-Forwarded-Proto", "https"); !strings.Contains(body, `"@odata.nextLink":"https://`) {
		t.Fatalf("nextLink: %.300s", body)
	}
}
