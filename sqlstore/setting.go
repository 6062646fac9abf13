package sqlstore

import (
	"context"
	"database/sql"
	"errors"
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
	s.Value, s.IsSet, s.UpdatedAt = value, true, &at
	d.settings.put(key, s, gen, checked)
	return s, nil
}

// Settings returns every known setting with its value.
func (d *DB) Settings(ctx context.Context) ([]usersync.Setting, error) {
	out := make([]usersync.Setting, 0, len(usersync.SettingDefs))
	for _, def := range usersync.SettingDefs {
		s, err := d.Setting(ctx, def.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
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
	err = d.update(ctx, func(t *tx) error {
		_, err := t.exec(`INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			key, canon, t.now)
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
