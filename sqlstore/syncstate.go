package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/usersync/usersync"
)

// SyncState returns a saved sync state.
func (d *DB) SyncState(ctx context.Context, source, key string) (usersync.SyncState, error) {
	s := usersync.SyncState{Source: source, Key: key}
	var full, updated int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT value, full_at, updated_at FROM sync_state WHERE source = ? AND key = ?`), source, key).Scan(&s.Value, &full, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, usersync.Errorf(usersync.ENOTFOUND, "no sync state for %s %s", source, key)
	} else if err != nil {
		return s, d.wrapErr("read sync state", err)
	}
	s.FullAt, s.UpdatedAt = fromMicros(full), fromMicros(updated)
	return s, nil
}

// SaveSyncState creates or replaces a sync state.
func (d *DB) SaveSyncState(ctx context.Context, s usersync.SyncState) error {
	if s.Source == "" || s.Key == "" {
		return usersync.Errorf(usersync.EINVALID, "a sync state needs a source and a key")
	}
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO sync_state (source, key, value, full_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (source, key) DO UPDATE SET value = excluded.value, full_at = excluded.full_at, updated_at = excluded.updated_at`,
			s.Source, s.Key, s.Value, micros(s.FullAt), t.now)
		return t.d.wrapErr("write sync state", err)
	})
}

// DeleteSyncState forgets a sync state.
func (d *DB) DeleteSyncState(ctx context.Context, source, key string) error {
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM sync_state WHERE source = ? AND key = ?`, source, key)
		return t.d.wrapErr("delete sync state", err)
	})
}

// SyncStates lists a source's sync states, by key.
func (d *DB) SyncStates(ctx context.Context, source string) ([]usersync.SyncState, error) {
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT key, value, full_at, updated_at FROM sync_state WHERE source = ? ORDER BY key`), source)
	if err != nil {
		return nil, d.wrapErr("list sync states", err)
	}
	defer rows.Close()
	var out []usersync.SyncState
	for rows.Next() {
		s := usersync.SyncState{Source: source}
		var full, updated int64
		if err := rows.Scan(&s.Key, &s.Value, &full, &updated); err != nil {
			return nil, d.wrapErr("list sync states", err)
		}
		s.FullAt, s.UpdatedAt = fromMicros(full), fromMicros(updated)
		out = append(out, s)
	}
	return out, d.wrapErr("list sync states", rows.Err())
}
