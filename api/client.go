package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// Client does the Operations through the API of a usersync serve, as an
// administrator's API token: for scripts and operators that should not
// hold the database's URL.
type Client struct {
	base  string // ends in /api/v1
	token string
	http  *http.Client
}

var _ Operations = (*Client)(nil)

// NewClient returns a client of the API at server (https://host:port, with
// or without /api/v1); hc nil is a client with a 2-minute timeout, which
// covers a long poll of the change log.
func NewClient(server, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(server))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usersync.Errorf(usersync.EINVALID, "--server %q is not the URL of a usersync serve: give http(s)://host:port", server)
	}
	if strings.TrimSpace(token) == "" {
		return nil, usersync.Errorf(usersync.EINVALID, "--server needs an administrator's API token: --token, or USERSYNC_TOKEN")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), Path)
	return &Client{base: base + Path, token: strings.TrimSpace(token), http: hc}, nil
}

// do sends a request and reads the answer into out; an answer that is a
// problem (RFC 9457) becomes a domain error with the status's code and the
// server's words. It returns the answer's headers.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any, header ...string) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode the request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, usersync.Errorf(usersync.EINVALID, "cannot make a request to %s: %v", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is said once, below
		}
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "cannot reach usersync serve at %s: %v", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, usersync.Errorf(usersync.EUNAVAILABLE, "the answer of %s %s was cut: %v", method, c.base+path, err)
	}
	if resp.StatusCode >= 400 {
		return resp.Header, problem(resp.StatusCode, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, usersync.Errorf(usersync.EINTERNAL, "the answer of %s %s is not what this usersync expects (is the server another version?): %v", method, path, err)
		}
	}
	return resp.Header, nil
}

// problem turns an API error answer back into the domain error it came from.
func problem(status int, raw []byte) error {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Message  string `json:"message"`
			Location string `json:"location"`
		} `json:"errors"`
	}
	msg := http.StatusText(status)
	if json.Unmarshal(raw, &p) == nil && (p.Detail != "" || p.Title != "") {
		msg = p.Detail
		if msg == "" {
			msg = p.Title
		}
		for _, e := range p.Errors {
			if e.Location != "" {
				msg += "; " + e.Location + ": " + e.Message
			} else if e.Message != "" {
				msg += "; " + e.Message
			}
		}
	}
	code := map[int]string{
		http.StatusBadRequest: usersync.EINVALID, http.StatusUnprocessableEntity: usersync.EINVALID, http.StatusRequestEntityTooLarge: usersync.EINVALID,
		http.StatusNotFound: usersync.ENOTFOUND, http.StatusConflict: usersync.ECONFLICT, http.StatusPreconditionFailed: usersync.ESTALE,
		http.StatusUnauthorized: usersync.EUNAUTHORIZED, http.StatusForbidden: usersync.EFORBIDDEN,
		http.StatusServiceUnavailable: usersync.EUNAVAILABLE, http.StatusBadGateway: usersync.EUNAVAILABLE, http.StatusGatewayTimeout: usersync.EUNAVAILABLE,
	}[status]
	if code == "" {
		code = usersync.EINTERNAL
	}
	if status == http.StatusUnauthorized {
		msg = "usersync serve refused the API token: " + msg
	}
	return usersync.Errorf(code, "%s", msg)
}

// ifMatch is the If-Match header that makes a write apply to version only.
func ifMatch(version int64) []string {
	if version == 0 {
		return nil
	}
	return []string{"If-Match", etag(version)}
}

func seg(s string) string { return url.PathEscape(s) }

func paging(q url.Values, p Paging) url.Values {
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	return q
}

// get reads path into a fresh T.
func get[T any](c *Client, ctx context.Context, path string, q url.Values) (T, error) {
	var out T
	_, err := c.do(ctx, http.MethodGet, path, q, nil, &out)
	return out, err
}

// send writes in to path and reads the answer into a fresh T.
func send[T any](c *Client, ctx context.Context, method, path string, in any, header ...string) (T, error) {
	var out T
	_, err := c.do(ctx, method, path, nil, in, &out, header...)
	return out, err
}

func listOf[T any](c *Client, ctx context.Context, path string, q url.Values) ([]T, error) {
	l, err := get[ItemList[T]](c, ctx, path, q)
	return nonNil(l.Items), err
}

func (c *Client) ListUsers(ctx context.Context, q UserQuery) (*UserPage, error) {
	v := url.Values{}
	if q.Search != "" {
		v.Set("search", q.Search)
	}
	for k, s := range map[string]string{"source": q.Source, "type": q.Type, "enabled": q.Enabled} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return get[*UserPage](c, ctx, "/users", paging(v, q.Paging))
}

