package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// SetPasswordHash stores a user's password hash, forgets its failures and
// ends its sessions, in one transaction.
func (d *DB) SetPasswordHash(ctx context.Context, userID int64, hash string) (int, error) {
	var ended int64
	err := d.update(ctx, func(t *tx) error {
		n, err := t.exec(`UPDATE users SET password_hash = ?, sign_in_failures = 0, locked_until = 0 WHERE id = ?`, hash, userID)
		if err != nil {
			return t.d.wrapErr("set password", err)
		}
		if n == 0 {
			return usersync.Errorf(usersync.ENOTFOUND, "user with id %d not found", userID)
		}
		ended, err = t.exec(`DELETE FROM admin_sessions WHERE user_id = ?`, userID)
		return t.d.wrapErr("end sessions", err)
	})
	return int(ended), err
}

// SignInState reads a user with its password hash and failed attempts.
func (d *DB) SignInState(ctx context.Context, username string) (*usersync.User, usersync.SignInState, error) {
	var st usersync.SignInState
	var locked int64
	u, err := scanUser(scanFunc(func(dest ...any) error {
		return d.db.QueryRowContext(ctx, d.q(`SELECT password_hash, sign_in_failures, locked_until, `+userCols+` FROM users WHERE username_key = ?`),
			usersync.UsernameKey(username)).Scan(append([]any{&st.PasswordHash, &st.Failures, &locked}, dest...)...)
	}))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, st, usersync.Errorf(usersync.ENOTFOUND, "user %q not found", username)
	} else if err != nil {
		return nil, st, d.wrapErr("read sign-in state", err)
	}
	if locked != 0 {
		st.LockedUntil = fromMicros(locked)
	}
	return u, st, nil
}

// BeginSignIn counts the attempt as failed unless the user is locked, in
// one conditional UPDATE: SQLite runs writers one at a time, PostgreSQL
// re-checks the WHERE on the row it waited for, so of attempts made at
// once exactly lockAfter pass.
func (d *DB) BeginSignIn(ctx context.Context, username string, lockAfter int, lockFor time.Duration) (*usersync.User, usersync.SignInState, error) {
	var u *usersync.User
	var st usersync.SignInState
	err := d.update(ctx, func(t *tx) error {
		n, err := t.exec(`UPDATE users SET sign_in_failures = sign_in_failures + 1,
			locked_until = CASE WHEN sign_in_failures + 1 >= ? THEN ? ELSE locked_until END
			WHERE username_key = ? AND locked_until <= ?`, lockAfter, t.now+lockFor.Microseconds(), usersync.UsernameKey(username), t.now)
		if err != nil {
			return t.d.wrapErr("count sign-in attempt", err)
		}
		var locked int64
		u, err = scanUser(scanFunc(func(dest ...any) error {
			return t.queryRow(`SELECT password_hash, sign_in_failures, locked_until, `+userCols+` FROM users WHERE username_key = ?`,
				usersync.UsernameKey(username)).Scan(append([]any{&st.PasswordHash, &st.Failures, &locked}, dest...)...)
		}))
		if errors.Is(err, sql.ErrNoRows) {
			return usersync.Errorf(usersync.ENOTFOUND, "user %q not found", username)
		} else if err != nil {
			return t.d.wrapErr("read sign-in state", err)
		}
		if locked != 0 {
			st.LockedUntil = fromMicros(locked)
		}
		st.Allowed = n == 1
		return nil
	})
	if err != nil {
		return nil, usersync.SignInState{}, err
	}
	return u, st, nil
}

// SignInSucceeded forgets a user's failed attempts.
func (d *DB) SignInSucceeded(ctx context.Context, userID int64) error {
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`UPDATE users SET sign_in_failures = 0, locked_until = 0 WHERE id = ?`, userID)
		return t.d.wrapErr("record sign-in", err)
	})
}

// CreateSession starts a console session; only the token's hash is kept.
func (d *DB) CreateSession(ctx context.Context, userID int64, ttl time.Duration) (string, *usersync.AdminSession, error) {
	u, err := d.FindUserByID(ctx, userID)
	if err != nil {
		return "", nil, err
	}
	clear, csrf := usersync.NewSecret(usersync.SessionPrefix), usersync.NewSecret("")
	s := &usersync.AdminSession{UserID: u.ID, Username: u.Username, CSRF: csrf}
	err = d.update(ctx, func(t *tx) error {
		s.CreatedAt, s.ExpiresAt = fromMicros(t.now), fromMicros(t.now+ttl.Microseconds())
		if _, err := t.exec(`DELETE FROM admin_sessions WHERE expires_at < ?`, t.now); err != nil { // keep the table small
			return t.d.wrapErr("expire sessions", err)
		}
		err := t.queryRow(`INSERT INTO admin_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			usersync.HashToken(clear), u.ID, csrf, t.now, t.now+ttl.Microseconds()).Scan(&s.ID)
		return t.d.wrapErr("create session", err)
	})
	if err != nil {
		return "", nil, err
	}
	return clear, s, nil
}

// FindSession finds a live session of an enabled administrator.
func (d *DB) FindSession(ctx context.Context, clear string) (*usersync.AdminSession, error) {
	refused := usersync.Errorf(usersync.EUNAUTHORIZED, "not signed in, or the session ended: sign in again")
	if !strings.HasPrefix(clear, usersync.SessionPrefix) {
		return nil, refused
	}
	var s usersync.AdminSession
	var created, expires int64
	var typ string
	var enabled bool
	err := d.db.QueryRowContext(ctx, d.q(`SELECT s.id, s.user_id, u.username, s.csrf, s.created_at, s.expires_at, u.user_type, u.enabled
		FROM admin_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`), usersync.HashToken(clear)).
		Scan(&s.ID, &s.UserID, &s.Username, &s.CSRF, &created, &expires, &typ, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, refused
	} else if err != nil {
		return nil, d.wrapErr("find session", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMicros(created), fromMicros(expires)
	if time.Now().After(s.ExpiresAt) || !enabled || usersync.UserType(typ) != usersync.UserAdministrator {
		return nil, refused
	}
	return &s, nil
}

// DeleteSession ends a session.
func (d *DB) DeleteSession(ctx context.Context, clear string) error {
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM admin_sessions WHERE token_hash = ?`, usersync.HashToken(clear))
		return t.d.wrapErr("delete session", err)
	})
}
