package msgraph

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"

	graphemu "github.com/usersync/usersync/emulate/graph"
)

func writeTenant(n int) *graphemu.Tenant {
	t := graphemu.NewTenant("contoso.example")
	for i := 0; i < n; i++ {
		t.AddUser(graphemu.User{ID: fmt.Sprintf("u%02d", i), UserPrincipalName: fmt.Sprintf("u%02d@contoso.example", i)})
	}
	return t
}

// Adds of members that are there already (a replayed batch) cost a read
// and one more PATCH, not a split of every chunk down to single adds; a
// bad reference is still found by splitting, and fails alone.
func TestAddMembersSkipsExistingAndFindsBadReference(t *testing.T) {
	tenant := writeTenant(40)
	emu, cfg := start(t, tenant, graphemu.Options{})
	cfg.WritesPerSecond = -1
	c := newClient(t, cfg)
	ctx := context.Background()
	g, err := c.CreateGroup(ctx, GroupSpec{DisplayName: "g", MailNickname: "g"}, []string{"u00", "u01", "u02", "u03", "u04"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, fmt.Sprintf("u%02d", i))
	}
	before := emu.Requests()["http"]
	failed, err := c.AddMembers(ctx, g.ID, ids)
	if err != nil || len(failed) != 0 {
		t.Fatalf("add: %v %v", failed, err)
	}
	if n := emu.Requests()["http"] - before; n != 3 {
		t.Fatalf("%d requests for 20 adds of which 5 were members already; want 3 (refused PATCH, read, PATCH)", n)
	}
	got, _ := c.MemberIDs(ctx, g.ID)
	if len(got) != 20 {
		t.Fatalf("%d members, want 20", len(got))
	}

	more := []string{"u20", "u21", "no-such-user", "u22"}
	failed, err = c.AddMembers(ctx, g.ID, more)
	if err != nil || len(failed) != 1 || failed["no-such-user"] == nil {
		t.Fatalf("bad reference: %v %v", failed, err)
	}
	got, _ = c.MemberIDs(ctx, g.ID)
	sort.Strings(got)
	if len(got) != 23 {
		t.Fatalf("the good references of the chunk were not added: %v", got)
	}

	// Removals: 404 (not a member) is done; 22 removals are two $batch requests.
	before = emu.Requests()["batch"]
	failed, err = c.RemoveMembers(ctx, g.ID, append(got[:21], "u39"))
	if err != nil || len(failed) != 0 || emu.Requests()["batch"]-before != 2 {
		t.Fatalf("remove: %v %v, %d batches", failed, err, emu.Requests()["batch"]-before)
	}
	if got, _ := c.MemberIDs(ctx, g.ID); len(got) != 2 {
		t.Fatalf("after removals: %v", got)
	}
}

// A create answered 5xx is not sent again at once: it may have been done.
func TestCreateNotRetriedAfter5xx(t *testing.T) {
	posts := 0
	emu, cfg := start(t, writeTenant(1), graphemu.Options{Fault: func(r *http.Request) int {
		if r.Method == http.MethodPost && r.URL.Path == "/v1.0/groups" {
			posts++
			return http.StatusBadGateway
		}
		return 0
	}})
	_ = emu
	c := newClient(t, cfg)
	_, err := c.CreateGroup(context.Background(), GroupSpec{DisplayName: "g", MailNickname: "g"}, nil)
	if err == nil || posts != 1 {
		t.Fatalf("posts %d, err %v", posts, err)
	}
}

// The next page's link is read before the page is decoded; a value that
// merely looks like the key is not taken for it.
func TestPeekNextLink(t *testing.T) {
	for body, want := range map[string]string{
		`{"@odata.nextLink":"https://g/v1.0/x?$skiptoken=a\u0026b","value":[]}`:              "https://g/v1.0/x?$skiptoken=a&b",
		`{"value":[{"displayName":"@odata.nextLink"}],"@odata.nextLink" : "https://g/next"}`: "",
		`{"value":[{"id":"1"}], "@odata.nextLink": "https://g/next"}`:                        "https://g/next",
		`{"value":[]}`:        "",
		`{"@odata.nextLink":`: "",
	} {
		if got := peekNextLink([]byte(body)); got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
	}
}

func FuzzPeekNextLink(f *testing.F) {
	f.Add(`{"@odata.nextLink":"https://g/next","value":[]}`)
	f.Fuzz(func(t *testing.T, body string) { peekNextLink([]byte(body)) })
}
