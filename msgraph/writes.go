// Writes: groups and their members, as an outbound provisioner needs them
// (wire facts §5, §8). Every write is paced under the write quota and sent
// at low priority; what Graph treats as already done ("already exist" on
// an add, 404 on a removal) is success.

package msgraph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/netfail"
)

// MaxBind is the most members one request may bind (members@odata.bind).
const MaxBind = 20

// GroupSpec is what a provisioner writes of a group.
type GroupSpec struct {
	DisplayName  string
	MailNickname string
	Description  string
	Unified      bool   // a Microsoft 365 group; else a security group
	Visibility   string // Unified groups: Public, Private or HiddenMembership
}

// memberRef is the reference a bind or $ref takes.
func memberRef(id string) string { return DefaultGraphURL + "/v1.0/directoryObjects/" + id }

// groupBody is the JSON of a group to create, with up to MaxBind members
// bound at creation.
func groupBody(g GroupSpec, members []string) []byte {
	if len(members) > MaxBind {
		members = members[:MaxBind]
	}
	body := map[string]any{"displayName": g.DisplayName, "mailNickname": g.MailNickname, "mailEnabled": g.Unified,
		"securityEnabled": !g.Unified, "groupTypes": []string{}}
	if g.Unified {
		body["groupTypes"] = []string{"Unified"}
		if g.Visibility != "" {
			body["visibility"] = g.Visibility
		}
	}
	if g.Description != "" {
		body["description"] = g.Description
	}
	if len(members) > 0 {
		refs := make([]string, len(members))
		for i, m := range members {
			refs[i] = memberRef(m)
		}
		body["members@odata.bind"] = refs
	}
	b, _ := json.Marshal(body)
	return b
}

// CreateGroup creates a group with up to MaxBind members bound at creation.
func (c *Client) CreateGroup(ctx context.Context, g GroupSpec, members []string) (Group, error) {
	var out Group
	err := c.do(ctx, call{method: http.MethodPost, target: "/v1.0/groups", body: groupBody(g, members), write: true, once: true,
		what: fmt.Sprintf("create group %q", g.DisplayName), perm: "Group.ReadWrite.All"}, &out)
	if err == nil {
		c.noteCreated(out.ID)
	}
	return out, err
}

// byUniqueName is the path of the group whose alternate key is key.
func byUniqueName(key string) string {
	return "/v1.0/groups(uniqueName='" + url.PathEscape(strings.ReplaceAll(key, "'", "''")) + "')"
}

// UpsertGroup creates the group whose uniqueName is key, with up to MaxBind
// members bound, or — when a group has that key already (an earlier run
// made it, and was killed before it kept the id) — updates that one
// (Graph's upsert: PATCH /groups(uniqueName='…') with Prefer:
// create-if-missing). created says which. A create that cannot have been
// done twice is safe to send again, so unlike CreateGroup it is retried
// after a 5xx.
func (c *Client) UpsertGroup(ctx context.Context, key string, g GroupSpec, members []string) (out Group, created bool, err error) {
	what := fmt.Sprintf("create or update group %q (uniqueName %s)", g.DisplayName, key)
	send := func(members []string) error {
		var raw []byte
		err := c.do(ctx, call{method: http.MethodPatch, target: byUniqueName(key), body: groupBody(g, members), write: true,
			header: http.Header{"Prefer": {"create-if-missing"}}, what: what, perm: "Group.ReadWrite.All"}, &raw)
		if err == nil && len(raw) > 0 { // 201 Created with the group; 204: it existed and was updated
			created = true
			err = json.Unmarshal(raw, &out)
		}
		return err
	}
	err = send(members)
	var ae *APIError
	if len(members) > 0 && errors.As(err, &ae) && ae.Status == http.StatusBadRequest && strings.Contains(ae.Message, "already exist") {
		err = send(nil) // it existed with some of these members: they are written afterwards
	}
	if err != nil {
		return Group{}, false, err
	}
	if created {
		c.noteCreated(out.ID)
		return out, true, nil
	}
	out, err = c.GroupByUniqueName(ctx, key)
	if err == nil {
		c.noteCreated(out.ID) // it may be moments old, and not on every replica yet
	}
	return out, false, err
}

