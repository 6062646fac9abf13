package okta

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync"
	oktaemu "github.com/usersync/usersync/emulate/okta"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/internal/netfail"
	"github.com/usersync/usersync/pull"
)

// A mistyped attribute (Okta answers profiles without it, no error) fails
// the group, naming the option and the likely attribute, as o365 does.
func TestMistypedAttributes(t *testing.T) {
	org := oktaemu.Generate(5, 40, 2)
	_, srv := start(t, org, oktaemu.Options{})
	c := newClient(t, Config{Host: srv.URL, Token: token})
	d := dirtest.SQLite(t)
	ctx := context.Background()
	_, err := pull.Sync(ctx, d, c.Source(Mapping{UsernameAttr: "logn"}), "Everyone", pull.Options{AutoCreate: pull.CreateAll})
	if usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), `--username-attr "logn"`) || !strings.Contains(err.Error(), `did you mean "login"?`) {
		t.Fatalf("username attribute: %v", err)
	}
	if _, n, _ := d.FindUsers(ctx, usersync.UserFilter{}); n != 0 {
		t.Fatalf("%d users written", n)
	}
	// The other mapping flags are checked against the org's user schema
	// before anything is read: --first-name-attr firstname made users
	// with empty first names and --email-attr emial users without email,
	// with a warning at most.
	for _, m := range []struct {
		mapping    Mapping
		flag, want string
	}{
		{Mapping{FirstNameAttr: "firstname"}, `--first-name-attr "firstname"`, `"firstName"`},
		{Mapping{EmailAttr: "emial"}, `--email-attr "emial"`, `"email"`},
		{Mapping{LastNameAttr: "lastNme"}, `--last-name-attr "lastNme"`, `"lastName"`},
	} {
		_, err := pull.Sync(ctx, d, c.Source(m.mapping), "Everyone", pull.Options{AutoCreate: pull.CreateAll})
		if usersync.ErrorCode(err) != usersync.EINVALID || !strings.Contains(err.Error(), m.flag) || !strings.Contains(err.Error(), "did you mean "+m.want) {
			t.Fatalf("%+v: %v", m.mapping, err)
		}
	}
	if _, n, _ := d.FindUsers(ctx, usersync.UserFilter{}); n != 0 {
		t.Fatalf("%d users written", n)
	}
	// An attribute of the org's own (a custom one) is accepted.
	if _, err := pull.Sync(ctx, d, c.Source(Mapping{EmailAttr: "secondEmail"}), "Everyone", pull.Options{AutoCreate: pull.CreateAll}); err != nil {
		t.Fatal(err)
	}
}

// A host that is not Okta, or cannot be reached, is named so — quickly.
func TestNotOktaOrUnreachable(t *testing.T) {
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	c := newClient(t, Config{Host: web.URL, Token: token})
	if _, err := c.FindGroup(context.Background(), "G"); err == nil || !strings.Contains(err.Error(), "does not answer like Okta") {
		t.Fatalf("web server: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := "http://" + ln.Addr().String()
	ln.Close()
	var waited time.Duration
	c = newClient(t, Config{Host: addr, Token: token, Sleep: func(ctx context.Context, d time.Duration) error { waited += d; return nil }})
	if _, err := c.FindGroup(context.Background(), "G"); err == nil || !strings.Contains(err.Error(), "connection refused") || waited > 15*time.Second || waited == 0 {
		t.Fatalf("refused: %v after %s", err, waited)
	}
}

// A server that accepts the connection and never answers is tried
// netfail.MaxTimeouts times, each bounded by the response timeout, then
// named; it was retried until the waits between tries added up to 15 s,
// a whole timeout per try, and a pull waited over 150 s saying nothing.
func TestSilentServerGivesUp(t *testing.T) {
	s, err := netfail.NewSilent()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hc := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 200 * time.Millisecond}}
	c := newClient(t, Config{Host: "http://" + s.Addr, Token: token, HTTPClient: hc, Sleep: func(ctx context.Context, d time.Duration) error { return nil }})
	_, err = c.FindGroup(context.Background(), "G")
	if usersync.ErrorCode(err) != usersync.EUNAVAILABLE || !strings.Contains(err.Error(), "no answer in time") || !strings.Contains(err.Error(), "2 tries") {
		t.Fatalf("silent server: %v", err)
	}
	if n := s.Accepted.Load(); n != netfail.MaxTimeouts {
		t.Fatalf("%d tries, want %d", n, netfail.MaxTimeouts)
	}
}
