package entra

import (
	"context"
	"sort"

	"github.com/usersync/usersync"
)

// Decide approves or rejects pending approvals by id, as the context's
// actor. Every id is checked first: when one is unknown or decided
// already, nothing is decided. Approved actions are sent at once: a run of
// each provisioner for those users only (the plan must still be the one
// approved; one the state overtook is dropped, not sent).
func Decide(ctx context.Context, dir usersync.Directory, ids []int64, approve bool) ([]*usersync.Approval, []*UserResult, error) {
	var list []*usersync.Approval
	for _, id := range ids {
		a, err := dir.FindApproval(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		if a.Status != usersync.ApprovalPending {
			return nil, nil, usersync.Errorf(usersync.ECONFLICT, "approval %d is %s already (by %s at %s); nothing was decided",
				id, a.Status, a.DecidedBy, a.DecidedAt.UTC().Format("2006-01-02 15:04:05Z"))
		}
		list = append(list, a)
	}
	status := usersync.ApprovalRejected
	if approve {
		status = usersync.ApprovalApproved
	}
	only := map[string]map[int64]bool{}
	for i, a := range list {
		decided, err := dir.DecideApproval(ctx, a.ID, status)
		if err != nil {
			return list[:i], nil, err
		}
		list[i] = decided
		if only[a.Provisioner] == nil {
			only[a.Provisioner] = map[int64]bool{}
		}
		only[a.Provisioner][a.UserID] = true
	}
	if !approve {
		return list, nil, nil
	}
	names := make([]string, 0, len(only))
	for n := range only {
		names = append(names, n)
	}
	sort.Strings(names)
	var results []*UserResult
	for _, name := range names {
		p, err := dir.FindProvisioner(ctx, name)
		if err != nil {
			return list, results, err
		}
		x, err := OpenUsers(ctx, dir, p)
		if err != nil {
			return list, results, err
		}
		r, err := x.Run(ctx, UserOptions{Only: only[name], KeepActions: true}) // under its lease
		if err != nil {
			return list, results, err
		}
		results = append(results, r)
	}
	return list, results, nil
}

// OpenUsers opens a stored user provisioner with its Graph client.
func OpenUsers(ctx context.Context, dir usersync.Directory, p *usersync.Provisioner) (*Users, error) {
	client, err := NewClient(ctx, dir, p, "", nil)
	if err != nil {
		return nil, err
	}
	return NewUsers(dir, client, p)
}

// ReapplyAll runs every user provisioner now (dry: plans only), each under
// its lease: "reapply mappings and rules".
func ReapplyAll(ctx context.Context, dir usersync.Directory, dryRun bool) ([]*UserResult, error) {
	ps, err := dir.FindProvisioners(ctx)
	if err != nil {
		return nil, err
	}
	var results []*UserResult
	for _, p := range ps {
		if p.Kind != usersync.ProvisionerUsers {
			continue
		}
		x, err := OpenUsers(ctx, dir, p)
		if err != nil {
			return results, err
		}
		r, err := x.Run(ctx, UserOptions{DryRun: dryRun, KeepActions: true}) // under its lease
		if err != nil {
			return results, usersync.Errorf(usersync.ErrorCode(err), "provisioner %s: %s", p.Name, usersync.ErrorMessage(err))
		}
		results = append(results, r)
	}
	return results, nil
}
