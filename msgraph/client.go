// Package msgraph is the Microsoft Graph client that usersync's pull
// source (source/graph) and its outbound targets (target/entra) share:
// OAuth2 client credentials against the tenant's token endpoint,
// @odata.nextLink paging with the largest page size, $select of only the
// needed properties, $batch, writes paced under Graph's write quota, and
// retries that honour Retry-After. Hosts are configurable for national
// clouds and the emulator. Errors are usersync domain errors whose messages
// say what failed and never hold the secret.
package msgraph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/netfail"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Public cloud endpoints; see the wire-facts document for national clouds.
const (
	DefaultAuthorityURL = "https://login.microsoftonline.com"
	DefaultGraphURL     = "https://graph.microsoft.com"
)

// Config configures a Client.
type Config struct {
	AuthorityURL string // default DefaultAuthorityURL
	GraphURL     string // default DefaultGraphURL; the token scope follows it
	Tenant       string
	ClientID     string
	ClientSecret string
	HTTPClient   *http.Client // default: one that honours HTTPS_PROXY
	// Proxy names the proxy HTTPClient goes through (like "http proxy
	// proxy.example:3128"), so that a proxy that cannot be reached is
	// named as the proxy, not as Graph.
	Proxy      string
	MaxRetries int // per request for 429/5xx; default 8
	// Sleep waits between retries; tests may replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRetry, when set, hears of each retry before its wait: what was
	// asked, why it is tried again, and how long the client waits.
	OnRetry func(what, why string, wait time.Duration)
	// WriteQuota writes per WriteWindow is Graph's write quota per app and
	// tenant (default 3,000 per 150 s): a burst of up to it goes out at
	// once, and longer runs at its rate (see writeQuota).
	WriteQuota  int
	WriteWindow time.Duration
	// WritesPerSecond, when positive, refills the quota at this rate
	// instead (benchmarks); a negative value does not pace at all.
	WritesPerSecond float64
}

// Client talks to Microsoft Graph. It is safe for concurrent use.
type Client struct {
	cfg Config

	mu       sync.Mutex
	token    string
	expires  time.Time
	tenantID string // resolved by TenantID

	// writes paces writes under Graph's write quota per app and tenant.
	writes *writeQuota
	// created remembers the groups this client created, for fresh.
	created freshGroups
}

// New checks cfg and returns a client. It does not contact the service.
func New(cfg Config) (*Client, error) {
	if cfg.AuthorityURL == "" {
		cfg.AuthorityURL = DefaultAuthorityURL
	}
	if cfg.GraphURL == "" {
		cfg.GraphURL = DefaultGraphURL
	}
	cfg.AuthorityURL, cfg.GraphURL = strings.TrimRight(cfg.AuthorityURL, "/"), strings.TrimRight(cfg.GraphURL, "/")
	for name, v := range map[string]string{"authority URL": cfg.AuthorityURL, "Graph URL": cfg.GraphURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, usersync.Errorf(usersync.EINVALID, "%s %q is not an http(s) URL", name, v)
		}
	}
	switch {
	case cfg.Tenant == "":
		return nil, usersync.Errorf(usersync.EINVALID, "no tenant given (--tenant or O365_USERSYNC_TENANT)")
	case cfg.ClientID == "":
		return nil, usersync.Errorf(usersync.EINVALID, "no client id given (--client-id or O365_USERSYNC_CLIENT_ID)")
	case cfg.ClientSecret == "":
		return nil, usersync.Errorf(usersync.EINVALID, "no client secret given (--client-secret or O365_USERSYNC_CLIENT_SECRET)")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 8, ResponseHeaderTimeout: netfail.ResponseTimeout}}
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 8
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
				return nil
			}
		}
	}
	if cfg.WriteQuota <= 0 {
		cfg.WriteQuota = DefaultWriteQuota
	}
	if cfg.WriteWindow <= 0 {
		cfg.WriteWindow = DefaultWriteWindow
	}
	return &Client{cfg: cfg, writes: newWriteQuota(cfg.WriteQuota, cfg.WriteWindow, cfg.WritesPerSecond, cfg.Sleep)}, nil
}

