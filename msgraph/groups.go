package msgraph

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/usersync/usersync"
)

// MaxPage is the largest $top Graph allows for groups, users and members.
const MaxPage = 999

// Group is an Entra group.
type Group struct {
	ID           string `json:"id"`
	DisplayName  string `json:"displayName"`
	Description  string `json:"description"`
	MailNickname string `json:"mailNickname,omitempty"`
}

// User is an Entra user with the properties that were selected.
type User map[string]any

// ID returns the user's object id.
func (u User) ID() string { return u.String("id") }

// String returns a property as a string ("" when absent or null).
func (u User) String(prop string) string {
	switch v := u[prop].(type) {
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// FindGroup returns the group with this object id or display name. Display
// names are not unique in Entra: a name shared by several groups is an
// ECONFLICT error that lists their ids, so the caller can pass one of them.
func (c *Client) FindGroup(ctx context.Context, nameOrID string) (Group, error) {
	const perm = "Group.Read.All"
	if guidRE.MatchString(nameOrID) {
		var g Group
		err := c.get(ctx, "/v1.0/groups/"+url.PathEscape(nameOrID)+"?$select=id,displayName,description", fmt.Sprintf("group %s", nameOrID), perm, &g)
		return g, err
	}
	q := url.Values{"$filter": {"displayName eq '" + strings.ReplaceAll(nameOrID, "'", "''") + "'"}, "$select": {"id,displayName,description"}}
	var res struct {
		Value []Group `json:"value"`
	}
	if err := c.get(ctx, "/v1.0/groups?"+q.Encode(), fmt.Sprintf("find group %q", nameOrID), perm, &res); err != nil {
		return Group{}, err
	}
	switch len(res.Value) {
	case 0:
		return Group{}, usersync.Errorf(usersync.ENOTFOUND, "group %q not found in tenant %q", nameOrID, c.cfg.Tenant)
	case 1:
		return res.Value[0], nil
	}
	ids := make([]string, len(res.Value))
	for i, g := range res.Value {
		ids[i] = g.ID
	}
	return Group{}, usersync.Errorf(usersync.ECONFLICT, "%d groups in tenant %q are named %q (Entra does not keep names unique); name one by its object id: %s",
		len(ids), c.cfg.Tenant, nameOrID, strings.Join(ids, ", "))
}

// Members streams the users of a group, nested groups flattened, page by
// page, asking only for props. fn is called once per page, in order.
func (c *Client) Members(ctx context.Context, groupID string, props []string, fn func(page []User) error) error {
	sel := append([]string{"id"}, props...)
	q := url.Values{"$select": {strings.Join(dedupe(sel), ",")}, "$top": {fmt.Sprint(MaxPage)}}
	next := "/v1.0/groups/" + url.PathEscape(groupID) + "/transitiveMembers/microsoft.graph.user?" + q.Encode()
	for next != "" {
		var res struct {
			Value    []User `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := c.get(ctx, next, fmt.Sprintf("members of group %s", groupID), "GroupMember.Read.All and User.Read.All", &res); err != nil {
			return err
		}
		if err := fn(res.Value); err != nil {
			return err
		}
		next = res.NextLink
	}
	return nil
}

// FindUser returns one user by object id or userPrincipalName.
func (c *Client) FindUser(ctx context.Context, idOrUPN string, props []string) (User, error) {
	var u User
	q := url.Values{"$select": {strings.Join(dedupe(append([]string{"id"}, props...)), ",")}}
	err := c.get(ctx, "/v1.0/users/"+url.PathEscape(idOrUPN)+"?"+q.Encode(), fmt.Sprintf("user %q", idOrUPN), "User.Read.All", &u)
	return u, err
}

// Select joins properties into a $select value: "id" first, each once.
func Select(props ...string) string {
	return strings.Join(dedupe(append([]string{"id"}, props...)), ",")
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
