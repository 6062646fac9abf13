package msgraph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/usersync/usersync"
)

// MemberCount returns how many users a group holds, nested groups
// flattened. $count is an advanced query: it needs ConsistencyLevel:
// eventual, and the figure may lag recent changes by a little.
func (c *Client) MemberCount(ctx context.Context, groupID string) (int, error) {
	var n int
	err := c.do(ctx, call{method: http.MethodGet, target: "/v1.0/groups/" + url.PathEscape(groupID) + "/transitiveMembers/microsoft.graph.user/$count",
		header: http.Header{"ConsistencyLevel": {"eventual"}}, what: fmt.Sprintf("count members of group %s", groupID), perm: "GroupMember.Read.All"}, &n)
	return n, err
}

// HasNestedGroups reports whether a group has groups among its direct members.
func (c *Client) HasNestedGroups(ctx context.Context, groupID string) (bool, error) {
	var res struct {
		Value []struct{} `json:"value"`
	}
	err := c.get(ctx, "/v1.0/groups/"+url.PathEscape(groupID)+"/members/microsoft.graph.group?$select=id&$top=1",
		fmt.Sprintf("nested groups of group %s", groupID), "GroupMember.Read.All", &res)
	return len(res.Value) > 0, err
}

// LatestDelta returns a delta link that starts now, without reading any
// data ($deltatoken=latest). kind is "users" or "groups"; q holds $select
// and, for groups, the id $filter, which the link keeps.
func (c *Client) LatestDelta(ctx context.Context, kind string, q url.Values) (string, error) {
	q = cloneValues(q)
	q.Set("$deltatoken", "latest")
	var res struct {
		DeltaLink string `json:"@odata.deltaLink"`
	}
	if err := c.get(ctx, "/v1.0/"+kind+"/delta?"+q.Encode(), "start tracking "+kind+" changes", deltaPerm(kind), &res); err != nil {
		return "", err
	}
	if res.DeltaLink == "" {
		return "", usersync.Errorf(usersync.EUNAVAILABLE, "start tracking %s changes: Graph answered without @odata.deltaLink", kind)
	}
	return res.DeltaLink, nil
}

func deltaPerm(kind string) string {
	if kind == "groups" {
		return "GroupMember.Read.All"
	}
	return "User.Read.All"
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// Delta follows a delta link to the end of its round, calling fn for each
// item, and returns the next round's delta link. An expired link is
// ErrSyncStateExpired.
func (c *Client) Delta(ctx context.Context, link string, fn func(item map[string]any) error) (string, error) {
	kind := "users"
	if strings.Contains(link, "/groups/delta") {
		kind = "groups"
	}
	for {
		// Links come from storage and from answers: follow only those
		// under the configured Graph URL, which gets the access token.
		if !strings.HasPrefix(link, c.cfg.GraphURL+"/") {
			return "", ErrForeignLink
		}
		var res struct {
			Value     []map[string]any `json:"value"`
			NextLink  string           `json:"@odata.nextLink"`
			DeltaLink string           `json:"@odata.deltaLink"`
		}
		if err := c.get(ctx, link, "read "+kind+" changes", deltaPerm(kind), &res); err != nil {
			return "", err
		}
		for _, it := range res.Value {
			if err := fn(it); err != nil {
				return "", err
			}
		}
		switch {
		case res.NextLink != "":
			link = res.NextLink
		case res.DeltaLink != "":
			return res.DeltaLink, nil
		default:
			return "", usersync.Errorf(usersync.EUNAVAILABLE, "read %s changes: a delta page has neither @odata.nextLink nor @odata.deltaLink", kind)
		}
	}
}

// UsersByID fetches users by object id with JSON batching, twenty to a
// request. Users that no longer exist are left out. Inner requests that
// were throttled or failed are sent again after their Retry-After.
func (c *Client) UsersByID(ctx context.Context, ids []string, props []string) ([]User, error) {
	sel := url.Values{"$select": {strings.Join(dedupe(append([]string{"id"}, props...)), ",")}}.Encode()
	var out []User
	err := c.batchEach(ctx, ids, batchCall{what: "read users by id", perm: "User.Read.All", method: http.MethodGet,
		url: func(id string) string { return "/users/" + url.PathEscape(id) + "?" + sel },
		answer: func(id string, status int, body json.RawMessage) error {
			switch status {
			case http.StatusOK:
				var u User
				if err := json.Unmarshal(body, &u); err != nil {
					return usersync.Errorf(usersync.EUNAVAILABLE, "read user %s: %v", id, err)
				}
				out = append(out, u)
			case http.StatusNotFound: // deleted meanwhile
			case http.StatusForbidden:
				return usersync.Errorf(usersync.EFORBIDDEN, "read user %s: the application lacks a Graph permission (it needs User.Read.All, granted with admin consent)", id)
			default:
				return innerError(status, body, "read user "+id)
			}
			return nil
		}})
	return out, err
}