// GroupByUniqueName reads the group whose uniqueName is key; an *APIError
// with status 404 when there is none. An alternate key is found at once,
// where a $filter query lags behind a create.
func (c *Client) GroupByUniqueName(ctx context.Context, key string) (Group, error) {
	var g Group
	err := c.do(ctx, call{method: http.MethodGet, target: byUniqueName(key) + "?$select=id,displayName,description,mailNickname,uniqueName", apiErrors: true,
		what: fmt.Sprintf("read group with uniqueName %s", key), perm: "Group.Read.All"}, &g)
	return g, err
}

// GroupsWithUniqueNamePrefix lists the groups whose uniqueName starts with
// prefix: what a provisioner made, found by its mark whether a link to them
// is kept or not.
func (c *Client) GroupsWithUniqueNamePrefix(ctx context.Context, prefix string) ([]Group, error) {
	q := url.Values{"$filter": {"startswith(uniqueName,'" + strings.ReplaceAll(prefix, "'", "''") + "')"}, "$select": {"id,displayName,description,mailNickname,uniqueName"},
		"$top": {strconv.Itoa(MaxPage)}}
	var out []Group
	next := "/v1.0/groups?" + q.Encode()
	for next != "" {
		var res struct {
			Value    []Group `json:"value"`
			NextLink string  `json:"@odata.nextLink"`
		}
		if err := c.get(ctx, next, fmt.Sprintf("list groups with uniqueName %s…", prefix), "Group.Read.All", &res); err != nil {
			return nil, err
		}
		out = append(out, res.Value...)
		next = res.NextLink
	}
	return out, nil
}

// UpdateGroup changes a group's names and description.
func (c *Client) UpdateGroup(ctx context.Context, id string, g GroupSpec) error {
	body := map[string]any{"displayName": g.DisplayName, "description": g.Description}
	if g.MailNickname != "" {
		body["mailNickname"] = g.MailNickname
	}
	if g.Unified && g.Visibility != "" && !strings.EqualFold(g.Visibility, "HiddenMembership") {
		body["visibility"] = g.Visibility
	}
	b, _ := json.Marshal(body)
	return c.fresh(ctx, id, func() error {
		return c.do(ctx, call{method: http.MethodPatch, target: "/v1.0/groups/" + url.PathEscape(id), body: b, write: true,
			what: fmt.Sprintf("update group %s", id), perm: "Group.ReadWrite.All"}, nil)
	})
}

