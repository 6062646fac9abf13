package msgraph

import (
	"context"
	"strings"
	"testing"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
)

// A tenant is known by its id however it is typed: its id in any case, or
// a verified domain resolved through the identity platform's discovery
// document (no sign-in). An unknown domain is ENOTFOUND, named.
func TestResolveTenant(t *testing.T) {
	tenant := graphemu.NewTenant("0e8f5c2a-1111-4222-8333-444455556666")
	emu, cfg := start(t, tenant, graphemu.Options{})
	cfg.Tenant = "contoso.example"
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if id, err := c.TenantID(ctx); err != nil || id != tenant.ID {
		t.Fatalf("TenantID by domain: %q %v", id, err)
	}
	if id, err := c.ResolveTenant(ctx, strings.ToUpper(tenant.ID)); err != nil || id != tenant.ID {
		t.Fatalf("an id in capitals: %q %v", id, err)
	}
	if n := emu.Requests()["openid-configuration"]; n != 1 {
		t.Fatalf("%d discovery requests, want 1 (an id needs none)", n)
	}
	_, err = c.ResolveTenant(ctx, "fabrikam.example")
	if usersync.ErrorCode(err) != usersync.ENOTFOUND || !strings.Contains(err.Error(), `tenant "fabrikam.example" is unknown`) || !strings.Contains(err.Error(), "AADSTS90002") {
		t.Fatalf("an unknown domain: %v", err)
	}
}
