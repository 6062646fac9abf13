package usersync

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultGroupName is the built-in group that always exists and cannot be
// deleted or renamed. Syncs add users to it unless told not to.
const DefaultGroupName = "Default Group"

// FolderSeparator separates the folder path from the group's own name:
// "app:test:group5" is group "group5" in folder "app:test".
const FolderSeparator = ":"

// MaxGroupNameLength bounds a group's full name, path included.
const MaxGroupNameLength = 512

// Group is a named set of members. Its full name may carry a folder path.
type Group struct {
	ID          int64             `json:"id"`
	Name        string            `json:"name"` // full name, e.g. "app:test:group5" or "Sales"
	Description string            `json:"description"`
	Alias       string            `json:"alias"` // the source's object id, e.g. an Entra objectId
	Source      string            `json:"source"`
	SourceID    string            `json:"sourceId"`
	Attributes  map[string]string `json:"attributes"`
	// Flat says the name is as a source spells it (a pull, a SCIM client):
	// a ':' in it is part of the name, so the group is in no folder. It is
	// set when the group is made and never changes.
	Flat      bool      `json:"flat,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Version   int64     `json:"version"`
}

// Folder returns the folder the group is in ("" for the root, and for a
// flat name).
func (g *Group) Folder() string {
	if g.Flat {
		return ""
	}
	return FolderPath(g.Name)
}

// Folders returns every folder on the way to the group's, outermost first
// (none for a flat name).
func (g *Group) Folders() []string {
	if g.Flat {
		return nil
	}
	return FolderPrefixes(g.Name)
}

// GroupNameKey is the form group names are compared and indexed in.
func GroupNameKey(name string) string { return strings.ToLower(name) }

// FolderPath returns the folder a group name lives in ("" for the root).
func FolderPath(name string) string {
	if i := strings.LastIndex(name, FolderSeparator); i >= 0 {
		return name[:i]
	}
	return ""
}

// FolderPrefixes returns every folder on the way to name's folder,
// outermost first: "a:b:c" gives ["a", "a:b"].
func FolderPrefixes(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if strings.HasPrefix(name[i:], FolderSeparator) {
			out = append(out, name[:i])
		}
	}
	return out
}

// Normalize fills the defaults of a new group.
func (g *Group) Normalize() {
	if g.Source == "" {
		g.Source = SourceLocal
	}
	if g.Attributes == nil {
		g.Attributes = map[string]string{}
	}
}

// Validate reports the first problem with g's fields.
func (g *Group) Validate() error {
	if err := ValidateGroupName(g.Name, g.Flat); err != nil {
		return err
	}
	if err := ValidateText("group "+quote(g.Name), map[string]string{"description": g.Description, "alias": g.Alias, "source id": g.SourceID}); err != nil {
		return err
	}
	if g.Source == "" {
		return Errorf(EINVALID, "group %q: source is empty", g.Name)
	}
	return ValidateAttributes("group "+quote(g.Name), g.Attributes)
}

// ValidateGroupName checks a group's name: a folder path (see
// ValidatePath), or with flat a name as a source spells it — anything but
// empty, control characters or white space around it.
func ValidateGroupName(name string, flat bool) error {
	if !flat {
		return ValidatePath("group name", name, MaxGroupNameLength)
	}
	switch {
	case name == "":
		return Errorf(EINVALID, "group name is empty")
	case len(name) > MaxGroupNameLength:
		return Errorf(EINVALID, "group name %q is longer than %d characters", name[:40]+"…", MaxGroupNameLength)
	case strings.IndexFunc(name, unicode.IsControl) >= 0 || !utf8.ValidString(name):
		return Errorf(EINVALID, "group name %q contains a control character", name)
	case strings.TrimSpace(name) != name:
		return Errorf(EINVALID, "group name %q starts or ends with white space", name)
	}
	return nil
}

// ValidatePath checks a group name or folder path: non-empty segments
// separated by ":", no white space at a segment's ends, no control characters.
func ValidatePath(what, path string, max int) error {
	if path == "" {
		return Errorf(EINVALID, "%s is empty", what)
	}
	if len(path) > max {
		return Errorf(EINVALID, "%s %q is longer than %d characters", what, path[:40]+"…", max)
	}
	if strings.IndexFunc(path, unicode.IsControl) >= 0 || !utf8.ValidString(path) {
		return Errorf(EINVALID, "%s %q contains a control character", what, path)
	}
	for _, seg := range strings.Split(path, FolderSeparator) {
		if seg == "" || strings.TrimSpace(seg) != seg {
			return Errorf(EINVALID, "%s %q has an empty part or white space around a %q", what, path, FolderSeparator)
		}
	}
	return nil
}

// GroupUpdate names the fields to change; nil fields stay as they are.
type GroupUpdate struct {
	Name        *string
	Description *string
	Alias       *string
	Source      *string
	SourceID    *string
	Attributes  map[string]*string
}

// GroupChange is one all-or-nothing change of a group's attributes and
// user members.
type GroupChange struct {
	GroupUpdate
	Add    []int64 // users to add; each must exist
	Remove []int64 // users to remove; ids not in the group are ignored
	// ReplaceMembers makes the user members exactly Add and the group
	// members exactly AddGroups; Remove and RemoveGroups are ignored.
	ReplaceMembers bool
	// AddGroups and RemoveGroups change the groups that are members of
	// this one (nested groups). A group that would end up inside itself,
	// directly or through others, fails the change (EINVALID).
	AddGroups    []int64
	RemoveGroups []int64
}

// GroupFilter selects groups for listing.
type GroupFilter struct {
	Source string
	Folder *string // groups directly in this folder ("" = root), nil for all
	Search string  // case-insensitive substring of the name
	Where  Cond    // on GroupMatchFields, evaluated in the database; nil for all
	Offset int
	Limit  int
	Order  *Order    // nil: by name
	After  *Position // keyset paging: continue after this position of Order
}

// SortValue is a group's value of a sort field, as Position holds it.
func (g *Group) SortValue(field string) any {
	switch field {
	case "name":
		return GroupNameKey(g.Name)
	case "description":
		return g.Description
	case "alias":
		return g.Alias
	case "source":
		return g.Source
	case "sourceId":
		return g.SourceID
	case "createdAt":
		return g.CreatedAt.UnixMicro()
	case "updatedAt":
		return g.UpdatedAt.UnixMicro()
	}
	return g.ID
}

// GroupService manages groups and their members.
type GroupService interface {
	// CreateGroup stores g with the users of memberIDs as its members, in
	// one transaction: a user that does not exist fails it all (ENOTFOUND).
	CreateGroup(ctx context.Context, g *Group, memberIDs ...int64) error
	// CreateGroupWith stores g with the users ch.Add and the groups
	// ch.AddGroups as its members, in one transaction; the rest of ch is
	// not used.
	CreateGroupWith(ctx context.Context, g *Group, ch GroupChange) error
	FindGroupByID(ctx context.Context, id int64) (*Group, error)
	FindGroupByName(ctx context.Context, name string) (*Group, error)
	FindGroups(ctx context.Context, f GroupFilter) ([]*Group, int, error)
	UpdateGroup(ctx context.Context, id int64, upd GroupUpdate, expectVersion int64) (*Group, error)
	// DeleteGroup removes a group and its memberships; when expectVersion is
	// not 0 it fails with ESTALE unless the stored version equals it.
	DeleteGroup(ctx context.Context, id int64, expectVersion int64) error

	// ChangeGroup applies ch in one transaction: nothing of it is applied
	// when any part fails (a taken name, a user that does not exist). When
	// expectVersion is not 0 it fails with ESTALE unless the stored version
	// equals it. The version moves once when attributes or members change.
	ChangeGroup(ctx context.Context, id int64, ch GroupChange, expectVersion int64) (*Group, error)
	// AddMembers adds users to a group; users already in it are left alone.
	// It returns how many were added.
	AddMembers(ctx context.Context, groupID int64, userIDs []int64) (int, error)
	// RemoveMembers removes users from a group and returns how many were in it.
	RemoveMembers(ctx context.Context, groupID int64, userIDs []int64) (int, error)
	// Members lists a group's member users ordered by username.
	Members(ctx context.Context, groupID int64, offset, limit int) ([]*User, int, error)
	// MemberRefs lists every user member of a group by name and owner only:
	// what a sync compares, without reading whole profiles.
	MemberRefs(ctx context.Context, groupID int64) ([]MemberRef, error)
	// ScanMemberRefs calls fn with each user member of a group, in no
	// particular order, without holding them all; an error from fn stops it.
	ScanMemberRefs(ctx context.Context, groupID int64, fn func(MemberRef) error) error
	// MemberRefsOf returns the members of a group among the users q names:
	// the cost follows the users asked about, not the group's size.
	MemberRefsOf(ctx context.Context, groupID int64, q MemberQuery) ([]MemberRef, error)
	// CountMembers counts a group's user members.
	CountMembers(ctx context.Context, groupID int64) (int, error)
	// CountMembersUpTo counts a group's user members up to max: the cost
	// follows max, not the group's size.
	CountMembersUpTo(ctx context.Context, groupID int64, max int) (int, error)
	// HasMembersNotFrom reports whether a group has a user member that
	// source does not own.
	HasMembersNotFrom(ctx context.Context, groupID int64, source string) (bool, error)
	// GroupsOf lists the groups a user is a direct member of, by name.
	GroupsOf(ctx context.Context, userID int64) ([]*Group, error)

	// MemberGroups lists the groups that are direct members of a group,
	// ordered by name.
	MemberGroups(ctx context.Context, groupID int64) ([]*Group, error)
	// EffectiveMembers lists the users in a group directly or through the
	// groups nested in it, each once, ordered by username: one query.
	EffectiveMembers(ctx context.Context, groupID int64, offset, limit int) ([]*User, int, error)
	// MembershipsOf returns, for each of the users, the groups it is in,
	// directly or through nested groups, ordered by group name: one query
	// for all of them.
	MembershipsOf(ctx context.Context, userIDs []int64) (map[int64][]Membership, error)
}

// Membership is a group a user is in, and whether directly.
type Membership struct {
	GroupID   int64
	GroupName string
	Direct    bool
}

// Folder is a node of the group name hierarchy. Folders exist for every path
// prefix of every group name and may carry attributes.
type Folder struct {
	ID         int64             `json:"id"`
	Path       string            `json:"path"`
	Attributes map[string]string `json:"attributes"`
	CreatedAt  time.Time         `json:"createdAt"`
	UpdatedAt  time.Time         `json:"updatedAt"`
	Version    int64             `json:"version"`
}

// FolderService manages folders. Folders are made on demand when a group is
// created inside them; CreateFolder makes an empty one.
type FolderService interface {
	CreateFolder(ctx context.Context, path string) (*Folder, error)
	FindFolder(ctx context.Context, path string) (*Folder, error)
	FindFolders(ctx context.Context, under string) ([]*Folder, error)
	// SetFolderAttributes merges attrs: a key mapped to nil is removed.
	SetFolderAttributes(ctx context.Context, path string, attrs map[string]*string) (*Folder, error)
	// DeleteFolder removes an empty folder (no groups, no sub-folders).
	DeleteFolder(ctx context.Context, path string) error
}

// MemberQuery names users by id, or by their ids at a source (the users
// that source owns).
type MemberQuery struct {
	UserIDs   []int64
	Source    string
	SourceIDs []string
}

// MemberRef names a group member, who owns it, and the source groups that
// brought it into the group (see MemberChange.Via). Via may be shared with
// other refs: copy it before changing it in place.
type MemberRef struct {
	UserID   int64
	Username string
	Source   string
	SourceID string
	Via      []string
}
