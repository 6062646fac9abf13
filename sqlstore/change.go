package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/usersync/usersync"
)

// ChangesAfter returns up to limit events with a sequence number above after,
// in order. Because numbers are handed out in commit order (see
// flushChanges), no event below the last one returned can appear later.
func (d *DB) ChangesAfter(ctx context.Context, after int64, limit int) ([]*usersync.Change, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT seq, at, kind, object_type, object_id, object_name, member_type, member_id, member_name, fields, actor
		FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, d.wrapErr("read change log", err)
	}
	defer rows.Close()
	var out []*usersync.Change
	for rows.Next() {
		var c usersync.Change
		var at int64
		var mt, mn, fields sql.NullString
		var mid sql.NullInt64
		if err := rows.Scan(&c.Seq, &at, &c.Kind, &c.Object.Type, &c.Object.ID, &c.Object.Name, &mt, &mid, &mn, &fields, &c.Actor); err != nil {
			return nil, d.wrapErr("read change log", err)
		}
		c.At = fromMicros(at)
		if mt.Valid {
			c.Member = &usersync.ObjectRef{Type: mt.String, ID: mid.Int64, Name: mn.String}
		}
		if fields.Valid {
			var err error
			if c.Fields, err = decodeFields(fields.String); err != nil {
				return nil, d.wrapErr("decode change fields", err)
			}
		}
		out = append(out, &c)
	}
	return out, d.wrapErr("read change log", rows.Err())
}

// LastChangeSeq returns the sequence number of the last committed event.
func (d *DB) LastChangeSeq(ctx context.Context) (int64, error) {
	var last int64
	err := d.db.QueryRowContext(ctx, `SELECT last FROM change_counter WHERE id = 1`).Scan(&last)
	return last, d.wrapErr("read change counter", err)
}

// Cursor returns the last sequence number a consumer has processed.
func (d *DB) Cursor(ctx context.Context, consumer string) (int64, error) {
	var seq int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT last_seq FROM consumers WHERE name = ?`), consumer).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return seq, d.wrapErr("read consumer cursor", err)
}

// SetCursor stores a consumer's position.
func (d *DB) SetCursor(ctx context.Context, consumer string, seq int64) error {
	if consumer == "" {
		return usersync.Errorf(usersync.EINVALID, "consumer name is empty")
	}
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO consumers (name, last_seq, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at`,
			consumer, seq, t.now)
		return t.d.wrapErr("write consumer cursor", err)
	})
}
