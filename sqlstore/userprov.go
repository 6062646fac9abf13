package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

var (
	_ usersync.RoleService             = (*DB)(nil)
	_ usersync.UserProvisioningService = (*DB)(nil)
)

func roleRef(name string) usersync.ObjectRef {
	return usersync.ObjectRef{Type: usersync.ObjectRole, Name: name}
}

// CreateRole stores a role; ECONFLICT when the name (ignoring case) is taken.
func (d *DB) CreateRole(ctx context.Context, r *usersync.Role) error {
	if err := usersync.ValidateName("role", r.Name); err != nil {
		return err
	}
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO roles (name, name_key, description, created_at) VALUES (?, ?, ?, ?)`, r.Name, usersync.GroupNameKey(r.Name), r.Description, t.now)
		if isUniqueViolation(err) {
			return usersync.Errorf(usersync.ECONFLICT, "role %q exists already", r.Name)
		} else if err != nil {
			return t.d.wrapErr("create role", err)
		}
		r.CreatedAt = fromMicros(t.now)
		t.change(usersync.RoleCreated, roleRef(r.Name), nil, nil)
		return nil
	})
}

// FindRoles lists the roles by name, with how many users hold each by hand.
func (d *DB) FindRoles(ctx context.Context) ([]*usersync.Role, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT r.name, r.description, r.created_at, (SELECT COUNT(*) FROM user_roles ur WHERE ur.role_id = r.id)
		FROM roles r ORDER BY r.name_key`))
	if err != nil {
		return nil, d.wrapErr("list roles", err)
	}
	defer rows.Close()
	var out []*usersync.Role
	for rows.Next() {
		var r usersync.Role
		var created int64
		if err := rows.Scan(&r.Name, &r.Description, &created, &r.Users); err != nil {
			return nil, d.wrapErr("list roles", err)
		}
		r.CreatedAt = fromMicros(created)
		out = append(out, &r)
	}
	return out, d.wrapErr("list roles", rows.Err())
}

func (t *tx) roleID(name string) (int64, string, error) {
	var id int64
	var stored string
	err := t.queryRow(`SELECT id, name FROM roles WHERE name_key = ?`, usersync.GroupNameKey(name)).Scan(&id, &stored)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", usersync.Errorf(usersync.ENOTFOUND, "no role named %q (usersync roles list shows them)", name)
	}
	return id, stored, t.d.wrapErr("find role", err)
}

// DeleteRole removes a role and its holders; refused while a mapping
// sets it or a user provisioner scopes on it.
func (d *DB) DeleteRole(ctx context.Context, name string) error {
	return d.update(ctx, func(t *tx) error {
		id, stored, err := t.roleID(name)
		if err != nil {
			return err
		}
		ms, err := t.d.mappings(t.ctx, t.query)
		if err != nil {
			return err
		}
		for _, m := range ms {
			for _, r := range m.Roles {
				if strings.EqualFold(r, stored) {
					return usersync.Errorf(usersync.ECONFLICT, "role %q is set by mapping %q: delete or change the mapping first", stored, m.Name)
				}
			}
		}
		if _, err := t.exec(`DELETE FROM roles WHERE id = ?`, id); err != nil {
			return t.d.wrapErr("delete role", err)
		}
		t.change(usersync.RoleDeleted, roleRef(stored), nil, nil)
		return nil
	})
}

func (t *tx) userRef(userID int64) (usersync.ObjectRef, error) {
	names, err := t.usernames([]int64{userID})
	if err != nil {
		return usersync.ObjectRef{}, err
	}
	name, ok := names[userID]
	if !ok {
		return usersync.ObjectRef{}, usersync.Errorf(usersync.ENOTFOUND, "no user with id %d", userID)
	}
	return usersync.ObjectRef{Type: usersync.ObjectUser, ID: userID, Name: name}, nil
}

