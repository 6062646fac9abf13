package msgraph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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
	UniqueName   string `json:"uniqueName,omitempty"`
}

// User is an Entra user with the properties that were selected.
type User map[string]any

// ID returns the user's object id.
func (u User) ID() string { return u.String("id") }

// Bool returns a boolean property (false when absent or null).
func (u User) Bool(prop string) bool { v, _ := u[prop].(bool); return v }

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
	first := "/v1.0/groups/" + url.PathEscape(groupID) + "/transitiveMembers/microsoft.graph.user?" + q.Encode()
	what := fmt.Sprintf("members of group %s", groupID)
	return c.pages(ctx, first, what, "GroupMember.Read.All and User.Read.All", fn)
}

type userPage struct {
	Value    []User `json:"value"`
	NextLink string `json:"@odata.nextLink"`
}

// pages follows @odata.nextLink from first, handing each page to fn in
// order. The next page is asked for as soon as this one's link is read,
// before this one is decoded and while fn works on it, so that decoding
// and fn hide behind Graph's latency instead of adding to it.
func (c *Client) pages(ctx context.Context, first, what, perm string, fn func([]User) error) error {
	type fetched struct {
		body []byte
		err  error
	}
	type inFlight struct {
		ch     chan fetched
		cancel context.CancelFunc
	}
	fetch := func(link string) *inFlight {
		fctx, cancel := context.WithCancel(ctx)
		f := &inFlight{ch: make(chan fetched, 1), cancel: cancel}
		go func() {
			var r fetched
			r.err = c.do(fctx, call{method: http.MethodGet, target: link, what: what, perm: perm}, &r.body)
			f.ch <- r
		}()
		return f
	}
	stop := func(f *inFlight) {
		if f != nil {
			f.cancel()
			<-f.ch
		}
	}
	pending := fetch(first)
	for pending != nil {
		r := <-pending.ch
		pending.cancel()
		if r.err != nil {
			return r.err
		}
		pending = nil
		guess := peekNextLink(r.body)
		if guess != "" {
			pending = fetch(guess)
		}
		var page userPage
		if err := json.Unmarshal(r.body, &page); err != nil {
			stop(pending)
			return c.notGraphPage(what, err)
		}
		if page.NextLink != guess { // not with Graph's pages; kept exact all the same
			stop(pending)
			pending = nil
			if page.NextLink != "" {
				pending = fetch(page.NextLink)
			}
		}
		if err := fn(page.Value); err != nil {
			stop(pending)
			return err
		}
	}
	return nil
}

func (c *Client) notGraphPage(what string, err error) error {
	return &Unreachable{usersync.Errorf(usersync.EUNAVAILABLE, "%s: the server at %s does not answer like Microsoft Graph (a page does not decode: %v); check --graph-url", what, c.cfg.GraphURL, err)}
}

// peekNextLink finds a page's @odata.nextLink without decoding the page.
func peekNextLink(body []byte) string {
	key := []byte(`"@odata.nextLink"`)
	i := bytes.Index(body, key)
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(body[i+len(key):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return ""
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	dec := json.NewDecoder(bytes.NewReader(rest))
	var link string
	if dec.Decode(&link) != nil {
		return ""
	}
	return link
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

// GroupNamesStarting lists the display names of up to 999 groups whose
// name starts with prefix (ignoring case), to suggest a name for one not
// found.
func (c *Client) GroupNamesStarting(ctx context.Context, prefix string) ([]string, error) {
	q := url.Values{"$filter": {"startswith(displayName,'" + strings.ReplaceAll(prefix, "'", "''") + "')"}, "$select": {"displayName"}, "$top": {"999"}}
	var res struct {
		Value []Group `json:"value"`
	}
	if err := c.get(ctx, "/v1.0/groups?"+q.Encode(), fmt.Sprintf("list groups starting %q", prefix), "Group.Read.All", &res); err != nil {
		return nil, err
	}
	out := make([]string, len(res.Value))
	for i, g := range res.Value {
		out[i] = g.DisplayName
	}
	return out, nil
}
