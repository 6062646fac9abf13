package okta

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/usersync/usersync"
)

// OrgID returns the id of the Okta org at base (a scheme://host URL; this
// client's org when base is ""), from the org's public well-known document
// /.well-known/okta-organization. No token is sent: base may be another
// org's. A server without the document is ENOTFOUND.
func (c *Client) OrgID(ctx context.Context, base string) (string, error) {
	if base == "" {
		base = c.base
	}
	base = strings.TrimRight(base, "/")
	what := "read the org's id at " + base
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/.well-known/okta-organization", nil)
	if err != nil {
		return "", usersync.Errorf(usersync.EINVALID, "%s: %v", what, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", usersync.Errorf(usersync.EUNAVAILABLE, "%s: %v", what, err)
	}
	defer resp.Body.Close()
	var doc struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", usersync.Errorf(usersync.ENOTFOUND, "%s: the server has no /.well-known/okta-organization", what)
	case resp.StatusCode != http.StatusOK || err != nil || doc.ID == "":
		return "", usersync.Errorf(usersync.EUNAVAILABLE, "%s: the server answered %s without an org id; check --okta-host", what, resp.Status)
	}
	return doc.ID, nil
}

// Users reads users by id, one request each; ids Okta no longer has are
// left out.
func (c *Client) Users(ctx context.Context, ids []string) ([]User, error) {
	var out []User
	for _, id := range ids {
		var u User
		_, err := c.get(ctx, "/api/v1/users/"+url.PathEscape(id), "read user "+id, &u)
		switch {
		case usersync.ErrorCode(err) == usersync.ENOTFOUND:
		case err != nil:
			return out, err
		default:
			out = append(out, u)
		}
	}
	return out, nil
}

// GroupNamesStarting lists the names of up to 200 groups whose name starts
// with prefix, to suggest a name for one not found.
func (c *Client) GroupNamesStarting(ctx context.Context, prefix string) ([]string, error) {
	var groups []Group
	q := url.Values{"q": {prefix}, "limit": {"200"}}
	if _, err := c.get(ctx, "/api/v1/groups?"+q.Encode(), fmt.Sprintf("list groups starting %q", prefix), &groups); err != nil {
		return nil, err
	}
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = g.Profile.Name
	}
	return out, nil
}

// CanRead checks with one small request each that the token may read
// groups and the user profile's schema, as a pull does.
func (c *Client) CanRead(ctx context.Context) error {
	var groups []Group
	if _, err := c.get(ctx, "/api/v1/groups?limit=1", "read groups", &groups); err != nil {
		return err
	}
	_, err := c.ProfileAttributes(ctx)
	return err
}
