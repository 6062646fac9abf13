package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usersync/usersync"
)

// Setting returns a setting's value, or its default when unset. Answers
// are cached for cacheTTL (a server reads the same settings per request).
func (d *DB) Setting(ctx context.Context, key string) (usersync.Setting, error) {
	def, err := usersync.LookupSetting(key)
	if err != nil {
		return usersync.Setting{}, err
	}
	if s, ok := d.settings.get(key); ok {
		return s, nil
	}
	gen, checked := d.settings.generation(), time.Now()
	s := usersync.Setting{SettingDef: def, Value: def.Default}
	var value string
	var updated int64
	err = d.db.QueryRowContext(ctx, d.q(`SELECT value, updated_at FROM settings WHERE key = ?`), key).Scan(&value, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		d.settings.put(key, s, gen, checked)
		return s, nil
	} else if err != nil {
		return s, d.wrapErr("read setting", err)
	}
	at := fromMicros(updated)
	if def.Secret {
		if value, err = d.secrets.open(key, value); err != nil {
			return s, err
		}
	}
	s.Value, s.IsSet, s.UpdatedAt = value, true, &at
	d.settings.put(key, s, gen, checked)
	return s, nil
}

// Settings returns every known setting with its value. A secret that
// cannot be unsealed here (no key, another key) is listed as set, with the
// reason in Unreadable and no value.
func (d *DB) Settings(ctx context.Context) ([]usersync.Setting, error) {
	out := make([]usersync.Setting, 0, len(usersync.SettingDefs))
	for _, def := range usersync.SettingDefs {
		s, err := d.Setting(ctx, def.Key)
		if err != nil && def.Secret && usersync.ErrorCode(err) == usersync.EINVALID {
			s = usersync.Setting{SettingDef: def, IsSet: true, Unreadable: usersync.ErrorMessage(err)}
		} else if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// sealClearSecrets seals secret settings stored in clear (by a usersync
// from before secrets were sealed).
func (d *DB) sealClearSecrets(ctx context.Context) error {
	for _, def := range usersync.SettingDefs {
		if !def.Secret {
			continue
		}
		var value string
		err := d.db.QueryRowContext(ctx, d.q(`SELECT value FROM settings WHERE key = ?`), def.Key).Scan(&value)
		if errors.Is(err, sql.ErrNoRows) || strings.HasPrefix(value, sealedPrefix) {
			continue
		} else if err != nil {
			return d.wrapErr("read setting", err)
		}
		if _, err := d.SetSetting(ctx, def.Key, value); err != nil {
			return fmt.Errorf("seal setting %s stored in clear: %w", def.Key, err)
		}
	}
	return nil
}

// SetSetting checks value against the setting's type and stores it.
func (d *DB) SetSetting(ctx context.Context, key, value string) (usersync.Setting, error) {
	def, err := usersync.LookupSetting(key)
	if err != nil {
		return usersync.Setting{}, err
	}
	canon, err := def.Parse(value)
	if err != nil {
		return usersync.Setting{}, err
	}
	if err := usersync.ValidateText("setting "+key, map[string]string{"value": canon}); err != nil {
		return usersync.Setting{}, err
	}
	stored := canon
	if def.Secret {
		if stored, err = d.secrets.seal(key, canon); err != nil {
			return usersync.Setting{}, err
		}
	}
	err = d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			key, stored, t.now)
		t.onCommit(func() { t.d.settings.drop(nil) })
		return t.d.wrapErr("write setting", err)
	})
	if err != nil {
		return usersync.Setting{}, err
	}
	return d.Setting(ctx, key)
}

// ResetSetting returns a setting to its default.
func (d *DB) ResetSetting(ctx context.Context, key string) error {
	if _, err := usersync.LookupSetting(key); err != nil {
		return err
	}
	return d.update(ctx, func(t *tx) error {
		_, err := t.exec(`DELETE FROM settings WHERE key = ?`, key)
		t.onCommit(func() { t.d.settings.drop(nil) })
		return t.d.wrapErr("reset setting", err)
	})
}
