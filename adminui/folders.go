package adminui

import (
	"net/http"
	"sort"
	"strings"

	"github.com/usersync/usersync"
)

// folderNode is a folder on the folders page: its attributes, and the
// group provisioners that cover what is under it, and why.
type folderNode struct {
	Path, Name string
	Attributes []kv
	Markers    []string // "o365: the folder carries etc:attribute:office365:o365Sync"
	Children   int
}

// foldersPage is the folder tree, one level at a time: a folder's
// attributes and provisioner markers, its sub-folders (with theirs), and a
// link to its groups.
func (u *ui) foldersPage(w http.ResponseWriter, r *http.Request, s *usersync.AdminSession) {
	ctx := r.Context()
	path := strings.Trim(r.FormValue("path"), usersync.FolderSeparator)
	var here *usersync.Folder
	if path != "" {
		var err error
		if here, err = u.ops.GetFolder(ctx, path); err != nil {
			u.fail(w, s, err)
			return
		}
	}
	below, err := u.ops.ListFolders(ctx, path)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	ps, err := u.ops.ListProvisioners(ctx)
	if err != nil {
		u.fail(w, s, err)
		return
	}
	byPath := map[string]*usersync.Folder{}
	for _, f := range below {
		byPath[usersync.GroupNameKey(f.Path)] = f
	}
	folder := func(p string) (*usersync.Folder, error) {
		if f := byPath[usersync.GroupNameKey(p)]; f != nil {
			return f, nil
		}
		if here != nil && usersync.GroupNameKey(p) == usersync.GroupNameKey(here.Path) {
			return here, nil
		}
		f, err := u.dir.FindFolder(ctx, p)
		if usersync.ErrorCode(err) == usersync.ENOTFOUND {
			return nil, nil
		}
		return f, err
	}
	node := func(f *usersync.Folder) (folderNode, error) {
		n := folderNode{Path: f.Path, Name: f.Path[strings.LastIndex(f.Path, usersync.FolderSeparator)+1:], Attributes: sorted(f.Attributes)}
		// A folder is covered as a group in it would be: by its own marker
		// or one above it.
		probe := &usersync.Group{Name: f.Path + usersync.FolderSeparator + "x"}
		for _, p := range ps {
			if p.Kind != usersync.ProvisionerGroups {
				continue
			}
			why, err := usersync.CoveredBy(p.Config.SyncAttribute, probe, folder)
			if err != nil {
				return n, err
			}
			if why != "" {
				n.Markers = append(n.Markers, p.Name+": "+why)
			}
		}
		return n, nil
	}
	var children []folderNode
	depth := strings.Count(path, usersync.FolderSeparator) + 1
	if path == "" {
		depth = 0
	}
	for _, f := range below {
		if strings.Count(f.Path, usersync.FolderSeparator) != depth {
			// Deeper: below is ordered by path, so it is under the last child.
			if last := len(children) - 1; last >= 0 && strings.HasPrefix(usersync.GroupNameKey(f.Path), usersync.GroupNameKey(children[last].Path)+usersync.FolderSeparator) {
				children[last].Children++
			}
			continue
		}
		n, err := node(f)
		if err != nil {
			u.fail(w, s, err)
			return
		}
		children = append(children, n)
	}
	sort.Slice(children, func(i, j int) bool { return children[i].Path < children[j].Path })
	data := map[string]any{"Path": path, "Children": children, "Crumbs": usersync.FolderPrefixes(path + usersync.FolderSeparator)}
	if here != nil {
		n, err := node(here)
		if err != nil {
			u.fail(w, s, err)
			return
		}
		data["Here"] = n
	}
	title := "Folders"
	if path != "" {
		title = "Folder " + path
	}
	u.render(w, http.StatusOK, "folders", view{Title: title, Session: s, Data: data})
}