// userAndRole finds a user and a role by name (its id and stored spelling).
func (t *tx) userAndRole(userID int64, role string) (usersync.ObjectRef, int64, string, error) {
	ref, err := t.userRef(userID)
	if err != nil {
		return ref, 0, "", err
	}
	id, stored, err := t.roleID(role)
	return ref, id, stored, err
}

// AssignRole gives a user a role by hand.
func (d *DB) AssignRole(ctx context.Context, userID int64, role string) error {
	return d.update(ctx, func(t *tx) error {
		ref, id, stored, err := t.userAndRole(userID, role)
		if err != nil {
			return err
		}
		_, err = t.exec(`INSERT INTO user_roles (user_id, role_id) VALUES (?, ?)`, userID, id)
		if isUniqueViolation(err) {
			return usersync.Errorf(usersync.ECONFLICT, "user %s holds role %q already", ref.Name, stored)
		} else if err != nil {
			return t.d.wrapErr("assign role", err)
		}
		t.change(usersync.RoleAssigned, ref, nil, map[string]usersync.FieldChange{"role": {To: stored}})
		return nil
	})
}

// UnassignRole takes a role held by hand from a user.
func (d *DB) UnassignRole(ctx context.Context, userID int64, role string) error {
	return d.update(ctx, func(t *tx) error {
		ref, id, stored, err := t.userAndRole(userID, role)
		if err != nil {
			return err
		}
		n, err := t.exec(`DELETE FROM user_roles WHERE user_id = ? AND role_id = ?`, userID, id)
		if err != nil {
			return t.d.wrapErr("unassign role", err)
		}
		if n == 0 {
			return usersync.Errorf(usersync.ENOTFOUND, "user %s does not hold role %q by hand (a mapping may give it: usersync users roles %s)", ref.Name, stored, ref.Name)
		}
		t.change(usersync.RoleUnassigned, ref, nil, map[string]usersync.FieldChange{"role": {From: stored}})
		return nil
	})
}

// UserRoles returns the roles each user holds by hand, by name.
func (d *DB) UserRoles(ctx context.Context, userIDs []int64) (map[int64][]string, error) {
	out := map[int64][]string{}
	ids := dedupe(userIDs)
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := d.db.QueryContext(ctx, d.q(`SELECT ur.user_id, r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id
			WHERE ur.user_id IN (`+placeholders(len(chunk))+`) ORDER BY r.name_key`), args...)
		if err != nil {
			return nil, d.wrapErr("read users' roles", err)
		}
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, d.wrapErr("read users' roles", err)
			}
			out[id] = append(out[id], name)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, d.wrapErr("read users' roles", err)
		}
	}
	return out, nil
}

const mappingCols = `name, position, condition, roles, created_at, updated_at, version`

func (d *DB) mappings(ctx context.Context, query func(string, ...any) (*sql.Rows, error)) ([]*usersync.Mapping, error) {
	rows, err := query(`SELECT ` + mappingCols + ` FROM mappings ORDER BY position, name_key`)
	if err != nil {
		return nil, d.wrapErr("list mappings", err)
	}
	defer rows.Close()
	var out []*usersync.Mapping
	for rows.Next() {
		var m usersync.Mapping
		var roles string
		var created, updated int64
		if err := rows.Scan(&m.Name, &m.Position, &m.Condition, &roles, &created, &updated, &m.Version); err != nil {
			return nil, d.wrapErr("list mappings", err)
		}
		if err := json.Unmarshal([]byte(roles), &m.Roles); err != nil {
			return nil, d.wrapErr("decode mapping "+m.Name, err)
		}
		m.CreatedAt, m.UpdatedAt = fromMicros(created), fromMicros(updated)
		out = append(out, &m)
	}
	return out, d.wrapErr("list mappings", rows.Err())
}

// FindMappings lists the mappings in their order.
func (d *DB) FindMappings(ctx context.Context) ([]*usersync.Mapping, error) {
	return d.mappings(ctx, func(q string, args ...any) (*sql.Rows, error) { return d.db.QueryContext(ctx, d.q(q), args...) })
}

