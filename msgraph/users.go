// Writes: users and their licenses, as a user provisioner needs them
// (wire facts §6), paced under the write quota like every write.

package msgraph

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/usersync/usersync"
)

// UserProps are the properties a user provisioner reads of Entra users.
var UserProps = []string{"id", "userPrincipalName", "accountEnabled", "onPremisesImmutableId", "usageLocation", "assignedLicenses"}

// CreateUser creates a user (POST /users). props holds the user's
// properties (userPrincipalName, displayName, mailNickname, …) as strings;
// password is the initial password, sent once and kept nowhere.
func (c *Client) CreateUser(ctx context.Context, props map[string]string, enabled bool, password string) (User, error) {
	body := map[string]any{"accountEnabled": enabled,
		"passwordProfile": map[string]any{"password": password, "forceChangePasswordNextSignIn": true}}
	for k, v := range props {
		if v != "" {
			body[k] = v
		}
	}
	b, _ := json.Marshal(body)
	var out User
	err := c.do(ctx, call{method: http.MethodPost, target: "/v1.0/users", body: b, write: true, once: true,
		what: fmt.Sprintf("create user %q", props["userPrincipalName"]), perm: "User.ReadWrite.All"}, &out)
	return out, err
}

// UpdateUser sends changed properties (PATCH /users/{id}); a value ""
// clears a property (null), and accountEnabled is sent when enabled is set.
func (c *Client) UpdateUser(ctx context.Context, id string, props map[string]string, enabled *bool) error {
	body := map[string]any{}
	for k, v := range props {
		if v == "" {
			body[k] = nil
		} else {
			body[k] = v
		}
	}
	if enabled != nil {
		body["accountEnabled"] = *enabled
	}
	b, _ := json.Marshal(body)
	return c.do(ctx, call{method: http.MethodPatch, target: "/v1.0/users/" + url.PathEscape(id), body: b, write: true,
		what: fmt.Sprintf("update user %s", id), perm: "User.ReadWrite.All"}, nil)
}

// DeleteUser deletes a user (soft: restorable for 30 days); one that is
// gone already is no error.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	err := c.do(ctx, call{method: http.MethodDelete, target: "/v1.0/users/" + url.PathEscape(id), write: true,
		what: fmt.Sprintf("delete user %s", id), perm: "User.ReadWrite.All"}, nil)
	if isStatus(err, http.StatusNotFound) {
		return nil
	}
	return err
}

// LicenseChange is one license to add (with plans left off).
type LicenseChange struct {
	SKUID         string   `json:"skuId"`
	DisabledPlans []string `json:"disabledPlans"`
}

// SubscribedSKUs lists the tenant's licenses with their seats.
func (c *Client) SubscribedSKUs(ctx context.Context) ([]usersync.SKU, error) {
	var res struct {
		Value []struct {
			SkuID         string `json:"skuId"`
			SkuPartNumber string `json:"skuPartNumber"`
			ConsumedUnits int    `json:"consumedUnits"`
			PrepaidUnits  struct {
				Enabled int `json:"enabled"`
			} `json:"prepaidUnits"`
			ServicePlans []struct {
				ServicePlanID   string `json:"servicePlanId"`
				ServicePlanName string `json:"servicePlanName"`
			} `json:"servicePlans"`
		} `json:"value"`
	}
	if err := c.get(ctx, "/v1.0/subscribedSkus", "list the tenant's licenses", "Organization.Read.All", &res); err != nil {
		return nil, err
	}
	out := make([]usersync.SKU, len(res.Value))
	for i, s := range res.Value {
		out[i] = usersync.SKU{ID: s.SkuID, PartNumber: s.SkuPartNumber, Enabled: s.PrepaidUnits.Enabled, Consumed: s.ConsumedUnits}
		for _, p := range s.ServicePlans {
			out[i].Plans = append(out[i].Plans, p.ServicePlanName)
			out[i].PlanIDs = append(out[i].PlanIDs, p.ServicePlanID)
		}
	}
	return out, nil
}

