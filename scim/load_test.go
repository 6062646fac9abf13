package scim_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/server"
)

// TestLoad runs concurrent SCIM clients creating, patching and deleting
// users and changing a shared group's members, through two server
// instances over the same directory (replicas side by side on
// PostgreSQL), then checks the directory holds exactly what the requests
// said. USERSYNC_LOAD_DURATION sets how long (default 8s per backend; the
// figures in the closing note come from 3m runs).
func TestLoad(t *testing.T) {
	duration := 8 * time.Second
	if v := os.Getenv("USERSYNC_LOAD_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("USERSYNC_LOAD_DURATION: %v", err)
		}
		duration = d
	}
	dirtest.Backends(t, func(t *testing.T, open dirtest.Opener) {
		d := open(t)
		admin, _ := start(t, d)
		// A second instance: on PostgreSQL, a second connection pool on the
		// same database, as a replica would have.
		var d2 usersync.Directory = d
		if strings.Contains(t.Name(), "postgres") {
			d2 = dirtest.Reopen(t, d)
		}
		srv2 := httptest.NewServer(server.New(d2, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{}))
		t.Cleanup(srv2.Close)
		replica := &client{t, srv2.URL + server.SCIMPath, admin.token}

		_, g, _ := admin.do("POST", "/Groups", map[string]any{"displayName": "Load"})
		gid := g["id"].(string)
		const workers = 16
		type state struct {
			id, given string
			member    bool
		}
		models := make([]map[string]*state, workers)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		counts := map[string]int{}
		deadline := time.Now().Add(duration)
		for w := 0; w < workers; w++ {
			models[w] = map[string]*state{}
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewSource(int64(w)))
				c := admin
				if w%2 == 1 {
					c = replica
				}
				c = &client{t: goroutineT{&mu, &failures}, base: c.base, token: c.token} // no t.Fatal from goroutines
				fail := func(format string, args ...any) {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("worker %d: ", w)+fmt.Sprintf(format, args...))
					mu.Unlock()
				}
				for n := 0; time.Now().Before(deadline); n++ {
					name := fmt.Sprintf("load-%02d-%03d@example.com", w, r.Intn(40))
					st := models[w][name]
					op := "create"
					if st != nil {
						op = []string{"patch", "patch", "delete", "join", "leave"}[r.Intn(5)]
					}
					var code int
					switch op {
					case "create":
						var u map[string]any
						code, u, _ = c.do("POST", "/Users", entraUser(name, "x-"+name))
						if code == 201 {
							models[w][name] = &state{id: u["id"].(string), given: "Grace"}
						}
					case "patch":
						given := fmt.Sprintf("G%d", n)
						code, _, _ = c.do("PATCH", "/Users/"+st.id, ops(map[string]any{"op": "Replace", "path": "name.givenName", "value": given}))
						if code == 200 {
							st.given = given
						}
					case "delete":
						code, _, _ = c.do("DELETE", "/Users/"+st.id, nil)
						if code == 204 {
							delete(models[w], name)
						}
					case "join", "leave":
						o := "Add"
						if op == "leave" {
							o = "Remove"
						}
						code, _, _ = c.do("PATCH", "/Groups/"+gid, ops(map[string]any{"op": o, "path": "members", "value": []map[string]any{{"value": st.id}}}))
						if code == 200 || code == 204 { // RFC 7644 §3.5.2: either
							st.member = op == "join"
						}
					}
					mu.Lock()
					counts[op]++
					mu.Unlock()
					if code >= 300 {
						fail("%s %s: status %d", op, name, code)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d failures, first: %s", len(failures), failures[0])
		}
		// The directory must hold exactly the model.
		ctx := context.Background()
		var want, wantMembers []string
		for _, m := range models {
			for name, st := range m {
				want = append(want, name+"|"+st.given)
				if st.member {
					wantMembers = append(wantMembers, name)
				}
			}
		}
		users, _, err := d.FindUsers(ctx, usersync.UserFilter{Search: "load-"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range users {
			got = append(got, u.Username+"|"+u.FirstName)
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("users: %d in the directory, %d expected", len(got), len(want))
		}
		grp, _ := d.FindGroupByName(ctx, "Load")
		members, _, _ := d.Members(ctx, grp.ID, 0, 0)
		var gotMembers []string
		for _, u := range members {
			gotMembers = append(gotMembers, u.Username)
		}
		sort.Strings(wantMembers)
		sort.Strings(gotMembers)
		if strings.Join(gotMembers, ",") != strings.Join(wantMembers, ",") {
			t.Fatalf("group members: %d in the directory, %d expected", len(gotMembers), len(wantMembers))
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		t.Logf("%v: %d requests (%v), %d users and %d members at the end", duration, total, counts, len(got), len(gotMembers))
	})
}
