// Package pull is the sync engine that pulls named groups and their users
// from a source (Microsoft Graph, Okta, …) into the directory. For each group
// it computes a Plan — every create, update, membership add and removal with
// its reason — from what the source says and what the directory holds, then
// applies it as one batch. A dry run prints the plan; safety checks refuse a
// plan whole before anything is written.
package pull

import "context"

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