// Tenant is the tenant the client signs in to.
func (c *Client) Tenant() string { return c.cfg.Tenant }

// SignIn gets an access token, checking the credentials and that the
// identity platform can be reached.
func (c *Client) SignIn(ctx context.Context) error {
	_, err := c.accessToken(ctx, false)
	return err
}

// accessToken returns a cached token, fetching a new one shortly before
// expiry with the OAuth2 client-credentials grant (golang.org/x/oauth2),
// over this client's transport and its connection retries.
func (c *Client) accessToken(ctx context.Context, renew bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !renew && c.token != "" && time.Now().Before(c.expires) {
		return c.token, nil
	}
	what := "sign in to tenant " + c.cfg.Tenant
	cc := clientcredentials.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, AuthStyle: oauth2.AuthStyleInParams,
		TokenURL: c.cfg.AuthorityURL + "/" + url.PathEscape(c.cfg.Tenant) + "/oauth2/v2.0/token", Scopes: []string{c.cfg.GraphURL + "/.default"}}
	hc := &http.Client{Transport: roundTripper(func(req *http.Request) (*http.Response, error) {
		return c.send(req.Context(), req, what, c.cfg.AuthorityURL)
	})}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
	var re *oauth2.RetrieveError
	var u *Unreachable
	switch {
	case err == nil && tok.AccessToken != "":
	case errors.As(err, &u):
		return "", u
	case ctx.Err() != nil:
		return "", ctx.Err()
	case errors.As(err, &re) && re.ErrorCode != "":
		return "", usersync.Errorf(usersync.EUNAUTHORIZED, "sign-in to tenant %q failed: %s", c.cfg.Tenant, firstSentence(re.ErrorCode, re.ErrorDescription))
	case errors.As(err, &re):
		return "", &Unreachable{usersync.Errorf(usersync.EUNAVAILABLE, "the server at %s does not answer like the Microsoft identity platform (its token endpoint answered %s%s); check --authority-url",
			c.cfg.AuthorityURL, re.Response.Status, contentType(re.Response))}
	default:
		return "", &Unreachable{usersync.Errorf(usersync.EUNAVAILABLE, "the server at %s does not answer like the Microsoft identity platform (its token endpoint gave no access token); check --authority-url", c.cfg.AuthorityURL)}
	}
	c.token = tok.AccessToken
	expires := tok.Expiry
	if expires.IsZero() {
		expires = time.Now().Add(time.Hour)
	}
	c.expires = expires.Add(-2 * time.Minute) // renew two minutes early
	if time.Until(c.expires) < 30*time.Second {
		c.expires = time.Now().Add(30 * time.Second)
	}
	return c.token, nil
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// firstSentence reduces an AADSTS description to its code and first sentence.
func firstSentence(code, desc string) string {
	desc = strings.SplitN(desc, "\r\n", 2)[0]
	if i := strings.Index(desc, ". "); i > 0 {
		desc = desc[:i+1]
	}
	if desc == "" {
		return code
	}
	return desc + " (" + code + ")"
}

// graphError is the body of a failed Graph request.
type graphError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// get fetches a Graph URL (absolute, or a path below GraphURL) into v,
// retrying throttled and failed requests and renewing an expired token once.
// what names the request in errors; perm is the permission it needs.
func (c *Client) get(ctx context.Context, target, what, perm string, v any) error {
	return c.do(ctx, call{method: http.MethodGet, target: target, what: what, perm: perm}, v)
}

// call is one Graph request.
type call struct {
	method, target string
	body           []byte      // JSON, for POST
	header         http.Header // extra headers, e.g. ConsistencyLevel
	what, perm     string      // for errors: what was asked, which permission it needs
	// write paces the request under the write quota and marks it low
	// priority (a background sync); writes, and calls with apiErrors,
	// return 400, 404 and 409 as *APIError for the caller to read.
	write, apiErrors bool
	// once: not retried after a 5xx, which may come after the write was
	// done (a create; the caller looks for what it made before trying
	// again). A 429 is retried: Graph did nothing.
	once bool
}

