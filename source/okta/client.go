// Package okta is an Okta management API client for pulling groups and
// their users: SSWS API tokens, Link-header paging with the largest page,
// pacing by the X-Rate-Limit-* headers so that 429s do not happen, retries
// of 429 and 5xx, and Okta's error bodies turned into messages that say what
// to do. The token never appears in errors.
package okta

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/netfail"
)

// MaxPage is the largest page of group members Okta serves.
const MaxPage = 1000

// Config configures a Client.
type Config struct {
	Host       string // https://example.okta.com (a bare host name gets https://)
	Token      string // API token, sent as "SSWS <token>"
	HTTPClient *http.Client
	MaxRetries int // per request for 429/5xx; default 8
	// Reserve is how many requests of each rate-limit window the client
	// leaves to other clients of the org: when X-Rate-Limit-Remaining
	// falls to it, the client waits for X-Rate-Limit-Reset. Default 0.
	Reserve int
	// OnWait, when set, is told of each wait before it starts: what the
	// client waits for (a rate-limit window, a retry) and why (-v prints it).
	OnWait func(what, why string, wait time.Duration)
	// Sleep waits; Now tells the time. Tests may replace them.
	Sleep func(ctx context.Context, d time.Duration) error
	Now   func() time.Time
}

// Client talks to one Okta org. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base string // scheme://host
	host string

	mu     sync.Mutex
	limits map[string]rateState // endpoint family → last seen headers
}

type rateState struct {
	remaining int
	reset     time.Time
}

// New checks cfg and returns a client. It does not contact the org.
func New(cfg Config) (*Client, error) {
	host := strings.TrimRight(strings.TrimSpace(cfg.Host), "/")
	if host == "" {
		return nil, usersync.Errorf(usersync.EINVALID, "the Okta host is missing (--okta-host, OKTA_USERSYNC_HOST)")
	}
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, usersync.Errorf(usersync.EINVALID, "Okta host %q is not a host name or an http(s) URL without a path", cfg.Host)
	}
	if cfg.Token == "" {
		return nil, usersync.Errorf(usersync.EINVALID, "the Okta API token is missing (--okta-token, OKTA_USERSYNC_TOKEN)")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: netfail.ResponseTimeout}}
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 8
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, base: u.Scheme + "://" + u.Host, host: u.Host, limits: map[string]rateState{}}, nil
}

// Host is the org's base URL.
func (c *Client) Host() string { return c.base }

// apiError is Okta's error body.
type apiError struct {
	ErrorCode    string `json:"errorCode"`
	ErrorSummary string `json:"errorSummary"`
	ErrorCauses  []struct {
		ErrorSummary string `json:"errorSummary"`
	} `json:"errorCauses"`
}

func (e apiError) String() string {
	s := e.ErrorCode + ": " + e.ErrorSummary
	for _, c := range e.ErrorCauses {
		s += "; " + c.ErrorSummary
	}
	return s
}

// family names the rate-limit bucket a path belongs to: Okta limits per
// endpoint family, so pacing must be tracked per family too.
func family(path string) string {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(path, "/api/v1/"), "/"), "/")
	switch {
	case parts[0] == "groups" && len(parts) == 3:
		return "groups/users"
	case parts[0] == "groups" && len(parts) == 2:
		return "group"
	default:
		return parts[0]
	}
}

