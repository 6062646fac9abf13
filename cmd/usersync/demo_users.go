package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	graphemu "github.com/usersync/usersync/emulate/graph"
)

// demoUsers is the demo's Office 365 part (seed 004): a role, the seed's
// mapping, a user provisioner with approval of creates, the seed's rule,
// a check, approval, and what the tenant holds after.
func (a *app) demoUsers(ctx context.Context, db, url string, emu *graphemu.Server, pulled, clientID, secret string) error {
	w := a.stdout
	tenant := emu.Tenant()
	cmd := func(args ...string) (string, error) {
		args = append([]string{"--db", db}, args...)
		fmt.Fprintf(w, "\n$ %s %s\n", selfCommand(), shellJoin(args))
		var out strings.Builder
		code := run(ctx, args, strings.NewReader(""), &out, a.stderr)
		fmt.Fprint(w, out.String())
		if code != 0 {
			return "", exitError{code}
		}
		return out.String(), nil
	}
	quiet := func(args ...string) { // an earlier demo's leftovers
		run(ctx, append([]string{"--db", db}, args...), strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	}
	fmt.Fprintf(w, "\nProvisioning users into Office 365 (OneLogin's flow): a mapping gives the role \"Office 365\" to the\n"+
		"members of the group \"Office 365\"; a user provisioner creates them in the tenant, and a rule licenses Josh Ames.\n")
	secretFile, err := demoSecretFile(db, secret)
	if err != nil {
		return err
	}
	quiet("provisioners", "delete", "demo-o365")
	quiet("mappings", "delete", "Office 365 Mapping")
	quiet("roles", "delete", "Office 365")
	quiet("groups", "delete", "Office 365")
	quiet("users", "delete", "josh.ames@contoso.example")
	quiet("users", "delete", "ann.lee@contoso.example")
	steps := [][]string{
		{"users", "create", "--username", "josh.ames@contoso.example", "--email", "josh.ames@contoso.example", "--first-name", "Josh", "--last-name", "Ames", "--attr", "usageLocation=US"},
		{"users", "create", "--username", "ann.lee@contoso.example", "--email", "ann.lee@contoso.example", "--first-name", "Ann", "--last-name", "Lee", "--attr", "usageLocation=US"},
		{"groups", "create", "Office 365"},
		{"groups", "members", "add", "Office 365", "josh.ames@contoso.example", "ann.lee@contoso.example", pulled},
		{"roles", "create", "Office 365"},
		{"mappings", "create", "Office 365 Mapping", "--if", `memberOf co "Office 365"`, "--set-role", "Office 365"},
		{"provisioners", "create", "demo-o365", "--kind", "users", "--scope-role", "Office 365", "--approve", "create", "--deprovision", "suspend",
			"--param", `usageLocation=user.attributes.usageLocation ?: "US"`,
			"--tenant-id", tenant.ID, "--client-id", clientID, "--client-secret-file", secretFile, "--domain", "contoso.example", "--authority-url", url, "--graph-url", url},
		{"provisioners", "entitlements", "demo-o365", "--refresh"},
		{"provisioners", "rules", "add", "demo-o365", "Josh Ames licenses", "--if", `displayName eq "Josh Ames"`,
			"--license", "YAMMER_ENTERPRISE", "--license", "SHAREPOINTWAC", "--license", "OFFICESUBSCRIPTION"},
		{"provisioners", "rules", "check", "demo-o365", "Josh Ames licenses", "--user", "josh.ames@contoso.example,ann.lee@contoso.example"},
		{"provisioners", "run", "demo-o365"},
		{"approvals", "list"},
	}
	for _, s := range steps {
		if _, err := cmd(s...); err != nil {
			return err
		}
	}
	var list strings.Builder
	if code := run(ctx, []string{"--db", db, "-o", "json", "approvals", "list", "--provisioner", "demo-o365"}, strings.NewReader(""), &list, a.stderr); code != 0 {
		return exitError{code}
	}
	out := list.String()
	var pending []struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &pending); err != nil {
		return err
	}
	approve := []string{"approvals", "approve"}
	for _, p := range pending {
		approve = append(approve, fmt.Sprint(p.ID))
	}
	if _, err := cmd(approve...); err != nil {
		return err
	}
	for _, upn := range []string{"josh.ames@contoso.example", "ann.lee@contoso.example", pulled} {
		u, ok := tenant.UserByUPN(upn)
		if !ok {
			return fmt.Errorf("demo: %s is not in the tenant", upn)
		}
		fmt.Fprintf(w, "In the tenant: %s (%s), enabled %v, %d licenses, usage location %s\n", u.UserPrincipalName, u.DisplayName, u.AccountEnabled, len(u.Licenses), u.UsageLocation)
	}
	fmt.Fprintf(w, "(%s was in the tenant already: adopted, not created again.)\n", pulled)
	fmt.Fprintf(w, "\nAnn leaves the group: she leaves the role, and the policy suspends her.\n")
	for _, s := range [][]string{
		{"groups", "members", "remove", "Office 365", "ann.lee@contoso.example"},
		{"provisioners", "run", "demo-o365"},
		{"provisioners", "log", "demo-o365", "--user", "ann.lee@contoso.example"},
	} {
		if _, err := cmd(s...); err != nil {
			return err
		}
	}
	return nil
}
