package graph

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// BenchmarkMembersPage is the emulator's own cost of one page of 999
// members with the properties a pull selects, without the network: in
// benchmarks the emulator shares the machine with the sync it serves.
//
// Run: go test ./emulate/graph -run '^$' -bench MembersPage
func BenchmarkMembersPage(b *testing.B) {
	tenant := Generate(5, 5000, 1)
	g := tenant.GroupsNamed("All Users")[0]
	s := NewServer(tenant, Options{ClientID: "c", ClientSecret: "s"})
	form := url.Values{"client_id": {"c"}, "client_secret": {"s"}, "grant_type": {"client_credentials"}, "scope": {"https://graph.microsoft.com/.default"}}
	req := httptest.NewRequest(http.MethodPost, "/"+tenant.ID+"/oauth2/v2.0/token", nil)
	req.PostForm = form
	tok := httptest.NewRecorder()
	s.ServeHTTP(tok, req)
	var token string
	for t := range s.tokens { // the one just issued
		token = t
	}
	if token == "" {
		b.Fatalf("no token: %d %s", tok.Code, tok.Body)
	}
	target := "/v1.0/groups/" + g.ID + "/transitiveMembers/microsoft.graph.user?$select=id,userPrincipalName,givenName,surname,mail,accountEnabled,department,jobTitle&$top=999"
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		s.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
		bytes = w.Body.Len()
	}
	b.SetBytes(int64(bytes))
}
