package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/usersync/usersync"
)

const folderCols = `id, path, attributes, created_at, updated_at, version`

func scanFolder(s scanner) (*usersync.Folder, error) {
	var f usersync.Folder
	var attrs string
	var created, updated int64
	if err := s.Scan(&f.ID, &f.Path, &attrs, &created, &updated, &f.Version); err != nil {
		return nil, err
	}
	var err error
	if f.Attributes, err = decodeAttrs(attrs); err != nil {
		return nil, err
	}
	f.CreatedAt, f.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &f, nil
}

func folderRef(f *usersync.Folder) usersync.ObjectRef {
	return usersync.ObjectRef{Type: usersync.ObjectFolder, ID: f.ID, Name: f.Path}
}

// ensureFolders creates the folders among paths that do not exist yet.
func (t *tx) ensureFolders(paths []string) error {
	for _, p := range paths {
		var id int64
		err := t.queryRow(`INSERT INTO folders (path, path_key, attributes, created_at, updated_at, version) VALUES (?, ?, '{}', ?, ?, 1)
			ON CONFLICT (path_key) DO NOTHING RETURNING id`, p, usersync.GroupNameKey(p), t.now, t.now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			continue // exists
		} else if err != nil {
			return t.d.wrapErr("create folder", err)
		}
		t.rows++
		t.change(usersync.FolderCreated, usersync.ObjectRef{Type: usersync.ObjectFolder, ID: id, Name: p}, nil, nil)
	}
	return nil
}

// CreateFolder makes an empty folder and the folders above it.
func (d *DB) CreateFolder(ctx context.Context, path string) (*usersync.Folder, error) {
	if err := usersync.ValidatePath("folder path", path, usersync.MaxGroupNameLength); err != nil {
		return nil, err
	}
	err := d.update(ctx, func(t *tx) error {
		var n int
		if err := t.queryRow(`SELECT COUNT(*) FROM folders WHERE path_key = ?`, usersync.GroupNameKey(path)).Scan(&n); err != nil {
			return t.d.wrapErr("find folder", err)
		}
		if n > 0 {
			return usersync.Errorf(usersync.ECONFLICT, "folder %q already exists", path)
		}
		return t.ensureFolders(append(usersync.FolderPrefixes(path), path))
	})
	if err != nil {
		return nil, err
	}
	return d.FindFolder(ctx, path)
}

// FindFolder returns a folder or ENOTFOUND.
func (d *DB) FindFolder(ctx context.Context, path string) (*usersync.Folder, error) {
	f, err := scanFolder(d.db.QueryRowContext(ctx, d.q(`SELECT `+folderCols+` FROM folders WHERE path_key = ?`), usersync.GroupNameKey(path)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, usersync.Errorf(usersync.ENOTFOUND, "folder %q not found", path)
	}
	return f, d.wrapErr("find folder", err)
}

// FindFolders lists the folders below under ("" for all), ordered by path.
func (d *DB) FindFolders(ctx context.Context, under string) ([]*usersync.Folder, error) {
	query, args := `SELECT `+folderCols+` FROM folders`, []any{}
	if under != "" {
		query += ` WHERE path_key LIKE ? ESCAPE '\'`
		args = append(args, prefixPattern(under+usersync.FolderSeparator))
	}
	rows, err := d.db.QueryContext(ctx, d.q(query+` ORDER BY path_key`), args...)
	if err != nil {
		return nil, d.wrapErr("list folders", err)
	}
	defer rows.Close()
	var out []*usersync.Folder
	for rows.Next() {
		f, err := scanFolder(rows)
		if err != nil {
			return nil, d.wrapErr("list folders", err)
		}
		out = append(out, f)
	}
	return out, d.wrapErr("list folders", rows.Err())
}

// SetFolderAttributes merges attrs into a folder's attributes.
func (d *DB) SetFolderAttributes(ctx context.Context, path string, attrs map[string]*string) (*usersync.Folder, error) {
	clean := map[string]string{}
	for k, v := range attrs {
		if v != nil {
			clean[k] = *v
		}
	}
	if err := usersync.ValidateAttributes("folder "+path, clean); err != nil {
		return nil, err
	}
	var out *usersync.Folder
	err := d.update(ctx, func(t *tx) error {
		f, err := scanFolder(t.queryRow(`SELECT `+folderCols+` FROM folders WHERE path_key = ?`+t.d.dialect.forUpdate, usersync.GroupNameKey(path)))
		if errors.Is(err, sql.ErrNoRows) {
			return usersync.Errorf(usersync.ENOTFOUND, "folder %q not found", path)
		} else if err != nil {
			return t.d.wrapErr("read folder", err)
		}
		next := *f
		next.Attributes = applyAttrs(f.Attributes, attrs)
		out = &next
		diff := diffFields(attrFields(f.Attributes), attrFields(next.Attributes))
		if len(diff) == 0 {
			return nil
		}
		next.Version, next.UpdatedAt = f.Version+1, fromMicros(t.now)
		if _, err := t.exec(`UPDATE folders SET attributes = ?, updated_at = ?, version = ? WHERE id = ?`,
			encodeAttrs(next.Attributes), t.now, next.Version, f.ID); err != nil {
			return t.d.wrapErr("update folder", err)
		}
		t.change(usersync.FolderUpdated, folderRef(&next), nil, diff)
		return nil
	})
	return out, err
}

func attrFields(attrs map[string]string) map[string]string {
	m := make(map[string]string, len(attrs))
	for k, v := range attrs {
		m["attributes."+k] = v
	}
	return m
}

// DeleteFolder removes a folder that holds no group and no sub-folder.
func (d *DB) DeleteFolder(ctx context.Context, path string) error {
	return d.update(ctx, func(t *tx) error {
		f, err := scanFolder(t.queryRow(`SELECT `+folderCols+` FROM folders WHERE path_key = ?`+t.d.dialect.forUpdate, usersync.GroupNameKey(path)))
		if errors.Is(err, sql.ErrNoRows) {
			return usersync.Errorf(usersync.ENOTFOUND, "folder %q not found", path)
		} else if err != nil {
			return t.d.wrapErr("read folder", err)
		}
		key := usersync.GroupNameKey(f.Path)
		var groups, subs int
		if err := t.queryRow(`SELECT COUNT(*) FROM groups WHERE folder_key = ?`, key).Scan(&groups); err != nil {
			return t.d.wrapErr("count groups in folder", err)
		}
		if err := t.queryRow(`SELECT COUNT(*) FROM folders WHERE path_key LIKE ? ESCAPE '\'`, prefixPattern(key+usersync.FolderSeparator)).Scan(&subs); err != nil {
			return t.d.wrapErr("count sub-folders", err)
		}
		if groups+subs > 0 {
			return usersync.Errorf(usersync.ECONFLICT, "folder %q is not empty: it holds %d groups and %d folders", f.Path, groups, subs)
		}
		if _, err := t.exec(`DELETE FROM folders WHERE id = ?`, f.ID); err != nil {
			return t.d.wrapErr("delete folder", err)
		}
		t.change(usersync.FolderDeleted, folderRef(f), nil, diffFields(attrFields(f.Attributes), nil))
		return nil
	})
}
