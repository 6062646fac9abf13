package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/server"
	"github.com/usersync/usersync/sqlstore"
)

// demoSCIM serves the directory's SCIM endpoint on loopback and sends it
// what Microsoft Entra's provisioning service sends when a user and a group
// are assigned and the user is then disabled, printing each exchange.
func (a *app) demoSCIM(ctx context.Context, db string) error {
	w := a.stdout
	d, err := sqlstore.Open(ctx, db)
	if err != nil {
		return err
	}
	defer d.Close()
	admin := &usersync.User{Username: "scim-demo", Email: "it@example.com", Type: usersync.UserAdministrator, Enabled: true}
	if err := d.CreateUser(ctx, admin); usersync.ErrorCode(err) == usersync.ECONFLICT { // a directory named by --db, demoed before
		if admin, err = d.FindUserByUsername(ctx, admin.Username); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("demo: create the SCIM client's administrator: %w", err)
	}
	token, _, err := d.CreateToken(ctx, admin.ID, "demo")
	if err != nil {
		return fmt.Errorf("demo: create its API token: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: start the SCIM server on loopback: %w", err)
	}
	srv := &http.Server{Handler: server.New(d, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + server.SCIMPath
	fmt.Fprintf(w, "\n\nSCIM 2.0 endpoint (usersync serve, in-process) at %s; the client authenticates with an API token of administrator %s.\n", base, admin.Username)
	fmt.Fprintf(w, "What Microsoft Entra sends when a user and a group are assigned, then the user is disabled:\n\n")

	send := func(method, path, what string, body any) (map[string]any, error) {
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("demo: %s %s: %w", method, path, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		shown, _ := url.QueryUnescape(path)
		if what != "" {
			shown += "  (" + what + ")"
		}
		fmt.Fprintf(w, "  %-5s %-74s → %d %s\n", method, shown, resp.StatusCode, summarize(out))
		return out, nil
	}
	patch := func(ops ...map[string]any) map[string]any {
		return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}
	}
	const upn, objectID = "ada.lovelace@contoso.com", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"
	// Entra looks a user up first and creates it only when it is missing.
	found := func(list map[string]any) (string, bool) {
		if rs, _ := list["Resources"].([]any); len(rs) > 0 {
			id, _ := rs[0].(map[string]any)["id"].(string)
			return id, true
		}
		return "", false
	}
	list, err := send("GET", "/Users?filter="+url.QueryEscape(`userName eq "`+upn+`"`), "", nil)
	if err != nil {
		return err
	}
	uid, ok := found(list)
	if !ok {
		if uid, err = createdID(send("POST", "/Users", "", map[string]any{
			"schemas":    []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
			"externalId": objectID, "userName": upn, "active": true, "displayName": "Ada Lovelace",
			"name":   map[string]any{"givenName": "Ada", "familyName": "Lovelace"},
			"emails": []map[string]any{{"primary": true, "type": "work", "value": upn}},
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Engineering"},
		})); err != nil {
			return err
		}
	}
	if list, err = send("GET", "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "Analytical Engines"`), "", nil); err != nil {
		return err
	}
	gid, ok := found(list)
	if !ok {
		if gid, err = createdID(send("POST", "/Groups", "", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": "Analytical Engines", "externalId": "7c1e0b6e-5c1d-4d7e-9d5b-0e3c2f1a9b88"})); err != nil {
			return err
		}
	}
	for _, step := range []struct {
		path, what string
		body       any
	}{
		{"/Groups/" + gid, "Add members", patch(map[string]any{"op": "Add", "path": "members", "value": []map[string]any{{"value": uid}}})},
		{"/Users/" + uid, "Replace name.familyName, displayName", patch(map[string]any{"op": "Replace", "path": "name.familyName", "value": "King"},
			map[string]any{"op": "Replace", "path": "displayName", "value": "Ada King"})},
		{"/Users/" + uid, `Replace active "False": soft delete`, patch(map[string]any{"op": "Replace", "path": "active", "value": "False"})},
		{"/Users/" + uid, "a malformed path", patch(map[string]any{"op": "Replace", "path": `emails[type eq "work"`, "value": "x"})},
	} {
		if _, err := send("PATCH", step.path, step.what, step.body); err != nil {
			return err
		}
	}
	if id, err := strconv.ParseInt(uid, 10, 64); err == nil {
		if u, err := d.FindUserByID(ctx, id); err == nil {
			fmt.Fprintf(w, "\nIn the directory the soft-deleted user is %s (enabled %v); its SCIM client still sees and finds it as %s.\n", u.Username, u.Enabled, upn)
		}
	}
	fmt.Fprintf(w, "\nEvery change is in the change log with the client as its actor (scim:%s): usersync --db %s changes\n", admin.Username, db)
	return nil
}

// createdID is the id of a created resource.
func createdID(body map[string]any, err error) (string, error) {
	if err != nil {
		return "", err
	}
	id, ok := body["id"].(string)
	if !ok {
		return "", fmt.Errorf("demo: the SCIM server created nothing: %v", body)
	}
	return id, nil
}

// summarize is one line about a SCIM response body.
func summarize(body map[string]any) string {
	switch {
	case body == nil:
		return ""
	case body["Resources"] != nil:
		return fmt.Sprintf("totalResults %v", body["totalResults"])
	case body["scimType"] != nil:
		return fmt.Sprintf("%v: %v", body["scimType"], body["detail"])
	case body["detail"] != nil:
		return fmt.Sprint(body["detail"])
	}
	parts := []string{fmt.Sprintf("id %v", body["id"])}
	for _, k := range []string{"userName", "displayName", "active"} {
		if v, ok := body[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %v", k, v))
		}
	}
	return strings.Join(parts, ", ")
}