// checkMapping checks a mapping's name and that its roles exist (their
// stored spelling replaces the given one).
func (t *tx) checkMapping(m *usersync.Mapping) error {
	if err := usersync.ValidateName("mapping", m.Name); err != nil {
		return err
	}
	if len(m.Roles) == 0 {
		return usersync.Errorf(usersync.EINVALID, "mapping %q sets no role", m.Name)
	}
	for i, r := range m.Roles {
		_, stored, err := t.roleID(r)
		if err != nil {
			return usersync.Errorf(usersync.ErrorCode(err), "mapping %q: %s", m.Name, usersync.ErrorMessage(err))
		}
		m.Roles[i] = stored
	}
	return nil
}

// shiftFrom makes room at position p, moving the mappings from there down.
func (t *tx) shiftFrom(p int) (int, error) {
	var last int
	if err := t.queryRow(`SELECT COALESCE(MAX(position), 0) FROM mappings`).Scan(&last); err != nil {
		return 0, t.d.wrapErr("order mappings", err)
	}
	if p <= 0 || p > last {
		return last + 1, nil
	}
	_, err := t.exec(`UPDATE mappings SET position = position + 1 WHERE position >= ?`, p)
	return p, t.d.wrapErr("order mappings", err)
}

// CreateMapping stores a mapping at m.Position (0: at the end).
func (d *DB) CreateMapping(ctx context.Context, m *usersync.Mapping) error {
	return d.update(ctx, func(t *tx) error {
		if err := t.checkMapping(m); err != nil {
			return err
		}
		pos, err := t.shiftFrom(m.Position)
		if err != nil {
			return err
		}
		roles, _ := json.Marshal(m.Roles)
		_, err = t.exec(`INSERT INTO mappings (name, name_key, position, condition, roles, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)`,
			m.Name, usersync.GroupNameKey(m.Name), pos, m.Condition, string(roles), t.now, t.now)
		if isUniqueViolation(err) {
			return usersync.Errorf(usersync.ECONFLICT, "mapping %q exists already", m.Name)
		} else if err != nil {
			return t.d.wrapErr("create mapping", err)
		}
		m.Position, m.CreatedAt, m.UpdatedAt, m.Version = pos, fromMicros(t.now), fromMicros(t.now), 1
		t.change(usersync.MappingCreated, usersync.ObjectRef{Type: usersync.ObjectMapping, Name: m.Name}, nil,
			map[string]usersync.FieldChange{"condition": {To: m.Condition}, "roles": {To: strings.Join(m.Roles, ", ")}})
		return nil
	})
}

