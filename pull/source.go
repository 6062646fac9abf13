// Package pull is the sync engine that pulls named groups and their users
// from a source (Microsoft Graph, Okta, …) into the directory. For each group
// it computes a Plan — every create, update, membership add and removal with
// its reason — from what the source says and what the directory holds, then
// applies it as one batch. A dry run prints the plan; safety checks refuse a
// plan whole before anything is written.
package pull

import (
	"context"
	"errors"
)

// Group is a group as a source names it.
type Group struct {
	ID          string
	Name        string
	Description string
}

// User is a source's user already mapped to directory fields.
type User struct {
	ID         string // the user's id at the source
	Username   string
	Email      string
	FirstName  string
	LastName   string
	Enabled    bool
	Attributes map[string]string // custom attributes asked for
	// NoCreate, when set, says why this user must not be created in the
	// directory (e.g. deprovisioned at the source); an existing one is
	// still updated, so it is disabled there.
	NoCreate string

	// profileOnly marks a user read to free a name (see Lookup): its
	// profile is updated, its memberships are left alone.
	profileOnly bool
}

// Source is where groups and users are pulled from. A new identity provider
// is a new Source, not a change to the engine.
type Source interface {
	// Owner names the source as the owner of users and groups it creates,
	// e.g. "o365:contoso.onmicrosoft.com".
	Owner() string
	// FindGroup resolves a group by name or id.
	FindGroup(ctx context.Context, nameOrID string) (Group, error)
	// Members streams a group's users, nested groups flattened, page by page.
	Members(ctx context.Context, g Group, fn func(page []User) error) error
}

// Counter is a Source that can tell a group's size before reading it, so
// that a group over the user limit is refused before anything is fetched or
// written, and a group within it can be applied page by page as it arrives.
type Counter interface {
	CountMembers(ctx context.Context, g Group) (int, error)
}

// Changes is what happened to a group and its users since a saved state.
type Changes struct {
	Added   []User   // users who joined the group, with their profiles
	Removed []string // source ids of users who left it (or were deleted)
	Updated []User   // users whose profile changed; not all are members
	State   string   // the state to save once these changes are applied
}

// DeltaSource is a Source that can report changes since a saved state
// instead of a full read (Graph delta queries).
type DeltaSource interface {
	Source
	// DeltaStart marks "now", before a full read, so that the next run can
	// ask for changes since. ok is false when the group cannot be followed
	// by changes (e.g. nested groups) and must always be read in full.
	DeltaStart(ctx context.Context, g Group) (state string, ok bool, err error)
	// Changes reports what changed since state. ErrFullSyncNeeded means
	// the state expired or cannot tell; the engine then reads in full. A
	// source may wrap it as "%w: why" to give the reason shown.
	Changes(ctx context.Context, g Group, state string) (*Changes, error)
}

// ErrFullSyncNeeded is returned by DeltaSource.Changes when only a full read
// can tell what changed.
var ErrFullSyncNeeded = errors.New("a full read is needed")

// Describer is a Source whose answers depend on options of its own: which
// attributes it reads and how it maps them. The engine keeps them with the
// group's sync state, so that changing any of them means a full read that
// re-applies it, and attributes no option fills any more are removed.
type Describer interface {
	// Options maps each such option, by its command-line name (for
	// example "--username-attr"), to its value.
	Options() map[string]string
	// Attributes lists the custom attribute names the source fills.
	Attributes() []string
	// Suggest returns the known attribute name closest to a mistyped one,
	// or "" when nothing is close.
	Suggest(name string) string
}
