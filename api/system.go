package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/usersync/usersync"
)

// ItemList is a listing that fits one answer.
type ItemList[T any] struct {
	Items []T `json:"items"`
}

func items[T any](v []T, err error) (*struct{ Body ItemList[T] }, error) {
	return body(ItemList[T]{Items: nonNil(v)}, err)
}

// ByPath names a folder in the path.
type ByPath struct {
	Path string `path:"path" doc:"the folder path (app:test), URL-encoded"`
}

func (s *server) folders() {
	huma.Register(s.api, huma.Operation{OperationID: "list-folders", Method: http.MethodGet, Path: "/folders", Summary: "List folders", Tags: []string{"folders"}},
		func(ctx context.Context, in *struct {
			Under string `query:"under" doc:"only folders under this path"`
		}) (*struct{ Body ItemList[*usersync.Folder] }, error) {
			return items(s.ops.ListFolders(ctx, in.Under))
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-folder", Method: http.MethodGet, Path: "/folders/{path}", Summary: "Read a folder and its attributes", Tags: []string{"folders"}},
		func(ctx context.Context, in *ByPath) (*struct{ Body *usersync.Folder }, error) {
			return body(s.ops.GetFolder(ctx, in.Path))
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-folder", Method: http.MethodPut, Path: "/folders/{path}", Summary: "Create an empty folder and the folders above it", Tags: []string{"folders"}},
		func(ctx context.Context, in *ByPath) (*struct{ Body *usersync.Folder }, error) {
			return body(s.ops.CreateFolder(ctx, in.Path))
		})
	huma.Register(s.api, huma.Operation{OperationID: "delete-folder", Method: http.MethodDelete, Path: "/folders/{path}", Summary: "Delete an empty folder (no groups, no folders in it)", Tags: []string{"folders"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *ByPath) (*struct{}, error) {
			return nil, apiError0(s.ops.DeleteFolder(ctx, in.Path))
		})
	huma.Register(s.api, huma.Operation{OperationID: "set-folder-attributes", Method: http.MethodPatch, Path: "/folders/{path}", Summary: "Set or remove (null) a folder's attributes, such as a provisioner's marker", Tags: []string{"folders"}},
		func(ctx context.Context, in *struct {
			ByPath
			Body struct {
				Attributes map[string]*string `json:"attributes"`
			}
		}) (*struct{ Body *usersync.Folder }, error) {
			return body(s.ops.SetFolderAttributes(ctx, in.Path, in.Body.Attributes))
		})
}

func (s *server) tokens() {
	huma.Register(s.api, huma.Operation{OperationID: "list-tokens", Method: http.MethodGet, Path: "/tokens", Summary: "List API tokens (never their values)", Tags: []string{"tokens"}},
		func(ctx context.Context, in *struct {
			User string `query:"user" doc:"only this user's tokens"`
		}) (*struct{ Body ItemList[*usersync.Token] }, error) {
			return items(s.ops.ListTokens(ctx, in.User))
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-token", Method: http.MethodPost, Path: "/tokens", Summary: "Create an API token for a user", Tags: []string{"tokens"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct {
			Body struct {
				User string `json:"user" minLength:"1" doc:"the username the token signs in as"`
				Name string `json:"name,omitempty" doc:"what the token is for"`
			}
		}) (*struct{ Body *CreatedToken }, error) {
			return body(s.ops.CreateToken(ctx, in.Body.User, in.Body.Name))
		})
	huma.Register(s.api, huma.Operation{OperationID: "revoke-token", Method: http.MethodDelete, Path: "/tokens/{id}", Summary: "Revoke an API token", Tags: []string{"tokens"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *struct {
			ID int64 `path:"id"`
		}) (*struct{}, error) {
			return nil, apiError0(s.ops.RevokeToken(ctx, in.ID))
		})
}

// ByKey names a setting in the path.
type ByKey struct {
	Key string `path:"key" doc:"the setting's key, such as SCIM_REQUIRE_EMAIL"`
}

func (s *server) settings() {
	huma.Register(s.api, huma.Operation{OperationID: "list-settings", Method: http.MethodGet, Path: "/settings", Summary: "List every setting with its type and description (secret values masked)", Tags: []string{"settings"}},
		func(ctx context.Context, in *struct{}) (*struct{ Body ItemList[usersync.Setting] }, error) {
			return items(s.ops.Settings(ctx))
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-setting", Method: http.MethodGet, Path: "/settings/{key}", Summary: "Read a setting (a secret value masked)", Tags: []string{"settings"}},
		func(ctx context.Context, in *ByKey) (*struct{ Body usersync.Setting }, error) {
			return body(s.ops.Setting(ctx, in.Key))
		})
	huma.Register(s.api, huma.Operation{OperationID: "set-setting", Method: http.MethodPut, Path: "/settings/{key}", Summary: "Set a setting (checked against its type)", Tags: []string{"settings"}},
		func(ctx context.Context, in *struct {
			ByKey
			Body struct {
				Value string `json:"value"`
			}
		}) (*struct{ Body usersync.Setting }, error) {
			return body(s.ops.SetSetting(ctx, in.Key, in.Body.Value))
		})
	huma.Register(s.api, huma.Operation{OperationID: "reset-setting", Method: http.MethodDelete, Path: "/settings/{key}", Summary: "Return a setting to its default", Tags: []string{"settings"}},
		func(ctx context.Context, in *ByKey) (*struct{ Body usersync.Setting }, error) {
			return body(s.ops.ResetSetting(ctx, in.Key))
		})
}

// ChangeList is a run of the change log.
type ChangeList struct {
	Items []*usersync.Change `json:"items"`
	Last  int64              `json:"last" doc:"the sequence number to pass as after next time"`
}

func (s *server) changes() {
	huma.Register(s.api, huma.Operation{OperationID: "list-changes", Method: http.MethodGet, Path: "/changes", Summary: "Read the change log after a sequence number, waiting for new changes if asked", Tags: []string{"changes"}},
		func(ctx context.Context, in *struct {
			After int64 `query:"after" minimum:"0" doc:"changes after this sequence number"`
			Limit int   `query:"limit" minimum:"1" maximum:"1000" default:"100"`
			Wait  int   `query:"wait" minimum:"0" maximum:"60" doc:"seconds to wait for a change when there is none yet (long polling)"`
		}) (*struct{ Body ChangeList }, error) {
			cs, err := s.ops.Changes(ctx, in.After, in.Limit, time.Duration(in.Wait)*time.Second)
			out := ChangeList{Items: cs, Last: in.After}
			if len(cs) > 0 {
				out.Last = cs[len(cs)-1].Seq
			}
			return body(out, err)
		})
}

// ScheduleOutput is one schedule, with its version as ETag.
type ScheduleOutput struct {
	ETag string `header:"ETag"`
	Body *usersync.Schedule
}

func scheduleOutput(sc *usersync.Schedule, err error) (*ScheduleOutput, error) {
	if err != nil {
		return nil, apiError(err)
	}
	return &ScheduleOutput{ETag: etag(sc.Version), Body: sc}, nil
}

// ByScheduleName names a schedule in the path.
type ByScheduleName struct {
	Name string `path:"name"`
}

// ByRunID names a run in the path.
type ByRunID struct {
	ID int64 `path:"id"`
}

func (s *server) schedules() {
	huma.Register(s.api, huma.Operation{OperationID: "list-schedules", Method: http.MethodGet, Path: "/schedules", Summary: "List the schedules", Tags: []string{"schedules"}},
		func(ctx context.Context, in *struct{}) (*struct{ Body ItemList[*usersync.Schedule] }, error) {
			return items(s.ops.ListSchedules(ctx))
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-schedule", Method: http.MethodGet, Path: "/schedules/{name}", Summary: "Read a schedule", Tags: []string{"schedules"}},
		func(ctx context.Context, in *ByScheduleName) (*ScheduleOutput, error) {
			return scheduleOutput(s.ops.GetSchedule(ctx, in.Name))
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-schedule", Method: http.MethodPatch, Path: "/schedules/{name}", Summary: "Change a schedule's cron, time zone or command, or pause or resume it", Tags: []string{"schedules"}},
		func(ctx context.Context, in *struct {
			ByScheduleName
			IfMatch
			Body ScheduleChange
		}) (*ScheduleOutput, error) {
			v, err := in.version()
			if err != nil {
				return nil, err
			}
			return scheduleOutput(s.ops.UpdateSchedule(ctx, in.Name, in.Body, v))
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-runs", Method: http.MethodGet, Path: "/runs", Summary: "List schedule runs, latest first", Tags: []string{"schedules"}},
		func(ctx context.Context, in *struct {
			Schedule string `query:"schedule" doc:"only this schedule's runs"`
			Limit    int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
		}) (*struct{ Body ItemList[*usersync.Run] }, error) {
			return items(s.ops.ListRuns(ctx, in.Schedule, in.Limit))
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-run", Method: http.MethodGet, Path: "/runs/{id}", Summary: "Read a run, with its output", Tags: []string{"schedules"}},
		func(ctx context.Context, in *ByRunID) (*struct{ Body *usersync.Run }, error) {
			return body(s.ops.GetRun(ctx, in.ID))
		})
	huma.Register(s.api, huma.Operation{OperationID: "decide-run", Method: http.MethodPost, Path: "/runs/{id}/decision", Summary: "Allow or reject the removals a quarantined run held", Tags: []string{"schedules"},
		Description: "reject records that nothing is removed; allow queues a run of the schedule with --allow-removals (202) and records which run applied them."},
		func(ctx context.Context, in *struct {
			ByRunID
			Body struct {
				Allow bool `json:"allow" doc:"true: apply the held removals; false: reject them"`
			}
		}) (*struct{ Body *usersync.Run }, error) {
			return body(s.ops.DecideRun(ctx, in.ID, in.Body.Allow))
		})
}

// NewSchedule is a schedule to create.
type NewSchedule struct {
	Name     string   `json:"name" minLength:"1" maxLength:"64" pattern:"^[A-Za-z0-9._-]+$"`
	Cron     string   `json:"cron" minLength:"1" doc:"five-field cron, or Quartz with seconds"`
	TimeZone string   `json:"timeZone,omitempty" doc:"IANA time zone (default UTC)"`
	Command  []string `json:"command" minItems:"2" doc:"the arguments after usersync: o365 provision … or okta provision …, without secrets"`
	Paused   bool     `json:"paused,omitempty"`
}

// RunQueued answers a request for a run now.
type RunQueued struct {
	Queued    bool `json:"queued"`
	Duplicate bool `json:"duplicate" doc:"a run was already waiting or running: no second one was queued"`
}

func (s *server) scheduleWrites() {
	huma.Register(s.api, huma.Operation{OperationID: "create-schedule", Method: http.MethodPost, Path: "/schedules", Summary: "Create a schedule (checked as usersync schedules create checks it)", Tags: []string{"schedules"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body NewSchedule }) (*ScheduleOutput, error) {
			return scheduleOutput(s.ops.CreateSchedule(ctx, in.Body))
		})
	huma.Register(s.api, huma.Operation{OperationID: "delete-schedule", Method: http.MethodDelete, Path: "/schedules/{name}", Summary: "Delete a schedule (its runs stay on record)", Tags: []string{"schedules"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *ByScheduleName) (*struct{}, error) {
			return nil, apiError0(s.ops.DeleteSchedule(ctx, in.Name))
		})
	huma.Register(s.api, huma.Operation{OperationID: "run-schedule", Method: http.MethodPost, Path: "/schedules/{name}/runs", Summary: "Queue a run of a schedule now", Tags: []string{"schedules"}, DefaultStatus: http.StatusAccepted},
		func(ctx context.Context, in *ByScheduleName) (*struct{ Body RunQueued }, error) {
			dup, err := s.ops.RunSchedule(ctx, in.Name)
			return body(RunQueued{Queued: !dup, Duplicate: dup}, err)
		})
}

// ByProvisioner names a provisioner in the path.
type ByProvisioner struct {
	Name string `path:"name"`
}

func (s *server) provisioners() {
	huma.Register(s.api, huma.Operation{OperationID: "list-provisioners", Method: http.MethodGet, Path: "/provisioners", Summary: "List the provisioners (never their secrets)", Tags: []string{"provisioners"}},
		func(ctx context.Context, in *struct{}) (*struct {
			Body ItemList[*usersync.Provisioner]
		}, error) {
			return items(s.ops.ListProvisioners(ctx))
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-provisioner", Method: http.MethodGet, Path: "/provisioners/{name}", Summary: "A provisioner's settings, backlog, and failing and quarantined groups", Tags: []string{"provisioners"}},
		func(ctx context.Context, in *ByProvisioner) (*struct{ Body *ProvisionerStatus }, error) {
			return body(s.ops.ProvisionerStatus(ctx, in.Name))
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-provisioner-links", Method: http.MethodGet, Path: "/provisioners/{name}/links", Summary: "What a provisioner keeps of each directory object it writes: the remote object it is linked to, and its state", Tags: []string{"provisioners"}},
		func(ctx context.Context, in *ByProvisioner) (*struct {
			Body ItemList[usersync.Link]
		}, error) {
			return items(s.ops.ProvisionerLinks(ctx, in.Name))
		})
	huma.Register(s.api, huma.Operation{OperationID: "retry-provisioner-group", Method: http.MethodPost, Path: "/provisioners/{name}/retries", Summary: "Clear a group's failures or quarantine and reconcile it now", Tags: []string{"provisioners"},
		Description: "Answers the provisioner's status afterwards: a group that fails again is listed among its items with the error."},
		func(ctx context.Context, in *struct {
			ByProvisioner
			Body struct {
				Group string `json:"group" minLength:"1" doc:"the group's full name"`
			}
		}) (*struct{ Body *ProvisionerStatus }, error) {
			return body(s.ops.RetryProvisioner(ctx, in.Name, in.Body.Group))
		})
}
