package usersync

import (
	"context"
	"time"
)

// SyncState is what a pull keeps between runs for one source group: an
// opaque value (delta links) and when the group was last read in full.
type SyncState struct {
	Source    string    `json:"source"` // e.g. "o365:<tenant>"
	Key       string    `json:"key"`    // e.g. the source group's id
	Value     string    `json:"value"`
	FullAt    time.Time `json:"fullAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// SyncStateService stores sync states.
type SyncStateService interface {
	// SyncState returns a saved state; ENOTFOUND when there is none.
	SyncState(ctx context.Context, source, key string) (SyncState, error)
	// SaveSyncState creates or replaces a state.
	SaveSyncState(ctx context.Context, s SyncState) error
	// SyncStates lists a source's states, by key.
	SyncStates(ctx context.Context, source string) ([]SyncState, error)
	// DeleteSyncState forgets a state; forgetting a missing one is not an error.
	DeleteSyncState(ctx context.Context, source, key string) error
	// Sources lists every source that owns a user or a group or keeps a
	// sync state, sorted.
	Sources(ctx context.Context) ([]string, error)
	// RenameSource moves everything a source owns to another name for the
	// same source, in one transaction: its users and groups (a change event
	// each), its sync states (one already kept under the new name wins),
	// and the memberships its source groups brought. It reports how many
	// users and groups moved.
	RenameSource(ctx context.Context, from, to string) (SourceRenamed, error)
}

// SourceRenamed is what RenameSource moved.
type SourceRenamed struct {
	Users, Groups, SyncStates int
}