// ErrSyncStateExpired is returned for a delta link Graph no longer knows
// (410 Gone, or a syncStateNotFound/resyncRequired code): start over with a
// full read.
// ErrForeignLink is a delta link that is not under the configured Graph
// URL (it was saved when --graph-url named another): it is not followed.
var ErrForeignLink = usersync.Errorf(usersync.ECONFLICT, "the Graph delta link is not under the configured Graph URL")

var ErrSyncStateExpired = usersync.Errorf(usersync.ECONFLICT, "the Graph delta token has expired; a full read is needed")

func (c *Client) do(ctx context.Context, cl call, v any) error {
	target, what, perm := cl.target, cl.what, cl.perm
	if !strings.HasPrefix(target, "http") {
		target = c.cfg.GraphURL + target
	}
	renewed := false
	wait := netfail.Backoff()
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx, false)
		if err != nil {
			return err
		}
		var reqBody io.Reader
		if cl.body != nil {
			reqBody = bytes.NewReader(cl.body)
		}
		req, err := http.NewRequestWithContext(ctx, cl.method, target, reqBody)
		if err != nil {
			return err
		}
		for k, vs := range cl.header {
			req.Header[k] = vs
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		if cl.body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if cl.write {
			req.Header.Set("x-ms-throttle-priority", "Low") // wire facts §8: a background sync yields first
			if err := c.writes.wait(ctx, 1); err != nil {
				return err
			}
		}
		resp, err := c.send(ctx, req, what, c.cfg.GraphURL)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return usersync.Errorf(usersync.EUNAVAILABLE, "%s: reading Graph's answer: %v", what, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if v == nil || len(body) == 0 {
				return nil
			}
			if raw, ok := v.(*[]byte); ok {
				*raw = body // decoded by the caller
				return nil
			}
			if err := json.Unmarshal(body, v); err != nil {
				return c.notGraph(what, resp)
			}
			return nil
		}
		// Only a refusal is read as Graph's error body: a page of members
		// is decoded once, by its caller, not scanned here first.
		var ge graphError
		isGraph := json.Unmarshal(body, &ge) == nil && ge.Error.Code != ""
		switch code := resp.StatusCode; {
		case code == http.StatusGone || ge.Error.Code == "syncStateNotFound" || ge.Error.Code == "resyncRequired" || ge.Error.Code == "syncStateInvalid":
			return ErrSyncStateExpired
		case (code == http.StatusTooManyRequests || code >= 500) && (isGraph || len(body) == 0 || code >= 502):
			// Throttled or failing for now (a gateway in front of Graph may
			// answer 502–504 without a Graph body).
			if cl.once && code != http.StatusTooManyRequests {
				return usersync.Errorf(usersync.EUNAVAILABLE, "%s: Graph answered %s; not retried at once, as it may have been done (the next attempt looks for it first)", what, resp.Status)
			}
			if attempt >= c.cfg.MaxRetries {
				return usersync.Errorf(usersync.EUNAVAILABLE, "%s: Graph still answers %s after %d retries", what, resp.Status, attempt)
			}
			d := wait.NextBackOff()
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
				d = time.Duration(s) * time.Second
			}
			if cl.write && code == http.StatusTooManyRequests {
				c.writes.throttled(d) // the quota is spent: every writer waits
			}
			if err := c.pause(ctx, what, "Graph answered "+resp.Status, d); err != nil {
				return err
			}
		case !isGraph:
			return c.notGraph(what, resp)
		case code == http.StatusUnauthorized && !renewed:
			renewed = true
			c.mu.Lock()
			c.token = ""
			c.mu.Unlock()
		case code == http.StatusUnauthorized:
			return usersync.Errorf(usersync.EUNAUTHORIZED, "%s: Graph refused the access token: %s", what, ge.Error.Message)
		case (cl.write || cl.apiErrors) && (code == http.StatusBadRequest || code == http.StatusNotFound || code == http.StatusConflict):
			return &APIError{Status: code, Code: ge.Error.Code, Message: ge.Error.Message, What: what}
		case code == http.StatusForbidden:
			return usersync.Errorf(usersync.EFORBIDDEN, "%s: the application lacks a Graph permission (it needs %s, granted with admin consent): %s", what, perm, ge.Error.Message)
		case code == http.StatusNotFound:
			return usersync.Errorf(usersync.ENOTFOUND, "%s: not found in tenant %q (%s)", what, c.cfg.Tenant, ge.Error.Code)
		default:
			return &APIError{Status: code, Code: ge.Error.Code, Message: ge.Error.Message, What: what}
		}
	}
}

