package usersync

import (
	"context"
	"time"
)

// ChangeKind names what happened to an object.
type ChangeKind string

const (
	UserCreated   ChangeKind = "user.created"
	UserUpdated   ChangeKind = "user.updated"
	UserDeleted   ChangeKind = "user.deleted"
	GroupCreated  ChangeKind = "group.created"
	GroupUpdated  ChangeKind = "group.updated"
	GroupDeleted  ChangeKind = "group.deleted"
	FolderCreated ChangeKind = "folder.created"
	FolderUpdated ChangeKind = "folder.updated"
	FolderDeleted ChangeKind = "folder.deleted"
	MemberAdded   ChangeKind = "member.added"
	MemberRemoved ChangeKind = "member.removed"
)

// Object types named in change events and memberships.
const (
	ObjectUser   = "user"
	ObjectGroup  = "group"
	ObjectFolder = "folder"
)

// ObjectRef points at a directory object as it was when the event happened.
type ObjectRef struct {
	Type string `json:"type"`
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// FieldChange is one field's value before and after a change. Attributes are
// named "attributes.<name>".
type FieldChange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Change is one event of the append-only change log. It is written in the
// same transaction as the change it describes.
type Change struct {
	Seq    int64                  `json:"seq"`
	At     time.Time              `json:"at"`
	Kind   ChangeKind             `json:"kind"`
	Object ObjectRef              `json:"object"`           // the user, group or folder; for memberships the group
	Member *ObjectRef             `json:"member,omitempty"` // for memberships: the member
	Fields map[string]FieldChange `json:"fields,omitempty"`
	Actor  string                 `json:"actor"`
}

// ChangeLog reads the change log. Sequence numbers only grow, and a reader
// that asks for the changes after the last one it saw never misses one that
// commits later.
type ChangeLog interface {
	ChangesAfter(ctx context.Context, after int64, limit int) ([]*Change, error)
	LastChangeSeq(ctx context.Context) (int64, error)
	// Cursor returns the last sequence number a consumer has processed (0 if none).
	Cursor(ctx context.Context, consumer string) (int64, error)
	SetCursor(ctx context.Context, consumer string, seq int64) error
}
