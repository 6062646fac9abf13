package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/usersync/usersync"
)

var _ usersync.LeaseService = (*DB)(nil)

// TryLease takes or renews a lease in one statement: the upsert applies
// only when the lease is free, expired, or the holder's own.
func (d *DB) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, usersync.Errorf(usersync.EINVALID, "a lease needs a name, a holder and a positive duration")
	}
	var got bool
	err := d.update(ctx, func(t *tx) error {
		n, err := t.exec(`INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`, name, holder, t.now+ttl.Microseconds(), t.now)
		got = n == 1
		return t.d.wrapErr("take lease "+name, err)
	})
	return got, err
}

// ReleaseLease frees a lease holder has.
func (d *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
		return t.d.wrapErr("release lease "+name, err)
	})
}

// LeaseHolder reads who holds a lease that has not expired.
func (d *DB) LeaseHolder(ctx context.Context, name string) (string, time.Time, error) {
	var holder string
	var until int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT holder, expires_at FROM leases WHERE name = ? AND expires_at > ?`), name, micros(now())).Scan(&holder, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, d.wrapErr("read lease "+name, err)
	}
	return holder, fromMicros(until), nil
}
