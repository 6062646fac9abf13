package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/usersync/usersync"
)

var _ usersync.ProvisionerService = (*DB)(nil)

const provisionerCols = `name, kind, config, created_at, updated_at, version`

func scanProvisioner(s scanner) (*usersync.Provisioner, error) {
	var p usersync.Provisioner
	var config string
	var created, updated int64
	if err := s.Scan(&p.Name, &p.Kind, &config, &created, &updated, &p.Version); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(config), &p.Config); err != nil {
		return nil, fmt.Errorf("decode the settings of provisioner %s: %w", p.Name, err)
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &p, nil
}

// secretName is what a provisioner's sealed secret is bound to.
func secretName(provisioner string) string { return "provisioner:" + provisioner + ":clientSecret" }

// CreateProvisioner stores a provisioner and its sealed client secret.
func (d *DB) CreateProvisioner(ctx context.Context, p *usersync.Provisioner, secret string) error {
	p.Config.Normalize(p.Name)
	if err := p.Validate(); err != nil {
		return err
	}
	sealed, err := d.secrets.seal(secretName(p.Name), secret)
	if err != nil {
		return err
	}
	config, _ := json.Marshal(p.Config)
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO provisioners (name, kind, config, secret, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, 1)`,
			p.Name, p.Kind, string(config), sealed, t.now, t.now)
		if isUniqueViolation(err) {
			return usersync.Errorf(usersync.ECONFLICT, "provisioner %s exists already", p.Name)
		} else if err != nil {
			return t.d.wrapErr("create provisioner", err)
		}
		p.CreatedAt, p.UpdatedAt, p.Version = fromMicros(t.now), fromMicros(t.now), 1
		return nil
	})
}

// FindProvisioner returns a provisioner or ENOTFOUND.
func (d *DB) FindProvisioner(ctx context.Context, name string) (*usersync.Provisioner, error) {
	p, err := scanProvisioner(d.db.QueryRowContext(ctx, d.q(`SELECT `+provisionerCols+` FROM provisioners WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "provisioner %q not found (see `usersync provisioners list`)", name)
	}
	return p, d.wrapErr("read provisioner", err)
}

// FindProvisioners lists provisioners by name.
func (d *DB) FindProvisioners(ctx context.Context) ([]*usersync.Provisioner, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+provisionerCols+` FROM provisioners ORDER BY name`)
	if err != nil {
		return nil, d.wrapErr("list provisioners", err)
	}
	defer rows.Close()
	var out []*usersync.Provisioner
	for rows.Next() {
		p, err := scanProvisioner(rows)
		if err != nil {
			return nil, d.wrapErr("list provisioners", err)
		}
		out = append(out, p)
	}
	return out, d.wrapErr("list provisioners", rows.Err())
}

// UpdateProvisioner stores p over the provisioner of its name.
func (d *DB) UpdateProvisioner(ctx context.Context, p *usersync.Provisioner, secret *string) error {
	p.Config.Normalize(p.Name)
	if err := p.Validate(); err != nil {
		return err
	}
	config, _ := json.Marshal(p.Config)
	var sealed string
	if secret != nil {
		var err error
		if sealed, err = d.secrets.seal(secretName(p.Name), *secret); err != nil {
			return err
		}
	}
	return d.update(ctx, func(t *tx) error {
		n, err := t.exec(`UPDATE provisioners SET kind = ?, config = ?, updated_at = ?, version = version + 1 WHERE name = ?`, p.Kind, string(config), t.now, p.Name)
		if err != nil {
			return t.d.wrapErr("update provisioner", err)
		} else if n == 0 {
			return usersync.Errorf(usersync.ENOTFOUND, "provisioner %q not found", p.Name)
		}
		if secret != nil {
			if _, err := t.exec(`UPDATE provisioners SET secret = ? WHERE name = ?`, sealed, p.Name); err != nil {
				return t.d.wrapErr("update provisioner secret", err)
			}
		}
		return nil
	})
}