// DeleteGroup deletes a group; one that is gone already is no error.
func (c *Client) DeleteGroup(ctx context.Context, id string) error {
	err := c.do(ctx, call{method: http.MethodDelete, target: "/v1.0/groups/" + url.PathEscape(id), write: true,
		what: fmt.Sprintf("delete group %s", id), perm: "Group.ReadWrite.All"}, nil)
	if isStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// GroupByID reads a group's names; ENOTFOUND (an *APIError with status
// 404) when there is none.
func (c *Client) GroupByID(ctx context.Context, id string) (Group, error) {
	var g Group
	err := c.fresh(ctx, id, func() error {
		return c.do(ctx, call{method: http.MethodGet, target: "/v1.0/groups/" + url.PathEscape(id) + "?$select=id,displayName,description,mailNickname", apiErrors: true,
			what: fmt.Sprintf("read group %s", id), perm: "Group.Read.All"}, &g)
	})
	return g, err
}

// FindGroupsByMailNickname finds groups by their mailNickname (the anchor
// a provisioner looks for before it creates a group again).
func (c *Client) FindGroupsByMailNickname(ctx context.Context, nick string) ([]Group, error) {
	q := url.Values{"$filter": {"mailNickname eq '" + strings.ReplaceAll(nick, "'", "''") + "'"}, "$select": {"id,displayName,description,mailNickname"}}
	var res struct {
		Value []Group `json:"value"`
	}
	err := c.get(ctx, "/v1.0/groups?"+q.Encode(), fmt.Sprintf("find group with mailNickname %q", nick), "Group.Read.All", &res)
	return res.Value, err
}

// MemberIDs lists the object ids of a group's direct members.
func (c *Client) MemberIDs(ctx context.Context, groupID string) ([]string, error) {
	var out []string
	next := "/v1.0/groups/" + url.PathEscape(groupID) + "/members?$select=id&$top=" + strconv.Itoa(MaxPage)
	for next != "" {
		var res struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		target := next
		err := c.fresh(ctx, groupID, func() error {
			return c.do(ctx, call{method: http.MethodGet, target: target, apiErrors: true,
				what: fmt.Sprintf("members of group %s", groupID), perm: "GroupMember.Read.All"}, &res)
		})
		if err != nil {
			return nil, err
		}
		for _, m := range res.Value {
			out = append(out, m.ID)
		}
		next = res.NextLink
	}
	return out, nil
}

// ItemErrors are the members a membership write could not apply, by
// object id: the others were applied.
type ItemErrors map[string]error

// AddMembers adds members MaxBind at a time (members@odata.bind). A chunk
// refused because a member is one already is sent again without the
// members the group has (read once); one refused for another reason (a
// bad reference) is split to find the culprit. "Already exist" is success.
func (c *Client) AddMembers(ctx context.Context, groupID string, ids []string) (ItemErrors, error) {
	a := &adder{c: c, group: groupID, failed: ItemErrors{}}
	for start := 0; start < len(ids); start += MaxBind {
		if err := a.add(ctx, ids[start:min(start+MaxBind, len(ids))]); err != nil {
			return a.failed, err
		}
	}
	return a.failed, nil
}

type adder struct {
	c       *Client
	group   string
	failed  ItemErrors
	current map[string]bool // the group's members, once read
}

func (a *adder) add(ctx context.Context, ids []string) error {
	refs := make([]string, len(ids))
	for i, id := range ids {
		refs[i] = memberRef(id)
	}
	b, _ := json.Marshal(map[string]any{"members@odata.bind": refs})
	err := a.c.fresh(ctx, a.group, func() error {
		return a.c.do(ctx, call{method: http.MethodPatch, target: "/v1.0/groups/" + url.PathEscape(a.group), body: b, write: true,
			what: fmt.Sprintf("add %d members to group %s", len(ids), a.group), perm: "GroupMember.ReadWrite.All"}, nil)
	})
	var ae *APIError
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &ae):
		return err
	case len(ids) == 1 && alreadyMember(ae):
		return nil
	case len(ids) == 1:
		a.failed[ids[0]] = err
		return nil
	case alreadyMember(ae):
		// Some of the chunk are members already: read the group once, then
		// send only the others. When none is known as a member (it joined
		// since the read), split as for a bad reference.
		if a.current == nil {
			have, err := a.c.MemberIDs(ctx, a.group)
			if err != nil {
				return err
			}
			a.current = make(map[string]bool, len(have))
			for _, id := range have {
				a.current[id] = true
			}
		}
		var missing []string
		for _, id := range ids {
			if !a.current[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) < len(ids) {
			if len(missing) == 0 {
				return nil
			}
			return a.add(ctx, missing)
		}
	}
	half := len(ids) / 2
	if err := a.add(ctx, ids[:half]); err != nil {
		return err
	}
	return a.add(ctx, ids[half:])
}

// alreadyMember is Graph's answer to adding a member that is one already.
func alreadyMember(e *APIError) bool {
	return e.Status == http.StatusBadRequest && strings.Contains(e.Message, "already exist")
}

// RemoveMembers removes members in $batch requests of DELETE …/$ref, 20 to
// a request; a member that is not there (404) is removed already. Throttled
// inner requests are sent again after their Retry-After.
func (c *Client) RemoveMembers(ctx context.Context, groupID string, ids []string) (ItemErrors, error) {
	failed := ItemErrors{}
	err := c.batchEach(ctx, ids, batchCall{what: "remove members of group " + groupID, perm: "GroupMember.ReadWrite.All", method: http.MethodDelete, write: true,
		url: func(id string) string {
			return "/groups/" + url.PathEscape(groupID) + "/members/" + url.PathEscape(id) + "/$ref"
		},
		answer: func(id string, status int, body json.RawMessage) error {
			switch {
			case status == http.StatusNoContent || status == http.StatusOK:
			case status == http.StatusNotFound && !namesGroup(innerAPIError(status, body, ""), groupID):
				// 404 naming the member: not a member (any more). One naming
				// the group (namesGroup, as fresh reads it) is a group not
				// found — moments old and not on every replica yet — and the
				// member is still in it.
			default:
				failed[id] = innerError(status, body, "remove member "+id)
			}
			return nil
		}})
	return failed, err
}

