package api

import (
	"context"
	"time"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/schedule"
)

// Operations are what the API does, addressed as an administrator names
// things (usernames, group names, folder paths, schedule names). Local
// does them on a directory and is what the HTTP handlers call; Client
// does them through a usersync serve's API. The command line takes either,
// so that its commands work the same with --server as on the database.
//
// Errors carry the directory's codes (usersync.ErrorCode) in both: Client
// turns the API's problem answers back into them. A version of 0 means
// "whatever is stored"; another fails with ESTALE when the object moved on.
type Operations interface {
	ListUsers(ctx context.Context, q UserQuery) (*UserPage, error)
	GetUser(ctx context.Context, username string) (*usersync.User, error)
	// UserGroups names the groups a user is a direct member of.
	UserGroups(ctx context.Context, username string) ([]string, error)
	CreateUser(ctx context.Context, u NewUser) (*usersync.User, error)
	UpdateUser(ctx context.Context, username string, ch UserChange, version int64) (*usersync.User, error)
	DeleteUser(ctx context.Context, username string, version int64) error

	ListGroups(ctx context.Context, q GroupQuery) (*GroupPage, error)
	GetGroup(ctx context.Context, name string) (*usersync.Group, error)
	CreateGroup(ctx context.Context, g NewGroup) (*usersync.Group, error)
	UpdateGroup(ctx context.Context, name string, ch GroupChange, version int64) (*usersync.Group, error)
	DeleteGroup(ctx context.Context, name string, version int64) error
	ListMembers(ctx context.Context, group string, q MemberQuery) (*MemberPage, error)
	// ChangeMembers adds and removes members in one transaction; a name
	// that does not exist changes nothing (EINVALID).
	ChangeMembers(ctx context.Context, group string, ch MembersChange, version int64) (*MembersChanged, error)

	ListFolders(ctx context.Context, under string) ([]*usersync.Folder, error)
	GetFolder(ctx context.Context, path string) (*usersync.Folder, error)
	CreateFolder(ctx context.Context, path string) (*usersync.Folder, error)
	DeleteFolder(ctx context.Context, path string) error
	SetFolderAttributes(ctx context.Context, path string, attrs map[string]*string) (*usersync.Folder, error)

	// ListTokens lists tokens, of one user when user is not "".
	ListTokens(ctx context.Context, user string) ([]*usersync.Token, error)
	CreateToken(ctx context.Context, user, name string) (*CreatedToken, error)
	RevokeToken(ctx context.Context, id int64) error

	// Settings come with secret values masked (Setting.Shown).
	Settings(ctx context.Context) ([]usersync.Setting, error)
	Setting(ctx context.Context, key string) (usersync.Setting, error)
	SetSetting(ctx context.Context, key, value string) (usersync.Setting, error)
	ResetSetting(ctx context.Context, key string) (usersync.Setting, error)

	// Changes reads the change log after a sequence number, waiting up to
	// wait for one when there is none yet.
	Changes(ctx context.Context, after int64, limit int, wait time.Duration) ([]*usersync.Change, error)

	ListSchedules(ctx context.Context) ([]*usersync.Schedule, error)
	GetSchedule(ctx context.Context, name string) (*usersync.Schedule, error)
	CreateSchedule(ctx context.Context, s NewSchedule) (*usersync.Schedule, error)
	UpdateSchedule(ctx context.Context, name string, ch ScheduleChange, version int64) (*usersync.Schedule, error)
	DeleteSchedule(ctx context.Context, name string) error
	// RunSchedule queues a run now on the serving replicas; duplicate
	// when one was waiting or running already.
	RunSchedule(ctx context.Context, name string) (duplicate bool, err error)
	ListRuns(ctx context.Context, schedule string, limit int) ([]*usersync.Run, error)
	GetRun(ctx context.Context, id int64) (*usersync.Run, error)
	// DecideRun answers a quarantined run: reject records that nothing is
	// removed; allow queues a run that applies the held removals.
	DecideRun(ctx context.Context, id int64, allow bool) (*usersync.Run, error)

	ListProvisioners(ctx context.Context) ([]*usersync.Provisioner, error)
	ProvisionerStatus(ctx context.Context, name string) (*ProvisionerStatus, error)
	// ProvisionerLinks lists what a provisioner keeps of each directory
	// object it writes (provision.Links).
	ProvisionerLinks(ctx context.Context, name string) ([]usersync.Link, error)
	// RetryProvisioner clears a group's failures or quarantine and
	// reconciles it now; a new failure shows in the status it returns.
	RetryProvisioner(ctx context.Context, name, group string) (*ProvisionerStatus, error)
}