// DeleteProvisioner removes a provisioner, its items and its cursor.
func (d *DB) DeleteProvisioner(ctx context.Context, name string) error {
	return d.update(ctx, func(t *tx) error {
		if _, err := t.exec(`DELETE FROM provisioner_items WHERE provisioner = ?`, name); err != nil {
			return t.d.wrapErr("delete provisioner", err)
		}
		n, err := t.exec(`DELETE FROM provisioners WHERE name = ?`, name)
		if err != nil {
			return t.d.wrapErr("delete provisioner", err)
		} else if n == 0 {
			return usersync.Errorf(usersync.ENOTFOUND, "provisioner %q not found", name)
		}
		_, err = t.exec(`DELETE FROM consumers WHERE name = ?`, usersync.ProvisionerCursor(name))
		return t.d.wrapErr("delete provisioner cursor", err)
	})
}

// ProvisionerSecret returns a provisioner's client secret, unsealed.
func (d *DB) ProvisionerSecret(ctx context.Context, name string) (string, error) {
	var sealed string
	err := d.db.QueryRowContext(ctx, d.q(`SELECT secret FROM provisioners WHERE name = ?`), name).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", usersync.Errorf(usersync.ENOTFOUND, "provisioner %q not found", name)
	} else if err != nil {
		return "", d.wrapErr("read provisioner secret", err)
	}
	return d.secrets.open(secretName(name), sealed)
}

// ProvisionerItems lists a provisioner's failing and quarantined groups.
func (d *DB) ProvisionerItems(ctx context.Context, name string) ([]usersync.ProvisionerItem, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT group_id, group_name, failures, last_error, next_attempt, quarantined FROM provisioner_items
		WHERE provisioner = ? ORDER BY group_name`), name)
	if err != nil {
		return nil, d.wrapErr("list provisioner items", err)
	}
	defer rows.Close()
	var out []usersync.ProvisionerItem
	for rows.Next() {
		it := usersync.ProvisionerItem{Provisioner: name}
		var next int64
		if err := rows.Scan(&it.GroupID, &it.GroupName, &it.Failures, &it.LastError, &next, &it.Quarantined); err != nil {
			return nil, d.wrapErr("list provisioner items", err)
		}
		it.NextAttempt = fromMicros(next)
		out = append(out, it)
	}
	return out, d.wrapErr("list provisioner items", rows.Err())
}

// SaveProvisionerItem creates or replaces an item.
func (d *DB) SaveProvisionerItem(ctx context.Context, it usersync.ProvisionerItem) error {
	if err := usersync.ValidateText("provisioner item", map[string]string{"error": it.LastError, "group": it.GroupName}); err != nil {
		return err
	}
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO provisioner_items (provisioner, group_id, group_name, failures, last_error, next_attempt, quarantined) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (provisioner, group_id) DO UPDATE SET group_name = excluded.group_name, failures = excluded.failures, last_error = excluded.last_error,
			next_attempt = excluded.next_attempt, quarantined = excluded.quarantined`,
			it.Provisioner, it.GroupID, it.GroupName, it.Failures, it.LastError, micros(it.NextAttempt), it.Quarantined)
		return t.d.wrapErr("save provisioner item", err)
	})
}

// DeleteProvisionerItem forgets an item; a missing one is not an error.
func (d *DB) DeleteProvisionerItem(ctx context.Context, name string, groupID int64) error {
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM provisioner_items WHERE provisioner = ? AND group_id = ?`, name, groupID)
		return t.d.wrapErr("delete provisioner item", err)
	})
}

// SaveHold records a hold; one already recorded keeps its Since.
func (d *DB) SaveHold(ctx context.Context, h usersync.Hold) error {
	users, _ := json.Marshal(h.Users)
	if err := usersync.ValidateText("provisioner hold", map[string]string{"reason": h.Reason, "users": string(users)}); err != nil {
		return err
	}
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO provisioner_holds (provisioner, what, count, reason, users, since) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (provisioner, what) DO UPDATE SET count = excluded.count, reason = excluded.reason, users = excluded.users`,
			h.Provisioner, h.What, h.Count, h.Reason, string(users), t.now)
		return t.d.wrapErr("save provisioner hold", err)
	})
}

