package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/pgtest"
	"github.com/usersync/usersync/sqlstore"
)

// Two serve processes on one PostgreSQL database are one service: SCIM
// writes to either are read from the other, the command line works through
// either, and the group provisioner that both run keeps one cursor and
// makes each Entra group once.
func TestReplicasShareSCIMAndProvisioners(t *testing.T) {
	db := pgtest.NewDatabase(t)
	t.Setenv(sqlstore.KeyEnv, pgtest.SecretKey) // the replicas inherit it
	emu, _, flags := pushEmulator(t, 12, graphemu.Options{})
	ok(t, cli(t, db, emuSecret+"\n", append([]string{"provisioners", "create", "o365", "--client-secret-file", "-"}, flags...)...))
	ok(t, cli(t, db, "", "users", "create", "--username", "scim-admin", "--email", "a@x.example", "--type", "administrator"))
	token := strings.TrimSpace(ok(t, cli(t, db, "", "tokens", "create", "--user", "scim-admin")).stdout)

	var bases []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		child(t, "--db", db, "serve", "--listen", addr, "--no-schedules")
		bases = append(bases, "http://"+addr)
	}
	for _, b := range bases {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if resp, err := http.Get(b + "/readyz"); err == nil && resp.StatusCode == 200 {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s is not ready", b)
			}
		}
	}
	scim := func(base, method, path string, body any) (int, map[string]any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+"/scim/v2"+path, bytes.NewReader(raw))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	// Users made on alternate replicas; each group names users made on both.
	var ids []any
	for i := range 8 {
		code, u := scim(bases[i%2], "POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
			"userName": fmt.Sprintf("u%03d@%s", i, pushTenant), "emails": []any{map[string]any{"value": fmt.Sprintf("u%03d@%s", i, pushTenant), "primary": true}}})
		if code != 201 {
			t.Fatalf("create user %d on replica %d: %d %v", i, i%2, code, u)
		}
		ids = append(ids, u["id"])
	}
	if code, _ := scim(bases[1], "POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "U000@" + pushTenant}); code != 409 {
		t.Fatalf("a user made on the other replica, again: %d", code)
	}
	groupIDs := map[string]string{}
	for i, name := range []string{"apps:team-a", "apps:team-b"} {
		var members []any
		for _, id := range ids[i*4 : i*4+4] {
			members = append(members, map[string]any{"value": id})
		}
		code, g := scim(bases[i], "POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name, "members": members})
		if code != 201 {
			t.Fatalf("create %s on replica %d: %d %v", name, i, code, g)
		}
		groupIDs[name] = g["id"].(string)
		// A group a SCIM client makes keeps its name as sent and is in no
		// folder: the administrator marks it for the provisioner.
		ok(t, cli(t, db, "", "groups", "update", name, "--attr", usersync.DefaultSyncAttribute+"=x"))
	}
	// Read on the replica that did not write it.
	code, g := scim(bases[0], "GET", "/Groups/"+groupIDs["apps:team-b"], nil)
	if ms, _ := g["members"].([]any); code != 200 || len(ms) != 4 {
		t.Fatalf("team-b read on the other replica: %d %v", code, g)
	}
	// A change on one replica, then on the other, with the version read.
	code, g = scim(bases[1], "PATCH", "/Groups/"+groupIDs["apps:team-a"], map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": ids[7]}}}}})
	if code != 200 && code != 204 { // RFC 7644 §3.5.2: either
		t.Fatalf("PATCH on replica 1: %d %v", code, g)
	}

	// Both replicas run the provisioner; Entra gets each group once.
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, b := emu.Tenant().GroupsNamed("apps:team-a"), emu.Tenant().GroupsNamed("apps:team-b")
		if len(a) == 1 && len(b) == 1 && len(a[0].Members) == 5 && len(b[0].Members) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Entra has team-a %+v and team-b %+v", a, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		var st struct {
			Cursor     int64 `json:"cursor"`
			LastChange int64 `json:"lastChange"`
		}
		json.Unmarshal([]byte(ok(t, cli(t, "", "", "--server", bases[1], "--token", token, "-o", "json", "provisioners", "status", "o365")).stdout), &st)
		if st.Cursor == st.LastChange {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provisioner's one cursor stays at %d of %d", st.Cursor, st.LastChange)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := len(emu.Tenant().Groups()); n != 2 {
		t.Fatalf("Entra has %d groups, want 2: one replica made a group the other had made", n)
	}
}
