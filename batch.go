package usersync

import "context"

// UserFields selects user fields that an upsert overwrites on an existing user.
type UserFields uint16

const (
	FieldEmail UserFields = 1 << iota
	FieldFirstName
	FieldLastName
	FieldType
	FieldEnabled
	FieldAuthMethod
	FieldSource     // source and source id together
	FieldAttributes // the upsert's attributes are merged in; an empty value removes the key
	// FieldUsername renames the user (only with UserUpsert.ID); it clears
	// the soft-delete mark, which belongs to the old name.
	FieldUsername
)

// ProfileFields are the fields a source owns once it owns a user.
const ProfileFields = FieldEmail | FieldFirstName | FieldLastName | FieldEnabled | FieldAttributes

// UserUpsert creates or updates one user, matched by username, or by ID
// when that is set.
type UserUpsert struct {
	User   User
	ID     int64      // when not 0: update this user, whatever its username (it must exist)
	Create bool       // create the user when missing (otherwise it is skipped)
	Update UserFields // fields overwritten when the user exists
}

// GroupFields selects group fields that an upsert overwrites.
type GroupFields uint16

const (
	FieldDescription GroupFields = 1 << iota
	FieldAlias
	FieldGroupSource
	FieldGroupAttributes
)

// GroupUpsert creates or updates one group, matched by name.
type GroupUpsert struct {
	Group  Group
	Create bool
	Update GroupFields
}

// MemberChange adds a user to a group or removes it, both named.
//
// Via names the source group that brings the membership (for example
// "o365:<tenant>/<group id>"), so that a directory group fed by several
// source groups keeps a member while any of them holds it. An add with Via
// records it on the membership; a removal with Via drops it and removes the
// membership only when no other source group holds it (a membership with no
// source groups at all, made by hand, is removed). A removal without Via
// removes the membership outright.
type MemberChange struct {
	Group    string `json:"group"`
	Username string `json:"username"`
	// UserID, when set, names the user by id, and Username only says who
	// it is in messages: a caller that read the user in an earlier batch
	// names it so, as a rename since (its own, or a swap) may have given
	// that name to another user.
	UserID int64  `json:"userId,omitempty"`
	Remove bool   `json:"remove,omitempty"`
	Via    string `json:"via,omitempty"`
}

// Batch is a set of writes applied in one transaction, all or nothing.
// Groups and users are applied before memberships, so a membership may name
// a user or group created by the same batch. Applying a batch whose effect
// is already in place writes nothing and appends no change events.
type Batch struct {
	Users   []UserUpsert
	Groups  []GroupUpsert
	Members []MemberChange
}

// BatchResult counts what a batch did.
type BatchResult struct {
	UsersCreated    int   `json:"usersCreated"`
	UsersUpdated    int   `json:"usersUpdated"`
	UsersUnchanged  int   `json:"usersUnchanged"`
	UsersSkipped    int   `json:"usersSkipped"` // missing and not to be created
	GroupsCreated   int   `json:"groupsCreated"`
	GroupsUpdated   int   `json:"groupsUpdated"`
	GroupsUnchanged int   `json:"groupsUnchanged"`
	GroupsSkipped   int   `json:"groupsSkipped"`
	MembersAdded    int   `json:"membersAdded"`
	MembersRemoved  int   `json:"membersRemoved"`
	RowsWritten     int64 `json:"rowsWritten"` // rows inserted, updated or deleted, change events included
	// CreatedIDs are the ids of the users created, in the batch's order
	// (a caller that must know them later keeps numbers, not users).
	CreatedIDs []int64 `json:"-"`
	// FoundIDs are the ids of users the batch was to create and found made
	// meanwhile (by another writer), so updated instead.
	FoundIDs []int64 `json:"-"`
}

// BatchApplier applies batches.
type BatchApplier interface {
	ApplyBatch(ctx context.Context, b *Batch) (*BatchResult, error)
}

// Directory is everything a storage backend provides.
type Directory interface {
	UserService
	GroupService
	FolderService
	TokenService
	SettingService
	ChangeLog
	BatchApplier
	SyncStateService
	ProvisionerService
	LeaseService
	ScheduleService
	SignInService
	RoleService
	UserProvisioningService
	Close() error
}