func (c *Client) GetUser(ctx context.Context, username string) (*usersync.User, error) {
	return get[*usersync.User](c, ctx, "/users/"+seg(username), nil)
}

func (c *Client) UserGroups(ctx context.Context, username string) ([]string, error) {
	l, err := get[NameList](c, ctx, "/users/"+seg(username)+"/groups", nil)
	return nonNil(l.Items), err
}

func (c *Client) CreateUser(ctx context.Context, u NewUser) (*usersync.User, error) {
	return send[*usersync.User](c, ctx, http.MethodPost, "/users", u)
}

func (c *Client) UpdateUser(ctx context.Context, username string, ch UserChange, version int64) (*usersync.User, error) {
	return send[*usersync.User](c, ctx, http.MethodPatch, "/users/"+seg(username), ch, ifMatch(version)...)
}

func (c *Client) DeleteUser(ctx context.Context, username string, version int64) error {
	_, err := c.do(ctx, http.MethodDelete, "/users/"+seg(username), nil, nil, nil, ifMatch(version)...)
	return err
}

func (c *Client) ListGroups(ctx context.Context, q GroupQuery) (*GroupPage, error) {
	v := url.Values{}
	for k, s := range map[string]string{"search": q.Search, "source": q.Source, "folder": q.Folder} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Top {
		v.Set("top", "true")
	}
	return get[*GroupPage](c, ctx, "/groups", paging(v, q.Paging))
}

func (c *Client) GetGroup(ctx context.Context, name string) (*usersync.Group, error) {
	return get[*usersync.Group](c, ctx, "/groups/"+seg(name), nil)
}

func (c *Client) CreateGroup(ctx context.Context, g NewGroup) (*usersync.Group, error) {
	return send[*usersync.Group](c, ctx, http.MethodPost, "/groups", g)
}

func (c *Client) UpdateGroup(ctx context.Context, name string, ch GroupChange, version int64) (*usersync.Group, error) {
	return send[*usersync.Group](c, ctx, http.MethodPatch, "/groups/"+seg(name), ch, ifMatch(version)...)
}

func (c *Client) DeleteGroup(ctx context.Context, name string, version int64) error {
	_, err := c.do(ctx, http.MethodDelete, "/groups/"+seg(name), nil, nil, nil, ifMatch(version)...)
	return err
}

func (c *Client) ListMembers(ctx context.Context, group string, q MemberQuery) (*MemberPage, error) {
	v := url.Values{}
	if q.Transitive {
		v.Set("transitive", "true")
	}
	return get[*MemberPage](c, ctx, "/groups/"+seg(group)+"/members", paging(v, q.Paging))
}

func (c *Client) ChangeMembers(ctx context.Context, group string, ch MembersChange, version int64) (*MembersChanged, error) {
	return send[*MembersChanged](c, ctx, http.MethodPatch, "/groups/"+seg(group)+"/members", ch, ifMatch(version)...)
}

func (c *Client) ListFolders(ctx context.Context, under string) ([]*usersync.Folder, error) {
	v := url.Values{}
	if under != "" {
		v.Set("under", under)
	}
	return listOf[*usersync.Folder](c, ctx, "/folders", v)
}

func (c *Client) GetFolder(ctx context.Context, path string) (*usersync.Folder, error) {
	return get[*usersync.Folder](c, ctx, "/folders/"+seg(path), nil)
}

func (c *Client) CreateFolder(ctx context.Context, path string) (*usersync.Folder, error) {
	return send[*usersync.Folder](c, ctx, http.MethodPut, "/folders/"+seg(path), nil)
}

func (c *Client) DeleteFolder(ctx context.Context, path string) error {
	_, err := c.do(ctx, http.MethodDelete, "/folders/"+seg(path), nil, nil, nil)
	return err
}

func (c *Client) SetFolderAttributes(ctx context.Context, path string, attrs map[string]*string) (*usersync.Folder, error) {
	return send[*usersync.Folder](c, ctx, http.MethodPatch, "/folders/"+seg(path), map[string]any{"attributes": attrs})
}

func (c *Client) ListTokens(ctx context.Context, user string) ([]*usersync.Token, error) {
	v := url.Values{}
	if user != "" {
		v.Set("user", user)
	}
	return listOf[*usersync.Token](c, ctx, "/tokens", v)
}

func (c *Client) CreateToken(ctx context.Context, user, name string) (*CreatedToken, error) {
	return send[*CreatedToken](c, ctx, http.MethodPost, "/tokens", map[string]string{"user": user, "name": name})
}

