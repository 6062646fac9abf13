package graph

import (
	"net/http/httptest"
	"testing"

	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/msgraph"
)

const secret = "emu-secret-value-123"

// start serves tenant on loopback and returns the client configuration for it.
func start(t testing.TB, tenant *graphemu.Tenant, o graphemu.Options) (*graphemu.Server, msgraph.Config) {
	t.Helper()
	o.ClientID, o.ClientSecret = "app-1", secret
	emu := graphemu.NewServer(tenant, o)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return emu, msgraph.Config{AuthorityURL: srv.URL, GraphURL: srv.URL, Tenant: tenant.ID, ClientID: "app-1", ClientSecret: secret}
}

func newClient(t testing.TB, cfg msgraph.Config) *msgraph.Client {
	t.Helper()
	c, err := msgraph.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