// APIError is an answer of Graph that refuses a request for a reason of
// its own (400: a bad query; 409; …).
type APIError struct {
	Status        int
	Code, Message string
	What          string // what was asked
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: Graph answered %d %s: %s", e.What, e.Status, e.Code, e.Message)
}

// Unwrap makes an APIError a domain error: ENOTFOUND for 404, ECONFLICT
// for 409, EINVALID otherwise.
func (e *APIError) Unwrap() error {
	code := usersync.EINVALID
	switch e.Status {
	case http.StatusNotFound:
		code = usersync.ENOTFOUND
	case http.StatusConflict:
		code = usersync.ECONFLICT
	}
	return usersync.Errorf(code, "%s", e.Error())
}

// send sends a request, retrying a server that cannot be reached for now
// (refused, reset, timed out) for up to netfail.ConnectBudget in all; a
// failure that will not pass (no such host, an untrusted certificate, a
// server that does not speak HTTP) is returned at once.
func (c *Client) send(ctx context.Context, req *http.Request, what, base string) (*http.Response, error) {
	var waited time.Duration
	timeouts := 0
	wait := netfail.Backoff()
	for {
		resp, err := c.cfg.HTTPClient.Do(req)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f := netfail.Classify(err)
		d := wait.NextBackOff()
		if f.TimedOut {
			timeouts++
		}
		if !f.Transient || waited+d > netfail.ConnectBudget || timeouts >= netfail.MaxTimeouts {
			tried := ""
			switch {
			case f.TimedOut:
				tried = fmt.Sprintf(" (%d tries)", timeouts)
			case f.Transient:
				tried = fmt.Sprintf(" (tried for %s)", waited.Round(time.Second))
			}
			if c.cfg.Proxy != "" && viaProxyFailed(err) {
				return nil, &Unreachable{usersync.Errorf(usersync.EUNAVAILABLE, "%s: cannot reach the %s (the provisioner's proxy settings) on the way to %s: %s%s", what, c.cfg.Proxy, base, f.Reason, tried)}
			}
			return nil, &Unreachable{usersync.Errorf(usersync.EUNAVAILABLE, "%s: cannot reach %s: %s%s", what, base, f.Reason, tried)}
		}
		if err := c.pause(ctx, what, f.Reason, d); err != nil {
			return nil, err
		}
		waited += d
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

// viaProxyFailed reports an error of the connection to a proxy (an HTTP
// proxy's CONNECT, or a SOCKS handshake) rather than of Graph behind it.
func viaProxyFailed(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "proxyconnect" {
		return true
	}
	return strings.Contains(err.Error(), "socks connect")
}

// pause tells OnRetry and waits.
func (c *Client) pause(ctx context.Context, what, why string, d time.Duration) error {
	if c.cfg.OnRetry != nil {
		c.cfg.OnRetry(what, why, d)
	}
	return c.cfg.Sleep(ctx, d)
}

// notGraph is the error for an answer that is not Graph's: a web server, a
// proxy's page, a wrong --graph-url.
// Unreachable is a Graph (or identity platform) that cannot be used at
// all: not reached, or something else answers in its place. Nothing else a
// run would ask of it can succeed, so a provisioner stops rather than fail
// group after group.
type Unreachable struct{ Err *usersync.Error }

func (e *Unreachable) Error() string { return e.Err.Error() }
func (e *Unreachable) Unwrap() error { return e.Err }

func (c *Client) notGraph(what string, resp *http.Response) error {
	return &Unreachable{usersync.Errorf(usersync.EUNAVAILABLE, "%s: the server at %s does not answer like Microsoft Graph (it answered %s%s); check --graph-url",
		what, c.cfg.GraphURL, resp.Status, contentType(resp))}
}

func contentType(resp *http.Response) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		return " with " + strings.SplitN(ct, ";", 2)[0]
	}
	return ""
}
