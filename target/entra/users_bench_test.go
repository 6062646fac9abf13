package entra

import (
	"fmt"
	"testing"
	"time"

	"github.com/usersync/usersync"
	graphemu "github.com/usersync/usersync/emulate/graph"
	"github.com/usersync/usersync/internal/benchtest"
	"github.com/usersync/usersync/internal/dirtest"
	"github.com/usersync/usersync/msgraph"
	"github.com/usersync/usersync/rules"
)

// userBench is a SQLite directory of n users user000000@example.com, … all
// in group "Office 365" (the seed's mapping gives them the scope role), an
// emulated tenant with verified domain example.com, and a user
// provisioner whose rule gives everyone a license and a group.
func userBench(b *testing.B, n int, o graphemu.Options) (*env, *usersync.Provisioner) {
	b.Helper()
	e := newEnvTenant(b, o)
	e.dir, e.now = dirtest.SQLite(b), time.Now()
	e.tenant.SetDomains("example.com")
	e.tenant.AddSKU(graphemu.SKU{ID: "sku-pro", PartNumber: "OFFICESUBSCRIPTION", Enabled: n})
	e.tenant.AddSKU(graphemu.SKU{ID: "sku-yam", PartNumber: "YAMMER_ENTERPRISE", Enabled: n})
	e.tenant.AddGroup(graphemu.Group{ID: "grp-all", DisplayName: "All Staff", MailNickname: "allstaff"})
	benchtest.Users(b, e.dir, n)
	g := &usersync.Group{Name: "Office 365"}
	if err := e.dir.CreateGroup(ctx, g); err != nil {
		b.Fatal(err)
	}
	users, _, err := e.dir.FindUsers(ctx, usersync.UserFilter{Unordered: true})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	if _, err := e.dir.AddMembers(ctx, g.ID, ids); err != nil {
		b.Fatal(err)
	}
	if err := e.dir.CreateRole(ctx, &usersync.Role{Name: "Office 365"}); err != nil {
		b.Fatal(err)
	}
	if err := e.dir.CreateMapping(ctx, &usersync.Mapping{Name: "Office 365 Mapping", Condition: `memberOf co "Office 365"`, Roles: []string{"Office 365"}}); err != nil {
		b.Fatal(err)
	}
	up := &usersync.UserProvisioning{ScopeRoles: []string{"Office 365"}, Parameters: map[string]string{"usageLocation": `"US"`}}
	p := &usersync.Provisioner{Name: "o365users", Kind: usersync.ProvisionerUsers,
		Config: usersync.ProvisionerConfig{TenantID: tenantID, ClientID: "app-1", Domain: "example.com", Users: up}}
	c, err := msgraph.New(e.cfg)
	if err != nil {
		b.Fatal(err)
	}
	if up.Entitlements, err = RefreshEntitlements(ctx, c); err != nil {
		b.Fatal(err)
	}
	up.Rules = []usersync.UserRule{{Name: "everyone", Licenses: []usersync.License{{SKU: "OFFICESUBSCRIPTION"}}, Groups: []string{"All Staff"}}}
	if err := e.dir.CreateProvisioner(ctx, p, secret); err != nil {
		b.Fatal(err)
	}
	e.cfg.Sleep = nil // real waits: Retry-After and pacing count
	return e, p
}