func (c *Client) RevokeToken(ctx context.Context, id int64) error {
	_, err := c.do(ctx, http.MethodDelete, "/tokens/"+strconv.FormatInt(id, 10), nil, nil, nil)
	return err
}

func (c *Client) Settings(ctx context.Context) ([]usersync.Setting, error) {
	return listOf[usersync.Setting](c, ctx, "/settings", nil)
}

func (c *Client) Setting(ctx context.Context, key string) (usersync.Setting, error) {
	return get[usersync.Setting](c, ctx, "/settings/"+seg(key), nil)
}

func (c *Client) SetSetting(ctx context.Context, key, value string) (usersync.Setting, error) {
	return send[usersync.Setting](c, ctx, http.MethodPut, "/settings/"+seg(key), map[string]string{"value": value})
}

func (c *Client) ResetSetting(ctx context.Context, key string) (usersync.Setting, error) {
	return send[usersync.Setting](c, ctx, http.MethodDelete, "/settings/"+seg(key), nil)
}

func (c *Client) Changes(ctx context.Context, after int64, limit int, wait time.Duration) ([]*usersync.Change, error) {
	v := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(min(limit, 1000)))
	}
	if wait > 0 {
		v.Set("wait", strconv.Itoa(int(min(wait, time.Minute)/time.Second)))
	}
	l, err := get[ChangeList](c, ctx, "/changes", v)
	return nonNil(l.Items), err
}

func (c *Client) ListSchedules(ctx context.Context) ([]*usersync.Schedule, error) {
	return listOf[*usersync.Schedule](c, ctx, "/schedules", nil)
}

func (c *Client) GetSchedule(ctx context.Context, name string) (*usersync.Schedule, error) {
	return get[*usersync.Schedule](c, ctx, "/schedules/"+seg(name), nil)
}

func (c *Client) CreateSchedule(ctx context.Context, s NewSchedule) (*usersync.Schedule, error) {
	return send[*usersync.Schedule](c, ctx, http.MethodPost, "/schedules", s)
}

func (c *Client) UpdateSchedule(ctx context.Context, name string, ch ScheduleChange, version int64) (*usersync.Schedule, error) {
	return send[*usersync.Schedule](c, ctx, http.MethodPatch, "/schedules/"+seg(name), ch, ifMatch(version)...)
}

func (c *Client) DeleteSchedule(ctx context.Context, name string) error {
	_, err := c.do(ctx, http.MethodDelete, "/schedules/"+seg(name), nil, nil, nil)
	return err
}

func (c *Client) RunSchedule(ctx context.Context, name string) (bool, error) {
	r, err := send[RunQueued](c, ctx, http.MethodPost, "/schedules/"+seg(name)+"/runs", nil)
	return r.Duplicate, err
}

func (c *Client) ListRuns(ctx context.Context, schedule string, limit int) ([]*usersync.Run, error) {
	v := url.Values{}
	if schedule != "" {
		v.Set("schedule", schedule)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(min(limit, 1000)))
	}
	return listOf[*usersync.Run](c, ctx, "/runs", v)
}

func (c *Client) GetRun(ctx context.Context, id int64) (*usersync.Run, error) {
	return get[*usersync.Run](c, ctx, "/runs/"+strconv.FormatInt(id, 10), nil)
}

func (c *Client) DecideRun(ctx context.Context, id int64, allow bool) (*usersync.Run, error) {
	return send[*usersync.Run](c, ctx, http.MethodPost, "/runs/"+strconv.FormatInt(id, 10)+"/decision", map[string]bool{"allow": allow})
}

func (c *Client) ListProvisioners(ctx context.Context) ([]*usersync.Provisioner, error) {
	return listOf[*usersync.Provisioner](c, ctx, "/provisioners", nil)
}

func (c *Client) ProvisionerStatus(ctx context.Context, name string) (*ProvisionerStatus, error) {
	return get[*ProvisionerStatus](c, ctx, "/provisioners/"+seg(name), nil)
}

func (c *Client) ProvisionerLinks(ctx context.Context, name string) ([]usersync.Link, error) {
	l, err := get[ItemList[usersync.Link]](c, ctx, "/provisioners/"+seg(name)+"/links", nil)
	return l.Items, err
}

func (c *Client) RetryProvisioner(ctx context.Context, name, group string) (*ProvisionerStatus, error) {
	return send[*ProvisionerStatus](c, ctx, http.MethodPost, "/provisioners/"+seg(name)+"/retries", map[string]string{"group": group})
}