// VerifiedDomains lists the tenant's verified domains.
func (c *Client) VerifiedDomains(ctx context.Context) ([]string, error) {
	var res struct {
		Value []struct {
			ID         string `json:"id"`
			IsVerified bool   `json:"isVerified"`
		} `json:"value"`
	}
	if err := c.get(ctx, "/v1.0/domains", "list the tenant's domains", "Domain.Read.All", &res); err != nil {
		return nil, err
	}
	var out []string
	for _, d := range res.Value {
		if d.IsVerified {
			out = append(out, d.ID)
		}
	}
	return out, nil
}

// AllGroups lists the tenant's groups (id and display name).
func (c *Client) AllGroups(ctx context.Context) ([]usersync.RemoteID, error) {
	var out []usersync.RemoteID
	next := "/v1.0/groups?$select=id,displayName&$top=999"
	for next != "" {
		var res struct {
			Value []struct {
				ID          string `json:"id"`
				DisplayName string `json:"displayName"`
			} `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := c.get(ctx, next, "list the tenant's groups", "Group.Read.All", &res); err != nil {
			return nil, err
		}
		for _, g := range res.Value {
			out = append(out, usersync.RemoteID{ID: g.ID, Name: g.DisplayName})
		}
		next = res.NextLink
	}
	return out, nil
}

// UsersByUPN reads users by userPrincipalName with $batch, 20 to a
// request; names that are no user of the tenant are left out. Keys of the
// answer are lower case.
func (c *Client) UsersByUPN(ctx context.Context, upns []string, props []string) (map[string]User, error) {
	out := make(map[string]User, len(upns))
	sel := Select(props...)
	err := c.batchEach(ctx, upns, batchCall{what: "look up users", perm: "User.Read.All", method: http.MethodGet,
		url: func(upn string) string { return "/users/" + url.PathEscape(upn) + "?$select=" + sel },
		answer: func(upn string, status int, body json.RawMessage) error {
			switch status {
			case http.StatusOK:
				var u User
				if err := json.Unmarshal(body, &u); err != nil {
					return usersync.Errorf(usersync.EUNAVAILABLE, "look up user %s: the answer is not JSON: %v", upn, err)
				}
				out[strings.ToLower(upn)] = u
			case http.StatusNotFound:
			case http.StatusForbidden:
				return usersync.Errorf(usersync.EFORBIDDEN, "look up users: the application lacks a Graph permission (it needs User.ReadWrite.All, granted with admin consent)")
			default:
				return innerError(status, body, "look up user "+upn)
			}
			return nil
		}})
	return out, err
}

// Licenses returns the SKU ids a user has, from assignedLicenses.
func (u User) Licenses() []string {
	raw, _ := u["assignedLicenses"].([]any)
	var out []string
	for _, l := range raw {
		if m, ok := l.(map[string]any); ok {
			if id, ok := m["skuId"].(string); ok {
				out = append(out, id)
			}
		}
	}
	return out
}

// LicenseSet is one user's license change.
type LicenseSet struct {
	Add    []LicenseChange
	Remove []string
}

// AssignLicenses sends many users' license changes as $batch requests of
// twenty assignLicense calls (an assignLicense sent again is no harm, so
// throttled and failed inner calls are sent again). It returns the users
// Graph refused, with why.
func (c *Client) AssignLicenses(ctx context.Context, changes map[string]LicenseSet) (ItemErrors, error) {
	ids := make([]string, 0, len(changes))
	for id := range changes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	failed := ItemErrors{}
	err := c.batchEach(ctx, ids, batchCall{what: "assign licenses", perm: "User.ReadWrite.All", method: http.MethodPost, write: true,
		url: func(id string) string { return "/users/" + url.PathEscape(id) + "/assignLicense" },
		body: func(id string) any {
			ch := changes[id]
			add, remove := ch.Add, ch.Remove
			if add == nil {
				add = []LicenseChange{}
			}
			for i := range add {
				if add[i].DisabledPlans == nil {
					add[i].DisabledPlans = []string{}
				}
			}
			if remove == nil {
				remove = []string{}
			}
			return map[string]any{"addLicenses": add, "removeLicenses": remove}
		},
		answer: func(id string, status int, body json.RawMessage) error {
			if status == http.StatusOK || status == http.StatusNoContent {
				return nil
			}
			var ge graphError
			json.Unmarshal(body, &ge)
			failed[id] = &APIError{Status: status, Code: ge.Error.Code, Message: ge.Error.Message, What: "assign licenses to user " + id}
			return nil
		}})
	return failed, err
}