// UpdateMapping replaces a mapping's condition, roles and position at its version.
func (d *DB) UpdateMapping(ctx context.Context, m *usersync.Mapping) error {
	return d.update(ctx, func(t *tx) error {
		if err := t.checkMapping(m); err != nil {
			return err
		}
		var old usersync.Mapping
		var roles string
		err := t.queryRow(`SELECT position, condition, roles, version FROM mappings WHERE name_key = ?`+t.d.dialect.forUpdate, usersync.GroupNameKey(m.Name)).
			Scan(&old.Position, &old.Condition, &roles, &old.Version)
		if errors.Is(err, sql.ErrNoRows) {
			return usersync.Errorf(usersync.ENOTFOUND, "no mapping named %q", m.Name)
		} else if err != nil {
			return t.d.wrapErr("update mapping", err)
		}
		if old.Version != m.Version {
			return usersync.Errorf(usersync.ESTALE, "mapping %q changed since it was read (version %d, now %d)", m.Name, m.Version, old.Version)
		}
		pos := old.Position
		if m.Position > 0 && m.Position != old.Position {
			if _, err := t.exec(`UPDATE mappings SET position = position - 1 WHERE position > ?`, old.Position); err != nil {
				return t.d.wrapErr("order mappings", err)
			}
			if pos, err = t.shiftFrom(m.Position); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(m.Roles)
		if _, err := t.exec(`UPDATE mappings SET position = ?, condition = ?, roles = ?, updated_at = ?, version = version + 1 WHERE name_key = ?`,
			pos, m.Condition, string(b), t.now, usersync.GroupNameKey(m.Name)); err != nil {
			return t.d.wrapErr("update mapping", err)
		}
		fields := map[string]usersync.FieldChange{}
		if old.Condition != m.Condition {
			fields["condition"] = usersync.FieldChange{From: old.Condition, To: m.Condition}
		}
		var oldRoles []string
		json.Unmarshal([]byte(roles), &oldRoles)
		if strings.Join(oldRoles, ", ") != strings.Join(m.Roles, ", ") {
			fields["roles"] = usersync.FieldChange{From: strings.Join(oldRoles, ", "), To: strings.Join(m.Roles, ", ")}
		}
		m.Position, m.UpdatedAt, m.Version = pos, fromMicros(t.now), old.Version+1
		t.change(usersync.MappingUpdated, usersync.ObjectRef{Type: usersync.ObjectMapping, Name: m.Name}, nil, fields)
		return nil
	})
}

// DeleteMapping removes a mapping and closes the gap in the order.
func (d *DB) DeleteMapping(ctx context.Context, name string) error {
	return d.update(ctx, func(t *tx) error {
		var pos int
		var stored string
		err := t.queryRow(`SELECT position, name FROM mappings WHERE name_key = ?`, usersync.GroupNameKey(name)).Scan(&pos, &stored)
		if errors.Is(err, sql.ErrNoRows) {
			return usersync.Errorf(usersync.ENOTFOUND, "no mapping named %q", name)
		} else if err != nil {
			return t.d.wrapErr("delete mapping", err)
		}
		if _, err := t.exec(`DELETE FROM mappings WHERE name_key = ?`, usersync.GroupNameKey(name)); err != nil {
			return t.d.wrapErr("delete mapping", err)
		}
		if _, err := t.exec(`UPDATE mappings SET position = position - 1 WHERE position > ?`, pos); err != nil {
			return t.d.wrapErr("order mappings", err)
		}
		t.change(usersync.MappingDeleted, usersync.ObjectRef{Type: usersync.ObjectMapping, Name: stored}, nil, nil)
		return nil
	})
}

// ProvisionedUsers returns what a user provisioner keeps, by user id.
func (d *DB) ProvisionedUsers(ctx context.Context, provisioner string) (map[int64]*usersync.Provisioned, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT user_id, username, remote_id, state, sent, sent_key, licenses, remote_groups, failures, last_error, next_attempt, quarantined, updated_at
		FROM provisioned_users WHERE provisioner = ?`), provisioner)
	if err != nil {
		return nil, d.wrapErr("read provisioned users", err)
	}
	defer rows.Close()
	out := map[int64]*usersync.Provisioned{}
	for rows.Next() {
		p := &usersync.Provisioned{Provisioner: provisioner}
		var lic, groups string
		var next, updated int64
		if err := rows.Scan(&p.UserID, &p.Username, &p.RemoteID, &p.State, &p.SentJSON, &p.SentKey, &lic, &groups, &p.Failures, &p.LastError, &next, &p.Quarantined, &updated); err != nil {
			return nil, d.wrapErr("read provisioned users", err)
		}
		p.Licenses, p.Groups = splitIDs(lic), splitIDs(groups)
		if next != 0 {
			p.NextAttempt = fromMicros(next)
		}
		p.UpdatedAt = fromMicros(updated)
		out[p.UserID] = p
	}
	return out, d.wrapErr("read provisioned users", rows.Err())
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// SaveProvisioned stores what a provisioner keeps of users, in one transaction.
func (d *DB) SaveProvisioned(ctx context.Context, ps ...*usersync.Provisioned) error {
	return d.update(ctx, func(t *tx) error {
		for _, p := range ps {
			var next int64
			if !p.NextAttempt.IsZero() {
				next = micros(p.NextAttempt)
			}
			props := p.Props()
			p.SentJSON, p.SentKey = jsonText(props), usersync.PropsKey(props)
			_, err := t.exec(`INSERT INTO provisioned_users (provisioner, user_id, username, remote_id, state, sent, sent_key, licenses, remote_groups, failures, last_error, next_attempt, quarantined, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (provisioner, user_id) DO UPDATE SET username = excluded.username, remote_id = excluded.remote_id, state = excluded.state,
			sent = excluded.sent, sent_key = excluded.sent_key, licenses = excluded.licenses, remote_groups = excluded.remote_groups, failures = excluded.failures,
			last_error = excluded.last_error, next_attempt = excluded.next_attempt, quarantined = excluded.quarantined, updated_at = excluded.updated_at`,
				p.Provisioner, p.UserID, p.Username, p.RemoteID, p.State, p.SentJSON, p.SentKey, strings.Join(p.Licenses, ","), strings.Join(p.Groups, ","),
				p.Failures, p.LastError, next, p.Quarantined, t.now)
			if err != nil {
				return t.d.wrapErr("save provisioned user "+p.Username, err)
			}
			p.UpdatedAt = fromMicros(t.now)
		}
		return nil
	})
}

// splitIDs reads a comma-joined list of Entra ids (GUIDs hold no comma).
func splitIDs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

const approvalCols = `id, provisioner, user_id, username, action, reason, detail, plan_key, status, created_at, decided_by, decided_at, last_seen`

func scanApproval(s scanner) (*usersync.Approval, error) {
	var a usersync.Approval
	var created, decided, seen int64
	if err := s.Scan(&a.ID, &a.Provisioner, &a.UserID, &a.Username, &a.Action, &a.Reason, &a.Detail, &a.Key, &a.Status, &created, &a.DecidedBy, &decided, &seen); err != nil {
		return nil, err
	}
	a.CreatedAt, a.LastSeen = fromMicros(created), fromMicros(seen)
	if decided != 0 {
		a.DecidedAt = fromMicros(decided)
	}
	return &a, nil
}

// CreateApproval adds a pending approval, or returns the one pending for
// the same plan; one pending for another plan of the same user and action
// is dropped in the same transaction.
func (d *DB) CreateApproval(ctx context.Context, a *usersync.Approval) (*usersync.Approval, error) {
	var out *usersync.Approval
	err := d.update(ctx, func(t *tx) error {
		rows, err := t.query(`SELECT `+approvalCols+` FROM approvals WHERE provisioner = ? AND user_id = ? AND status = ?`+t.d.dialect.forUpdate, a.Provisioner, a.UserID, usersync.ApprovalPending)
		if err != nil {
			return t.d.wrapErr("read approvals", err)
		}
		var pending []*usersync.Approval
		for rows.Next() {
			p, err := scanApproval(rows)
			if err != nil {
				rows.Close()
				return t.d.wrapErr("read approvals", err)
			}
			pending = append(pending, p)
		}
		rows.Close()
		for _, p := range pending {
			if p.Action == a.Action && p.Key == a.Key {
				if _, err := t.exec(`UPDATE approvals SET last_seen = ? WHERE id = ?`, t.now, p.ID); err != nil {
					return t.d.wrapErr("update approval", err)
				}
				p.LastSeen, out = fromMicros(t.now), p
				return nil
			}
		}
		// A rejection stands for the plan it was given for.
		rejected, err := scanApproval(t.queryRow(`SELECT `+approvalCols+` FROM approvals WHERE provisioner = ? AND user_id = ? AND action = ? AND plan_key = ? AND status = ? ORDER BY id DESC LIMIT 1`,
			a.Provisioner, a.UserID, a.Action, a.Key, usersync.ApprovalRejected))
		if err == nil {
			out = rejected
			return t.dropApprovals(pending, "overtaken by a newer plan")
		} else if !errors.Is(err, sql.ErrNoRows) {
			return t.d.wrapErr("read approvals", err)
		}
		if err := t.dropApprovals(pending, "overtaken by a newer plan"); err != nil {
			return err
		}
		err = t.queryRow(`INSERT INTO approvals (provisioner, user_id, username, action, reason, detail, plan_key, status, created_at, decided_by, decided_at, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, ?) RETURNING id`, a.Provisioner, a.UserID, a.Username, a.Action, a.Reason, a.Detail, a.Key, usersync.ApprovalPending, t.now, t.now).Scan(&a.ID)
		if err != nil {
			return t.d.wrapErr("create approval", err)
		}
		a.Status, a.CreatedAt, a.LastSeen, a.New = usersync.ApprovalPending, fromMicros(t.now), fromMicros(t.now), true
		out = a
		return nil
	})
	return out, err
}

func (t *tx) dropApprovals(list []*usersync.Approval, why string) error {
	for _, p := range list {
		if _, err := t.exec(`UPDATE approvals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?`, usersync.ApprovalDropped, "usersync: "+why, t.now, p.ID); err != nil {
			return t.d.wrapErr("drop approval", err)
		}
	}
	return nil
}

// FindApprovals lists approvals, oldest first; "" matches every
// provisioner or status.
func (d *DB) FindApprovals(ctx context.Context, provisioner, status string) ([]*usersync.Approval, error) {
	q, args := `SELECT `+approvalCols+` FROM approvals WHERE 1=1`, []any{}
	if provisioner != "" {
		q, args = q+` AND provisioner = ?`, append(args, provisioner)
	}
	if status != "" {
		q, args = q+` AND status = ?`, append(args, status)
	}
	rows, err := d.db.QueryContext(ctx, d.q(q+` ORDER BY id`), args...)
	if err != nil {
		return nil, d.wrapErr("list approvals", err)
	}
	defer rows.Close()
	var out []*usersync.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, d.wrapErr("list approvals", err)
		}
		out = append(out, a)
	}
	return out, d.wrapErr("list approvals", rows.Err())
}

// FindApproval returns one approval or ENOTFOUND.
func (d *DB) FindApproval(ctx context.Context, id int64) (*usersync.Approval, error) {
	a, err := scanApproval(d.db.QueryRowContext(ctx, d.q(`SELECT `+approvalCols+` FROM approvals WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "no approval with id %d (usersync approvals list shows the pending ones)", id)
	}
	return a, d.wrapErr("read approval", err)
}