// get fetches an API URL (absolute, or a path) into v and returns the
// answer's Link header. what names the request in errors.
func (c *Client) get(ctx context.Context, target, what string, v any) (http.Header, error) {
	if !strings.HasPrefix(target, "http") {
		target = c.base + target
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "%s: Okta gave an unusable link %q", what, target)
	}
	fam := family(u.Path)
	backoffs := netfail.Backoff()
	var unreachable time.Duration // waited for a server that could not be reached
	timeouts := 0
	for attempt := 0; ; attempt++ {
		if err := c.pace(ctx, fam); err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "SSWS "+c.cfg.Token)
		req.Header.Set("Accept", "application/json")
		resp, err := c.cfg.HTTPClient.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// Retry only what may pass (refused, reset, timed out), for
			// ConnectBudget in all; a missing host or an untrusted
			// certificate fails at once.
			f := netfail.Classify(err)
			wait := backoffs.NextBackOff()
			if f.TimedOut {
				timeouts++
			}
			if !f.Transient || unreachable+wait > netfail.ConnectBudget || timeouts >= netfail.MaxTimeouts {
				tries := ""
				if f.TimedOut {
					tries = fmt.Sprintf(", %d tries", timeouts)
				}
				return nil, usersync.Errorf(usersync.EUNAVAILABLE, "%s: cannot reach Okta at %s: %s%s", what, c.base, strings.ReplaceAll(f.Reason, c.cfg.Token, "********"), tries)
			}
			unreachable += wait
			c.waiting(what, strings.ReplaceAll(f.Reason, c.cfg.Token, "********"), wait)
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		resp.Body.Close()
		if err != nil {
			return nil, usersync.Errorf(usersync.EUNAVAILABLE, "%s: reading Okta's answer: %v", what, err)
		}
		c.noteLimits(fam, resp.Header)
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(body, v); err != nil {
				return nil, usersync.Errorf(usersync.EUNAVAILABLE, "%s: Okta answered with JSON this client cannot read: %v", what, err)
			}
			return resp.Header, nil
		}
		var ae apiError
		if json.Unmarshal(body, &ae) != nil || ae.ErrorCode == "" {
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 502 {
				return nil, usersync.Errorf(usersync.EUNAVAILABLE, "%s: the server at %s does not answer like Okta (it answered %s); check --okta-host", what, c.base, resp.Status)
			}
		}
		switch code := resp.StatusCode; {
		case code == http.StatusUnauthorized:
			return nil, usersync.Errorf(usersync.EUNAUTHORIZED, "%s: Okta refused the API token (%s). Okta API tokens expire after 30 days without use and can be revoked: create a new one under Security > API > Tokens and pass it with --okta-token or OKTA_USERSYNC_TOKEN", what, ae)
		case code == http.StatusForbidden:
			return nil, usersync.Errorf(usersync.EFORBIDDEN, "%s: the API token's administrator may not read groups and users (%s); use a token of an administrator with read access to them", what, ae)
		case code == http.StatusNotFound:
			return nil, usersync.Errorf(usersync.ENOTFOUND, "%s: not found in %s (%s)", what, c.base, ae)
		case code == http.StatusTooManyRequests || code >= 500:
			if attempt >= c.cfg.MaxRetries {
				return nil, usersync.Errorf(usersync.EUNAVAILABLE, "%s: Okta still answers %s after %d retries (%s)", what, resp.Status, attempt, ae)
			}
			wait := backoffs.NextBackOff()
			if code == http.StatusTooManyRequests {
				if reset, ok := resetTime(resp.Header); ok {
					wait = max(reset.Sub(c.cfg.Now()), 0) + time.Second/4
				}
			}
			c.waiting(what, "Okta answered "+resp.Status, wait)
			if err := c.cfg.Sleep(ctx, wait); err != nil {
				return nil, err
			}
		default:
			return nil, usersync.Errorf(usersync.EINVALID, "%s: Okta answered %s (%s)", what, resp.Status, ae)
		}
	}
}

// waiting tells OnWait of a wait.
func (c *Client) waiting(what, why string, wait time.Duration) {
	if c.cfg.OnWait != nil {
		c.cfg.OnWait(what, why, wait)
	}
}

// pace waits for the family's rate-limit window to reset when the last
// answer said no request (beyond the reserve) is left in it.
func (c *Client) pace(ctx context.Context, fam string) error {
	c.mu.Lock()
	st, ok := c.limits[fam]
	c.mu.Unlock()
	if !ok || st.remaining > c.cfg.Reserve {
		return nil
	}
	if wait := st.reset.Sub(c.cfg.Now()); wait > 0 {
		c.waiting(fam+" requests", fmt.Sprintf("the org's rate-limit window has %d requests left", st.remaining), wait)
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	c.mu.Lock()
	delete(c.limits, fam) // the new window's figures come with the next answer
	c.mu.Unlock()
	return nil
}

func (c *Client) noteLimits(fam string, h http.Header) {
	remaining, err := strconv.Atoi(h.Get("X-Rate-Limit-Remaining"))
	reset, ok := resetTime(h)
	if err != nil || !ok {
		return
	}
	c.mu.Lock()
	c.limits[fam] = rateState{remaining: remaining, reset: reset}
	c.mu.Unlock()
}

func resetTime(h http.Header) (time.Time, bool) {
	s, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64)
	if err != nil || s <= 0 {
		return time.Time{}, false
	}
	return time.Unix(s, 0), true
}