// ClearHold forgets a hold; a missing one is not an error.
func (d *DB) ClearHold(ctx context.Context, provisioner, what string) error {
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM provisioner_holds WHERE provisioner = ? AND what = ?`, provisioner, what)
		return t.d.wrapErr("clear provisioner hold", err)
	})
}

// Holds lists a provisioner's holds.
func (d *DB) Holds(ctx context.Context, provisioner string) ([]usersync.Hold, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT what, count, reason, users, since FROM provisioner_holds WHERE provisioner = ? ORDER BY what`), provisioner)
	if err != nil {
		return nil, d.wrapErr("list provisioner holds", err)
	}
	defer rows.Close()
	var out []usersync.Hold
	for rows.Next() {
		h := usersync.Hold{Provisioner: provisioner}
		var users string
		var since int64
		if err := rows.Scan(&h.What, &h.Count, &h.Reason, &users, &since); err != nil {
			return nil, d.wrapErr("list provisioner holds", err)
		}
		json.Unmarshal([]byte(users), &h.Users)
		h.Since = fromMicros(since)
		out = append(out, h)
	}
	return out, d.wrapErr("list provisioner holds", rows.Err())
}

// MemberLinks reads a provisioner's member links of these users.
func (d *DB) MemberLinks(ctx context.Context, provisioner string, userIDs []int64) (map[int64]usersync.MemberLink, error) {
	out := make(map[int64]usersync.MemberLink, len(userIDs))
	return out, inChunks(d, d.poolQuery(ctx), "read member links", `SELECT user_id, principal, remote_id FROM member_links WHERE provisioner = ? AND user_id IN `,
		[]any{provisioner}, userIDs, func(rows *sql.Rows) error {
			var l usersync.MemberLink
			if err := rows.Scan(&l.UserID, &l.Principal, &l.RemoteID); err != nil {
				return err
			}
			out[l.UserID] = l
			return nil
		})
}

// SaveMemberLinks records member links, replacing earlier ones of the same
// users. A link to a user deleted meanwhile is not kept.
func (d *DB) SaveMemberLinks(ctx context.Context, provisioner string, links []usersync.MemberLink) error {
	if len(links) == 0 {
		return nil
	}
	for _, l := range links {
		if err := usersync.ValidateText("member link", map[string]string{"principal": l.Principal, "remote id": l.RemoteID}); err != nil {
			return err
		}
	}
	return d.update(ctx, func(t *tx) error {
		for _, l := range links {
			if _, err := t.exec(`INSERT INTO member_links (provisioner, user_id, principal, remote_id, resolved_at)
				SELECT ?, id, ?, ?, ? FROM users WHERE id = ?
				ON CONFLICT (provisioner, user_id) DO UPDATE SET principal = excluded.principal, remote_id = excluded.remote_id, resolved_at = excluded.resolved_at`,
				provisioner, l.Principal, l.RemoteID, t.now, l.UserID); err != nil {
				return t.d.wrapErr("save member links", err)
			}
		}
		return nil
	})
}

// ForgetMemberLinks drops links to these remote objects (all the
// provisioner's when remoteIDs is nil).
func (d *DB) ForgetMemberLinks(ctx context.Context, provisioner string, remoteIDs []string) error {
	return d.update(ctx, func(t *tx) error {
		if remoteIDs == nil {
			_, err := t.exec(`DELETE FROM member_links WHERE provisioner = ?`, provisioner)
			return t.d.wrapErr("forget member links", err)
		}
		for _, id := range remoteIDs {
			if _, err := t.exec(`DELETE FROM member_links WHERE provisioner = ? AND remote_id = ?`, provisioner, id); err != nil {
				return t.d.wrapErr("forget member links", err)
			}
		}
		return nil
	})
}