// UserIDs resolves userPrincipalNames to object ids; names that are no
// user in the tenant are left out. A few are looked up with $batch, 20 to
// a request; when there are so many that reading the whole tenant's users
// (999 a page) takes fewer requests, it does that instead.
func (c *Client) UserIDs(ctx context.Context, upns []string) (map[string]string, error) {
	if len(upns) > 10*maxBatch {
		var n int
		err := c.do(ctx, call{method: http.MethodGet, target: "/v1.0/users/$count", header: http.Header{"ConsistencyLevel": {"eventual"}},
			what: "count the tenant's users", perm: "User.Read.All"}, &n)
		if err == nil && (n+MaxPage-1)/MaxPage < (len(upns)+maxBatch-1)/maxBatch {
			return c.userIDsByListing(ctx, upns)
		}
	}
	return c.userIDsByBatch(ctx, upns)
}

func (c *Client) userIDsByListing(ctx context.Context, upns []string) (map[string]string, error) {
	want := make(map[string]bool, len(upns))
	for _, u := range upns {
		want[strings.ToLower(u)] = true
	}
	out := make(map[string]string, len(upns))
	next := "/v1.0/users?$select=id,userPrincipalName&$top=" + strconv.Itoa(MaxPage)
	for next != "" {
		var res struct {
			Value []struct {
				ID  string `json:"id"`
				UPN string `json:"userPrincipalName"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := c.get(ctx, next, "list the tenant's users", "User.Read.All", &res); err != nil {
			return nil, err
		}
		for _, u := range res.Value {
			if k := strings.ToLower(u.UPN); want[k] {
				out[k] = u.ID
			}
		}
		next = res.NextLink
	}
	return out, nil
}

func (c *Client) userIDsByBatch(ctx context.Context, upns []string) (map[string]string, error) {
	out := make(map[string]string, len(upns))
	err := c.batchEach(ctx, upns, batchCall{what: "look up users", perm: "User.Read.All", method: http.MethodGet,
		url: func(upn string) string { return "/users/" + url.PathEscape(upn) + "?$select=id" },
		answer: func(upn string, status int, body json.RawMessage) error {
			switch status {
			case http.StatusOK:
				var u struct {
					ID string `json:"id"`
				}
				json.Unmarshal(body, &u)
				out[strings.ToLower(upn)] = u.ID
			case http.StatusNotFound: // no such user in the tenant
			case http.StatusForbidden:
				return usersync.Errorf(usersync.EFORBIDDEN, "look up users: the application lacks a Graph permission (it needs User.Read.All, granted with admin consent)")
			default:
				return innerError(status, body, "look up user "+upn)
			}
			return nil
		}})
	return out, err
}

// freshFor is how long after creating a group a 404 for it may be Graph's
// replication lag (wire facts §5) rather than a group that is gone.
var freshFor = 30 * time.Second

type freshGroups struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (c *Client) noteCreated(id string) {
	c.created.mu.Lock()
	defer c.created.mu.Unlock()
	if c.created.at == nil {
		c.created.at = map[string]time.Time{}
	}
	c.created.at[id] = time.Now()
}

// fresh runs a write to a group; while the group is one this client made
// moments ago, a 404 is retried after 1, 2, 4, 8 s (the new id has not
// reached every replica yet).
func (c *Client) fresh(ctx context.Context, id string, write func() error) error {
	for wait := time.Second; ; wait *= 2 {
		err := write()
		c.created.mu.Lock()
		at, isFresh := c.created.at[id]
		c.created.mu.Unlock()
		if !isStatus(err, http.StatusNotFound) || !isFresh || time.Since(at) > freshFor || wait > 8*time.Second || !namesGroup(err, id) {
			return err
		}
		if err := c.pause(ctx, fmt.Sprintf("write to group %s", id), "a group created moments ago is not found yet (replication)", wait); err != nil {
			return err
		}
	}
}

// namesGroup reports whether a 404 is about the group id rather than a
// member it names ("Resource '<id>' does not exist …").
func namesGroup(err error, id string) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	return strings.Contains(ae.Message, id) || !strings.Contains(ae.Message, "Resource '")
}

func (c *Client) backoff() interface{ NextBackOff() time.Duration } { return netfail.Backoff() }

func isStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}
