package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// CreateToken makes a token for a user; only its hash is stored.
func (d *DB) CreateToken(ctx context.Context, userID int64, name string) (string, *usersync.Token, error) {
	u, err := d.FindUserByID(ctx, userID)
	if err != nil {
		return "", nil, err
	}
	clear, err := usersync.NewToken()
	if err != nil {
		return "", nil, err
	}
	tok := &usersync.Token{UserID: u.ID, Username: u.Username, Name: name, Hint: usersync.TokenHint(clear)}
	err = d.update(ctx, func(t *tx) error {
		tok.CreatedAt = fromMicros(t.now)
		err := t.queryRow(`INSERT INTO api_tokens (user_id, name, token_hash, hint, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			u.ID, name, usersync.HashToken(clear), tok.Hint, t.now).Scan(&tok.ID)
		return t.d.wrapErr("create token", err)
	})
	if err != nil {
		return "", nil, err
	}
	return clear, tok, nil
}

// FindTokens lists tokens, of one user when userID is not 0.
func (d *DB) FindTokens(ctx context.Context, userID int64) ([]*usersync.Token, error) {
	query := `SELECT t.id, t.user_id, u.username, t.name, t.hint, t.created_at, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id`
	var args []any
	if userID != 0 {
		query, args = query+` WHERE t.user_id = ?`, []any{userID}
	}
	rows, err := d.db.QueryContext(ctx, d.q(query+` ORDER BY t.id`), args...)
	if err != nil {
		return nil, d.wrapErr("list tokens", err)
	}
	defer rows.Close()
	var out []*usersync.Token
	for rows.Next() {
		var t usersync.Token
		var created int64
		var used sql.NullInt64
		if err := rows.Scan(&t.ID, &t.UserID, &t.Username, &t.Name, &t.Hint, &created, &used); err != nil {
			return nil, d.wrapErr("list tokens", err)
		}
		t.CreatedAt = fromMicros(created)
		if used.Valid {
			at := fromMicros(used.Int64)
			t.LastUsedAt = &at
		}
		out = append(out, &t)
	}
	return out, d.wrapErr("list tokens", rows.Err())
}

// RevokeToken deletes a token.
func (d *DB) RevokeToken(ctx context.Context, id int64) error {
	return d.update(ctx, func(t *tx) error {
		n, err := t.exec(`DELETE FROM api_tokens WHERE id = ?`, id)
		if err != nil {
			return t.d.wrapErr("revoke token", err)
		}
		if n == 0 {
			return usersync.Errorf(usersync.ENOTFOUND, "token %d not found", id)
		}
		t.onCommit(func() { t.d.tokens.drop(nil) })
		return nil
	})
}

// Authenticate returns the enabled user a clear token belongs to. The time
// of last use is written at most once a minute, so that a busy client does
// not turn every read into a write.
func (d *DB) Authenticate(ctx context.Context, clear string) (*usersync.User, error) {
	if !strings.HasPrefix(clear, usersync.TokenPrefix) {
		return nil, usersync.Errorf(usersync.EUNAUTHORIZED, "invalid API token")
	}
	hash := usersync.HashToken(clear)
	if u, ok := d.tokens.get(hash); ok {
		u.Attributes = maps.Clone(u.Attributes) // the caller's copy
		return &u, nil
	}
	gen, checked := d.tokens.generation(), time.Now()
	var tokenID int64
	var used sql.NullInt64
	rows, err := d.queryRows(ctx, `SELECT t.id, t.last_used_at, `+prefixCols("u.", userCols)+` FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?`, hash)
	if err != nil {
		return nil, d.wrapErr("authenticate", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, d.wrapErr("authenticate", err)
		}
		return nil, usersync.Errorf(usersync.EUNAUTHORIZED, "invalid API token")
	}
	u, err := scanUser(scanFunc(func(dest ...any) error { return rows.Scan(append([]any{&tokenID, &used}, dest...)...) }))
	rows.Close()
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.EUNAUTHORIZED, "invalid API token")
	} else if err != nil {
		return nil, d.wrapErr("authenticate", err)
	}
	if !u.Enabled {
		return nil, usersync.Errorf(usersync.EUNAUTHORIZED, "the API token's user %q is disabled", u.Username)
	}
	if t := now(); !used.Valid || t.Sub(fromMicros(used.Int64)) > time.Minute {
		if _, err := d.db.ExecContext(ctx, d.q(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`), micros(t), tokenID); err != nil {
			return nil, d.wrapErr("record token use", err)
		}
	}
	cached := *u
	cached.Attributes = maps.Clone(u.Attributes)
	d.tokens.put(hash, cached, gen, checked)
	return u, nil
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// tokensOf matches the cached tokens of a user.
func tokensOf(userID int64) func(string, usersync.User) bool {
	return func(_ string, u usersync.User) bool { return u.ID == userID }
}
