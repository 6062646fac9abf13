package entra

import (
	"context"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/jexl"
)

// EvalGroup evaluates a group expression of provisioner p on a directory
// group, with the variables groupJexl sees (the seed's gsh snippet as a
// command).
func EvalGroup(ctx context.Context, dir usersync.Directory, p *usersync.Provisioner, group, expr string) (string, error) {
	prog, err := jexl.CompileShaped(expr, shapes, groupVars...)
	if err != nil {
		return "", usersync.Errorf(usersync.EINVALID, "%v", err)
	}
	g, err := dir.FindGroupByName(ctx, group)
	if err != nil {
		return "", err
	}
	vars, err := GroupVars(ctx, dir, g, nil)
	if err != nil {
		return "", err
	}
	c := p.Config
	return evalErr(prog.Eval(map[string]any{"group": vars, "consumerName": p.Name, "tenantId": c.TenantID, "domain": c.Domain, "idAttribute": c.IDAttribute}))
}

// evalErr words an expression that failed as it ran (a bad regular
// expression, a method on the wrong kind of value) as what it is: an
// invalid expression, never an internal error.
func evalErr(v string, err error) (string, error) {
	if err != nil {
		return "", usersync.Errorf(usersync.EINVALID, "%v", err)
	}
	return v, nil
}

// EvalSubject evaluates a subject expression of provisioner p on a
// directory user, with the variables subjectJexl sees.
func EvalSubject(ctx context.Context, dir usersync.Directory, p *usersync.Provisioner, username, expr string) (string, error) {
	prog, err := jexl.CompileShaped(expr, shapes, subjectVars...)
	if err != nil {
		return "", usersync.Errorf(usersync.EINVALID, "%v", err)
	}
	u, err := dir.FindUserByUsername(ctx, username)
	if err != nil {
		return "", err
	}
	c := p.Config
	s := Subject{u}
	return evalErr(prog.Eval(map[string]any{"subject": s, "subjectIdValue": s.Attribute(c.IDAttribute), "consumerName": p.Name,
		"tenantId": c.TenantID, "domain": c.Domain, "idAttribute": c.IDAttribute}))
}

// PrincipalOf is the principal name provisioner p gives a directory user.
func PrincipalOf(ctx context.Context, dir usersync.Directory, p *usersync.Provisioner, username string) (string, error) {
	u, err := dir.FindUserByUsername(ctx, username)
	if err != nil {
		return "", err
	}
	x, err := Compile(p.Config)
	if err != nil {
		return "", err
	}
	return Principal(p, x.Subject, u)
}
