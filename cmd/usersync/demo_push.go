package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	graphemu "github.com/usersync/usersync/emulate/graph"
)

// demoPush is the demo's outbound part: a provisioner pushes a marked
// folder's group to the emulated tenant, then follows a member change.
func (a *app) demoPush(ctx context.Context, db, url string, emu *graphemu.Server, group graphemu.Group, clientID, secret string) error {
	w := a.stdout
	tenant := emu.Tenant()
	cmd := func(stdin string, args ...string) error {
		args = append([]string{"--db", db}, args...)
		fmt.Fprintf(w, "\n$ %s %s\n", selfCommand(), shellJoin(args))
		if code := run(ctx, args, strings.NewReader(stdin), w, a.stderr); code != 0 {
			return exitError{code}
		}
		return nil
	}
	var upns []string
	for _, id := range group.Members[2:6] { // users the pull brought into the directory
		u, _ := tenant.User(id)
		upns = append(upns, u.UserPrincipalName)
	}
	domain := upns[0][strings.Index(upns[0], "@")+1:]
	fmt.Fprintf(w, "\nPushing groups out: a provisioner follows the directory's change log and writes the groups under a\nmarked folder, and their members, to the (emulated) Entra tenant.\n")
	secretFile, err := demoSecretFile(db, secret)
	if err != nil {
		return err
	}
	run(ctx, []string{"--db", db, "provisioners", "delete", "demo-entra"}, strings.NewReader(""), &strings.Builder{}, &strings.Builder{}) // an earlier demo's
	steps := [][]string{
		{"provisioners", "create", "demo-entra", "--tenant-id", tenant.ID, "--client-id", clientID, "--client-secret-file", secretFile,
			"--domain", domain, "--authority-url", url, "--graph-url", url,
			"--group-jexl", `group.parentStem.displayExtension + " - " + group.displayExtension + (group.description ? ": " + group.description : "")`},
		{"groups", "create", "apps:crm:sales", "--description", "Sales team"},
		{"groups", "update", "apps:crm:sales", "--attr", "displayExtension=Sales"},
		append([]string{"groups", "members", "add", "apps:crm:sales"}, upns[:3]...),
		{"folders", "set-attr", "apps:crm", "displayExtension=CRM", "etc:attribute:office365:o365Sync=true"},
		{"provisioners", "run", "demo-entra"},
	}
	run(ctx, []string{"--db", db, "groups", "delete", "apps:crm:sales"}, strings.NewReader(""), &strings.Builder{}, &strings.Builder{})
	for _, s := range steps {
		if err := cmd("", s...); err != nil {
			return err
		}
	}
	show := func() {
		for _, g := range tenant.GroupsNamed("CRM - Sales: Sales team") {
			var names []string
			for _, id := range g.Members {
				u, _ := tenant.User(id)
				names = append(names, u.UserPrincipalName)
			}
			sort.Strings(names)
			fmt.Fprintf(w, "In the tenant: group %q (mailNickname %s) with members %s\n", g.DisplayName, g.MailNickname, strings.Join(names, ", "))
		}
		fmt.Fprintf(w, "Writes the emulator accepted so far (also at %s%s): %v\n", url, graphemu.CountsPath, emu.Writes())
	}
	show()
	fmt.Fprintf(w, "\nIn the directory: %s leaves apps:crm:sales, %s joins it.\n", upns[0], upns[3])
	for _, s := range [][]string{
		{"groups", "members", "remove", "apps:crm:sales", upns[0]},
		{"groups", "members", "add", "apps:crm:sales", upns[3]},
		{"provisioners", "run", "demo-entra"},
		{"provisioners", "status", "demo-entra"},
	} {
		if err := cmd("", s...); err != nil {
			return err
		}
	}
	show()
	fmt.Fprintf(w, "(usersync serve runs every provisioner on its schedule and as soon as the directory changes.)\n")
	return nil
}
