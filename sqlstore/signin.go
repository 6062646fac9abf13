package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// SetPasswordHash stores a user's password hash and forgets its failures.
func (d *DB) SetPasswordHash(ctx context.Context, userID int64, hash string) error {
	return d.update(ctx, func(t *tx) error {
		n, err := t.exec(`UPDATE users SET password_hash = ?, sign_in_failures = 0, locked_until = 0 WHERE id = ?`, hash, userID)
		if err != nil {
			return t.d.wrapErr("set password", err)
		}
		if n == 0 {
			return usersync.Errorf(usersync.ENOTFOUND, "user with id %d not found", userID)
		}
		return nil
	})
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

// RecordSignIn counts a failed attempt (locking the user at the
// lockAfter-th in a row) or forgets them after a success, in one statement
// so that attempts on two replicas at once are all counted.
func (d *DB) RecordSignIn(ctx context.Context, userID int64, ok bool, lockAfter int, lockFor time.Duration) error {
	return d.update(ctx, func(t *tx) error {
		var err error
		if ok {
			_, err = t.exec(`UPDATE users SET sign_in_failures = 0, locked_until = 0 WHERE id = ?`, userID)
		} else {
			until := t.now + lockFor.Microseconds()
			_, err = t.exec(`UPDATE users SET sign_in_failures = sign_in_failures + 1,
				locked_until = CASE WHEN sign_in_failures + 1 >= ? THEN ? ELSE locked_until END WHERE id = ?`, lockAfter, until, userID)
		}
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
