package msgraph

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/netfail"
)

// recordWaits makes cfg record its retries instead of sleeping.
func recordWaits(cfg *Config) (retries func() []string, waited func() time.Duration) {
	var mu sync.Mutex
	var why []string
	var total time.Duration
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		total += d
		mu.Unlock()
		return nil
	}
	cfg.OnRetry = func(what, reason string, wait time.Duration) {
		mu.Lock()
		why = append(why, reason)
		mu.Unlock()
	}
	return func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), why...) },
		func() time.Duration { mu.Lock(); defer mu.Unlock(); return total }
}

// A plain web server at --graph-url (or --authority-url) is named as not
// Graph at once: no retries, no "group not found".
func TestNotGraphServer(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(404)
		w.Write([]byte("<html>Not Found</html>"))
	}))
	defer web.Close()
	_, cfg := start(t, graphemu.Generate(1, 5, 1), graphemu.Options{})
	for _, c := range []struct {
		cfg  func(Config) Config
		says string
	}{
		{func(c Config) Config { c.GraphURL = web.URL; return c }, "does not answer like Microsoft Graph"},
		{func(c Config) Config { c.AuthorityURL = web.URL; return c }, "does not answer like the Microsoft identity platform"},
	} {
		conf := c.cfg(cfg)
		retries, _ := recordWaits(&conf)
		_, err := newClient(t, conf).FindGroup(context.Background(), "All Users")
		if err == nil || !strings.Contains(err.Error(), c.says) || strings.Contains(err.Error(), "not found in tenant") || len(retries()) != 0 {
			t.Fatalf("%v (retries %v)", err, retries())
		}
	}
}

// A refused connection is retried, each retry told, for at most the
// connection budget (~15 s of waiting), then named.
func TestRefusedConnectionGivesUp(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := Config{AuthorityURL: addr, GraphURL: addr, Tenant: "t", ClientID: "c", ClientSecret: "s"}
	retries, waited := recordWaits(&cfg)
	_, err := newClient(t, cfg).FindGroup(context.Background(), "G")
	if usersync.ErrorCode(err) != usersync.EUNAVAILABLE || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "tried for") {
		t.Fatalf("refused: %v", err)
	}
	if n := len(retries()); n < 3 || waited() > 15*time.Second || retries()[0] != "connection refused" {
		t.Fatalf("%d retries, %s waited: %v", n, waited(), retries())
	}
}

// A TLS failure (a certificate the client does not trust) fails at once.
func TestTLSFailureAtOnce(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	cfg := Config{AuthorityURL: srv.URL, GraphURL: srv.URL, Tenant: "t", ClientID: "c", ClientSecret: "s"}
	retries, _ := recordWaits(&cfg)
	_, err := newClient(t, cfg).FindGroup(context.Background(), "G")
	if err == nil || !strings.Contains(err.Error(), "TLS certificate is not accepted") || len(retries()) != 0 {
		t.Fatalf("%v (retries %v)", err, retries())
	}
}

// A server that accepts the connection and never answers is tried
// netfail.MaxTimeouts times, each bounded by the response timeout, then
// named (it was retried a whole timeout at a time until 15 s of waits
// between tries had passed).
func TestSilentServerGivesUp(t *testing.T) {
	s, err := netfail.NewSilent()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := "http://" + s.Addr
	cfg := Config{AuthorityURL: addr, GraphURL: addr, Tenant: "t", ClientID: "c", ClientSecret: "s",
		HTTPClient: &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 200 * time.Millisecond}}}
	recordWaits(&cfg)
	_, err = newClient(t, cfg).FindGroup(context.Background(), "G")
	if usersync.ErrorCode(err) != usersync.EUNAVAILABLE || !strings.Contains(err.Error(), "no answer in time") || !strings.Contains(err.Error(), "2 tries") {
		t.Fatalf("silent server: %v", err)
	}
	if n := s.Accepted.Load(); n != netfail.MaxTimeouts {
		t.Fatalf("%d tries, want %d", n, netfail.MaxTimeouts)
	}
}
