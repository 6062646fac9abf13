package entra

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/msgraph"
)

// NewClient builds the Graph client of provisioner p from its settings
// (hosts, proxy) and its client secret: secret when given, else the one
// stored in dir.
func NewClient(ctx context.Context, dir usersync.ProvisionerService, p *usersync.Provisioner, secret string, onRetry func(what, why string, wait time.Duration)) (*msgraph.Client, error) {
	if secret == "" {
		var err error
		if secret, err = dir.ProvisionerSecret(ctx, p.Name); err != nil {
			return nil, err
		}
	}
	c := p.Config
	cfg := msgraph.Config{AuthorityURL: c.AuthorityURL, GraphURL: c.GraphURL, Tenant: c.TenantID, ClientID: c.ClientID, ClientSecret: secret, OnRetry: onRetry,
		WriteQuota: c.WriteQuota, WriteWindow: time.Duration(c.WriteWindowSeconds) * time.Second}
	if c.ProxyType != "" {
		scheme := map[string]string{"http": "http", "socks": "socks5"}[c.ProxyType]
		pu := &url.URL{Scheme: scheme, Host: c.ProxyHost + ":" + strconv.Itoa(c.ProxyPort)}
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu), MaxIdleConnsPerHost: 8}}
		cfg.Proxy = c.ProxyType + " proxy " + pu.Host
	}
	return msgraph.New(cfg)
}
