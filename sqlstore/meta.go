package sqlstore

import (
	"context"
	"database/sql"
	"errors"
)

// Meta returns a fact about the directory itself ("" when unset), such as
// MetaMadeBy.
func (d *DB) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := d.db.QueryRowContext(ctx, d.q(`SELECT value FROM directory_meta WHERE key = ?`), key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, d.wrapErr("read directory facts", err)
}

// SetMeta records a fact about the directory.
func (d *DB) SetMeta(ctx context.Context, key, value string) error {
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO directory_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
		return t.d.wrapErr("write directory facts", err)
	})
}

// MetaMadeBy names what made a directory for its own use (the demo).
const MetaMadeBy = "made-by"