// nextLink returns the rel="next" URL of a Link header, or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				if k, val, _ := strings.Cut(strings.TrimSpace(p), "="); k == "rel" && strings.Trim(val, `"`) == "next" {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}

// Group is an Okta group.
type Group struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Profile struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"profile"`
	Embedded struct {
		Stats struct {
			UsersCount *int `json:"usersCount"`
		} `json:"stats"`
	} `json:"_embedded"`
}

// User is an Okta user: status and profile.
type User struct {
	ID      string         `json:"id"`
	Status  string         `json:"status"`
	Profile map[string]any `json:"profile"`
}

// FindGroup returns the group with this id (00g…) or exact name. Names can
// repeat across group types (an app group may share an Okta group's name):
// a name shared by several groups is an ECONFLICT error listing their ids.
// ProfileAttributes reads the org's user schema (GET
// /api/v1/meta/schemas/user/default) and returns the names of the
// profile's attributes, base and custom.
func (c *Client) ProfileAttributes(ctx context.Context) ([]string, error) {
	var schema struct {
		Definitions map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"definitions"`
	}
	if _, err := c.get(ctx, "/api/v1/meta/schemas/user/default", "read the user profile's schema", &schema); err != nil {
		return nil, err
	}
	var names []string
	for _, part := range []string{"base", "custom"} {
		for name := range schema.Definitions[part].Properties {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "read the user profile's schema: Okta answered a schema without attributes")
	}
	sort.Strings(names)
	return names, nil
}

func (c *Client) FindGroup(ctx context.Context, nameOrID string) (Group, error) {
	if looksLikeGroupID(nameOrID) {
		var g Group
		_, err := c.get(ctx, "/api/v1/groups/"+url.PathEscape(nameOrID), fmt.Sprintf("group %s", nameOrID), &g)
		if usersync.ErrorCode(err) != usersync.ENOTFOUND {
			return g, err
		}
	}
	escaped := strings.ReplaceAll(strings.ReplaceAll(nameOrID, `\`, `\\`), `"`, `\"`)
	q := url.Values{"search": {`profile.name eq "` + escaped + `"`}}
	var groups []Group
	if _, err := c.get(ctx, "/api/v1/groups?"+q.Encode(), fmt.Sprintf("find group %q", nameOrID), &groups); err != nil {
		return Group{}, err
	}
	switch len(groups) {
	case 0:
		return Group{}, usersync.Errorf(usersync.ENOTFOUND, "group %q not found in %s", nameOrID, c.base)
	case 1:
		return groups[0], nil
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ID + " (" + g.Type + ")"
	}
	return Group{}, usersync.Errorf(usersync.ECONFLICT, "%d groups in %s are named %q; name one by its id: %s", len(ids), c.base, nameOrID, strings.Join(ids, ", "))
}

func looksLikeGroupID(s string) bool {
	if len(s) != 20 || !strings.HasPrefix(s, "00g") {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// MemberCount returns the group's user count from its stats (?expand=stats),
// or -1 when the org does not give it.
func (c *Client) MemberCount(ctx context.Context, groupID string) (int, error) {
	var g Group
	if _, err := c.get(ctx, "/api/v1/groups/"+url.PathEscape(groupID)+"?expand=stats", fmt.Sprintf("group %s", groupID), &g); err != nil {
		return -1, err
	}
	if g.Embedded.Stats.UsersCount == nil {
		return -1, nil
	}
	return *g.Embedded.Stats.UsersCount, nil
}

// Members streams a group's users page by page, in order.
func (c *Client) Members(ctx context.Context, groupID string, fn func(page []User) error) error {
	next := "/api/v1/groups/" + url.PathEscape(groupID) + "/users?limit=" + strconv.Itoa(MaxPage)
	for next != "" {
		var page []User
		h, err := c.get(ctx, next, fmt.Sprintf("members of group %s", groupID), &page)
		if err != nil {
			return err
		}
		if err := fn(page); err != nil {
			return err
		}
		next = nextLink(h)
	}
	return nil
}