func (e *env) userProvisioner(p *usersync.Provisioner) *Users {
	c, err := msgraph.New(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	x, err := NewUsers(e.dir, c, p)
	if err != nil {
		e.t.Fatal(err)
	}
	return x
}

// BenchmarkUsersEnterScope: 10,000 users enter scope at once and are
// created, licensed and put in a group. Reports Graph requests and writes
// per user; paced at the write quota scaled ×10 (Graph's 3,000 per 150 s
// made 3,000 per 15 s, 200 writes a second) it reports the wall time
// against the bound writes ÷ 200/s.
//
//	go test ./target/entra -run '^$' -bench BenchmarkUsersEnterScope -benchtime 1x
func BenchmarkUsersEnterScope(b *testing.B) {
	const n = 10000
	for _, paced := range []bool{false, true} {
		b.Run(fmt.Sprintf("n=%d/paced=%v", n, paced), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				o := graphemu.Options{}
				if paced {
					o.WriteBudget, o.WriteWindow = 3000, 15*time.Second
				}
				e, p := userBench(b, n, o)
				if paced {
					e.cfg.WritesPerSecond = 200
				} else {
					e.cfg.WritesPerSecond = -1
				}
				x := e.userProvisioner(p)
				before, writesBefore := e.emu.Requests()["http"], total(e.emu.Writes())
				b.StartTimer()
				start := time.Now()
				r, err := x.Run(ctx, UserOptions{})
				took := time.Since(start)
				b.StopTimer()
				if err != nil || r.Failed != 0 || r.Counts["create:done"] != n || r.Counts["licenses:done"] != n || r.Counts["groups:done"] != n {
					b.Fatalf("run: %v %+v", err, r.Counts)
				}
				if g, _ := e.tenant.Group("grp-all"); len(g.Members) != n {
					b.Fatalf("All Staff has %d members", len(g.Members))
				}
				reqs, writes := e.emu.Requests()["http"]-before, total(e.emu.Writes())-writesBefore
				b.ReportMetric(float64(reqs)/n, "requests/user")
				b.ReportMetric(float64(writes)/n, "writes/user")
				b.ReportMetric(took.Seconds(), "wall-s")
				if paced {
					bound := float64(writes) / 200
					b.ReportMetric(bound, "bound-s")
					b.ReportMetric(took.Seconds()/bound, "wall/bound")
					b.ReportMetric(float64(writes)/20, "real-quota-s")
				}
				b.ReportMetric(float64(e.emu.Requests()["429"]), "429s")
			}
		})
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// provisioned records every user of the bench directory as provisioned
// with exactly what the provisioner would send now, the license and the
// group included: a run after it has nothing to do.
func provisioned(b *testing.B, e *env, x *Users) {
	b.Helper()
	scope, err := ScopeCondition(ctx, e.dir, x.c.ScopeRoles)
	if err != nil {
		b.Fatal(err)
	}
	users, _, err := e.dir.FindUsers(ctx, usersync.UserFilter{Where: scope, Unordered: true})
	if err != nil {
		b.Fatal(err)
	}
	all := make([]map[int64]bool, len(x.rules))
	for i := range all {
		all[i] = map[int64]bool{}
		for _, u := range users {
			all[i][u.ID] = true
		}
	}
	r := &userRun{Users: x}
	var ps []*usersync.Provisioned
	for _, u := range users {
		d := r.desire(u, all)
		ps = append(ps, &usersync.Provisioned{Provisioner: x.p.Name, UserID: u.ID, Username: u.Username, RemoteID: fmt.Sprint("remote-", u.ID),
			State: usersync.StateActive, Sent: d.props, Licenses: sortedKeys(d.licenses), Groups: sortedKeys(d.groups)})
	}
	if err := e.dir.SaveProvisioned(ctx, ps...); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRuleChangePlan: 100,000 provisioned users, and a rule change
// that touches some or all of them; the plan (a dry run: the scope and
// rule queries, the comparison with what was sent) is timed. Reports the
// users the plan would write: exactly those the change touches.
//
//	go test ./target/entra -run '^$' -bench BenchmarkRuleChangePlan -benchtime 3x
func BenchmarkRuleChangePlan(b *testing.B) {
	const n = 100000
	e, p := userBench(b, n, graphemu.Options{})
	provisioned(b, e, e.userProvisioner(p))
	if r, err := e.userProvisioner(p).Run(ctx, UserOptions{DryRun: true}); err != nil || len(r.Counts) != 0 {
		b.Fatalf("before the change the plan is not empty: %v %+v", err, r.Counts)
	}
	for _, c := range []struct {
		name, cond string
		touched    int
	}{
		{"touches=all", ``, n},
		{"touches=11111", `lastName sw "Last1"`, 11111}, // Last1, Last10…Last19, Last100…, Last1000…, Last10000…
	} {
		b.Run(c.name, func(b *testing.B) {
			q := *p
			cfg := *p.Config.Users
			cfg.Rules = append([]usersync.UserRule(nil), cfg.Rules...)
			cfg.Rules = append(cfg.Rules, usersync.UserRule{Name: "yammer", Condition: c.cond, Licenses: []usersync.License{{SKU: "YAMMER_ENTERPRISE"}}})
			q.Config.Users = &cfg
			x := e.userProvisioner(&q)
			b.ResetTimer()
			var r *UserResult
			for i := 0; i < b.N; i++ {
				var err error
				if r, err = x.Run(ctx, UserOptions{DryRun: true}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			written := r.Counts["licenses:planned"]
			if written != c.touched || len(r.Counts) != 1 {
				b.Fatalf("the plan writes %d users (%v), want %d: those the new rule holds for", written, r.Counts, c.touched)
			}
			b.ReportMetric(float64(written), "users-written")
			b.ReportMetric(float64(r.InScope), "in-scope")
		})
	}
}

// BenchmarkRuleCheck: "Check rule with users" for 100 users of a
// 100,000-user directory, the seed's kind of condition.
//
//	go test ./target/entra -run '^$' -bench BenchmarkRuleCheck
func BenchmarkRuleCheck(b *testing.B) {
	e, _ := userBench(b, 100000, graphemu.Options{})
	users, _, err := e.dir.FindUsers(ctx, usersync.UserFilter{Limit: 100, Offset: 5000})
	if err != nil || len(users) != 100 {
		b.Fatal(err)
	}
	c, err := rules.Parse(`displayName eq "First Last5042" or (memberOf co "Office 365" and not (lastName ew "7"))`)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var v []rules.Verdict
	for i := 0; i < b.N; i++ {
		if v, err = c.Check(ctx, e.dir, users, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	holds := 0
	for _, x := range v {
		if x.Holds {
			holds++
		}
	}
	b.ReportMetric(float64(holds), "mapped")
}
