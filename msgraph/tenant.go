package msgraph

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/usersync/usersync"
)

var tenantIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsTenantID says whether s is a tenant id (a GUID) rather than a domain.
func IsTenantID(s string) bool { return tenantIDPattern.MatchString(s) }

// TenantID returns the id of the tenant the client signs in to: the
// tenant as configured when that is its id, else the id the identity
// platform names for the domain (resolved once).
func (c *Client) TenantID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.tenantID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	id, err := c.ResolveTenant(ctx, c.cfg.Tenant)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.tenantID = id
	c.mu.Unlock()
	return id, nil
}

// ResolveTenant returns the id of a tenant named by its id or by one of
// its verified domains, from the OpenID Connect discovery document that
// the identity platform publishes for each tenant (no sign-in needed):
// its issuer is "<authority>/<tenant id>/v2.0". A name no tenant has is
// ENOTFOUND.
func (c *Client) ResolveTenant(ctx context.Context, tenant string) (string, error) {
	if IsTenantID(tenant) {
		return strings.ToLower(tenant), nil
	}
	what := "look up the id of tenant " + tenant
	target := c.cfg.AuthorityURL + "/" + url.PathEscape(tenant) + "/v2.0/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", usersync.Errorf(usersync.EINVALID, "%s: %v", what, err)
	}
	resp, err := c.send(ctx, req, what, c.cfg.AuthorityURL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var doc struct {
		Issuer string `json:"issuer"`
		Error  string `json:"error"`
		Desc   string `json:"error_description"`
	}
	json.Unmarshal(body, &doc)
	switch {
	case resp.StatusCode == http.StatusBadRequest && doc.Error != "":
		return "", usersync.Errorf(usersync.ENOTFOUND, "tenant %q is unknown to the Microsoft identity platform: %s", tenant, firstSentence(doc.Error, doc.Desc))
	case resp.StatusCode != http.StatusOK:
		return "", &Unreachable{usersync.Errorf(usersync.EUNAVAILABLE, "%s: the server at %s answered %s%s; check --authority-url", what, c.cfg.AuthorityURL, resp.Status, contentType(resp))}
	}
	// The issuer's path is /<tenant id>/v2.0 (a GUID in Entra; an
	// emulated tenant may have another id).
	if u, err := url.Parse(doc.Issuer); err == nil {
		if parts := strings.Split(strings.Trim(u.Path, "/"), "/"); len(parts) == 2 && parts[0] != "" && parts[1] == "v2.0" {
			if IsTenantID(parts[0]) {
				return strings.ToLower(parts[0]), nil
			}
			return parts[0], nil
		}
	}
	return "", &Unreachable{usersync.Errorf(usersync.EUNAVAILABLE, "%s: the discovery document at %s names no tenant id in its issuer (%q); check --authority-url", what, c.cfg.AuthorityURL, doc.Issuer)}
}

// CanRead checks with one small request each that the application may
// read groups and users, as a pull does.
func (c *Client) CanRead(ctx context.Context) error {
	var res struct {
		Value []Group `json:"value"`
	}
	if err := c.get(ctx, "/v1.0/groups?$top=1&$select=id", "read groups", "Group.Read.All", &res); err != nil {
		return err
	}
	var users struct {
		Value []User `json:"value"`
	}
	return c.get(ctx, "/v1.0/users?$top=1&$select=id", "read users", "User.Read.All", &users)
}