// DecideApproval moves a pending approval to status, recording who
// decided (the context's actor) and when.
func (d *DB) DecideApproval(ctx context.Context, id int64, status string) (*usersync.Approval, error) {
	switch status {
	case usersync.ApprovalApproved, usersync.ApprovalRejected, usersync.ApprovalDropped, usersync.ApprovalPending, usersync.ApprovalUsed, usersync.ApprovalExpired:
	default:
		return nil, usersync.Errorf(usersync.EINVALID, "an approval is approved, rejected, dropped, pending (reopened), used or expired, not %q", status)
	}
	var out *usersync.Approval
	err := d.update(ctx, func(t *tx) error {
		a, err := scanApproval(t.queryRow(`SELECT `+approvalCols+` FROM approvals WHERE id = ?`+t.d.dialect.forUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return usersync.Errorf(usersync.ENOTFOUND, "no approval with id %d (usersync approvals list shows the pending ones)", id)
		} else if err != nil {
			return t.d.wrapErr("read approval", err)
		}
		if !usersync.CanMoveApproval(a.Status, status) {
			return usersync.Errorf(usersync.ECONFLICT, "approval %d is %s already (by %s at %s): it cannot be made %s", id, a.Status, a.DecidedBy, a.DecidedAt.Format("2006-01-02 15:04:05Z"), status)
		}
		switch status {
		case usersync.ApprovalUsed, usersync.ApprovalExpired:
			// What became of a decision: who decided, and when, stay (the
			// change log has this move's actor and time).
			_, err = t.exec(`UPDATE approvals SET status = ? WHERE id = ?`, status, id)
		case usersync.ApprovalPending: // reopened: undecided again
			_, err = t.exec(`UPDATE approvals SET status = ?, decided_by = '', decided_at = 0, last_seen = ? WHERE id = ?`, status, t.now, id)
			a.DecidedBy, a.DecidedAt, a.LastSeen = "", time.Time{}, fromMicros(t.now)
		default:
			_, err = t.exec(`UPDATE approvals SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?`, status, t.actor, t.now, id)
			a.DecidedBy, a.DecidedAt = t.actor, fromMicros(t.now)
		}
		if err != nil {
			return t.d.wrapErr("decide approval", err)
		}
		a.Status = status
		t.change(usersync.ApprovalDecided, usersync.ObjectRef{Type: usersync.ObjectUser, ID: a.UserID, Name: a.Username}, nil,
			map[string]usersync.FieldChange{"approval": {To: a.Action + " " + status}, "provisioner": {To: a.Provisioner}})
		out = a
		return nil
	})
	return out, err
}

// AppendLog adds provisioning log entries.
func (d *DB) AppendLog(ctx context.Context, entries []usersync.LogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	return d.update(ctx, func(t *tx) error {
		for i := range entries {
			e := &entries[i]
			at := t.now
			if !e.At.IsZero() {
				at = micros(e.At)
			}
			if _, err := t.exec(`INSERT INTO provisioning_log (provisioner, run, at, user_id, username, group_name, action, reason, status, error_code, error, modified) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				e.Provisioner, e.Run, at, e.UserID, e.Username, e.Group, e.Action, e.Reason, e.Status, e.ErrorCode, e.Error, jsonText(e.Modified)); err != nil {
				return t.d.wrapErr("write provisioning log", err)
			}
		}
		return nil
	})
}

// FindLog lists provisioning log entries, newest first.
func (d *DB) FindLog(ctx context.Context, f usersync.LogFilter) ([]usersync.LogEntry, error) {
	q, args := `SELECT id, provisioner, run, at, user_id, username, group_name, action, reason, status, error_code, error, modified FROM provisioning_log WHERE 1=1`, []any{}
	if f.Provisioner != "" {
		q, args = q+` AND provisioner = ?`, append(args, f.Provisioner)
	}
	if f.Username != "" {
		q, args = q+` AND `+d.dialect.fold("username")+` = `+d.dialect.fold("?"), append(args, f.Username)
	}
	if f.Group != "" {
		q, args = q+` AND `+d.dialect.fold("group_name")+` = `+d.dialect.fold("?"), append(args, f.Group)
	}
	if f.Run != "" {
		q, args = q+` AND run = ?`, append(args, f.Run)
	}
	if f.Status != "" {
		q, args = q+` AND status = ?`, append(args, f.Status)
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	rows, err := d.db.QueryContext(ctx, d.q(q+` ORDER BY id DESC LIMIT ?`), append(args, f.Limit)...)
	if err != nil {
		return nil, d.wrapErr("read provisioning log", err)
	}
	defer rows.Close()
	var out []usersync.LogEntry
	for rows.Next() {
		var e usersync.LogEntry
		var at int64
		var modified string
		if err := rows.Scan(&e.ID, &e.Provisioner, &e.Run, &at, &e.UserID, &e.Username, &e.Group, &e.Action, &e.Reason, &e.Status, &e.ErrorCode, &e.Error, &modified); err != nil {
			return nil, d.wrapErr("read provisioning log", err)
		}
		e.At = fromMicros(at)
		json.Unmarshal([]byte(modified), &e.Modified)
		out = append(out, e)
	}
	return out, d.wrapErr("read provisioning log", rows.Err())
}