// UserQuery selects a page of users ordered by username.
type UserQuery struct {
	Search  string `query:"search" doc:"a case-insensitive part of the username, email or name"`
	Source  string `query:"source" doc:"only users this source owns (local, scim, o365:<tenant>, okta:<host>)"`
	Type    string `query:"type" enum:"regular,power_user,administrator" doc:"only users of this type"`
	Enabled string `query:"enabled" enum:"true,false" doc:"only enabled (true) or disabled (false) users"`
	Paging
}

// GroupQuery selects a page of groups ordered by name.
type GroupQuery struct {
	Search string `query:"search" doc:"a case-insensitive part of the name"`
	Source string `query:"source" doc:"only groups this source owns"`
	Folder string `query:"folder" doc:"only groups directly in this folder"`
	Top    bool   `query:"top" doc:"only groups in no folder"`
	Paging
}

// MemberQuery selects a page of a group's members.
type MemberQuery struct {
	Transitive bool `query:"transitive" doc:"the effective members: users in the group and in every group nested in it, each once"`
	Paging
}

// UserPage, GroupPage and MemberPage are pages of a listing: pass
// NextCursor as the next query's Cursor; it is empty on the last page.
type (
	UserPage struct {
		Items      []*usersync.User `json:"items"`
		Total      int              `json:"total" doc:"users the query selects, on every page"`
		NextCursor string           `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last"`
	}
	GroupPage struct {
		Items      []*usersync.Group `json:"items"`
		Total      int               `json:"total"`
		NextCursor string            `json:"next_cursor,omitempty"`
	}
	MemberPage struct {
		Users      []*usersync.User `json:"users"`
		Groups     []string         `json:"groups" doc:"the groups nested directly in it (empty with transitive)"`
		Total      int              `json:"total" doc:"user members (effective ones with transitive)"`
		NextCursor string           `json:"next_cursor,omitempty"`
	}
)

// MembersChanged is a group after a change of its members, and how many
// of those named were added or removed (the others were already in, or
// not in, the group).
type MembersChanged struct {
	Group         *usersync.Group `json:"group"`
	Added         int             `json:"added"`
	Removed       int             `json:"removed"`
	AddedGroups   int             `json:"addedGroups"`
	RemovedGroups int             `json:"removedGroups"`
}

// CreatedToken is a new token: the clear token is shown this once.
type CreatedToken struct {
	Token string          `json:"token" doc:"the clear token: shown once, stored only as a hash"`
	Info  *usersync.Token `json:"info"`
}

// ScheduleChange names the fields of a schedule to change; absent ones stay.
type ScheduleChange struct {
	Cron     *string   `json:"cron,omitempty" doc:"five-field cron, or Quartz with seconds"`
	TimeZone *string   `json:"timeZone,omitempty"`
	Command  *[]string `json:"command,omitempty" doc:"checked as create checks it"`
	Paused   *bool     `json:"paused,omitempty"`
}

// ProvisionerStatus is a provisioner with how far it is and what fails.
type ProvisionerStatus struct {
	Provisioner *usersync.Provisioner      `json:"provisioner"`
	Cursor      int64                      `json:"cursor" doc:"the last change-log event it processed"`
	LastChange  int64                      `json:"lastChange"`
	Backlog     int64                      `json:"backlog" doc:"change-log events it has not processed yet"`
	LagSeconds  float64                    `json:"lagSeconds" doc:"how long the oldest change it has not processed has waited (0 without a backlog)"`
	Items       []usersync.ProvisionerItem `json:"items" doc:"its failing and quarantined groups"`
	Holds       []usersync.Hold            `json:"holds" doc:"what its guards hold back for an administrator (a mass deprovision)"`
}

// checkCron is the check a schedule's cron and time zone get before they
// are stored.
func checkCron(spec, tz string) error {
	if _, err := schedule.Parse(spec, tz); err != nil {
		return usersync.Errorf(usersync.EINVALID, "%v", err)
	}
	return nil
}
