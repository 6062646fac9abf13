package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/schedule"
)

// FolderList lists folders.
type FolderList struct {
	Body struct {
		Items []*usersync.Folder `json:"items"`
	}
}

// FolderOutput is one folder.
type FolderOutput struct {
	Body *usersync.Folder
}

func (s *server) folders() {
	huma.Register(s.api, huma.Operation{OperationID: "list-folders", Method: http.MethodGet, Path: "/folders", Summary: "List folders", Tags: []string{"folders"}},
		func(ctx context.Context, in *struct {
			Under string `query:"under" doc:"only folders under this path"`
		}) (*FolderList, error) {
			fs, err := s.dir.FindFolders(ctx, in.Under)
			if err != nil {
				return nil, apiError(err)
			}
			out := &FolderList{}
			out.Body.Items = nonNil(fs)
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-folder", Method: http.MethodGet, Path: "/folders/{path}", Summary: "Read a folder and its attributes", Tags: []string{"folders"}},
		func(ctx context.Context, in *struct {
			Path string `path:"path" doc:"the folder path (app:test), URL-encoded"`
		}) (*FolderOutput, error) {
			f, err := s.dir.FindFolder(ctx, in.Path)
			if err != nil {
				return nil, apiError(err)
			}
			return &FolderOutput{Body: f}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "set-folder-attributes", Method: http.MethodPatch, Path: "/folders/{path}", Summary: "Set or remove (null) a folder's attributes, such as a provisioner's marker", Tags: []string{"folders"}},
		func(ctx context.Context, in *struct {
			Path string `path:"path"`
			Body struct {
				Attributes map[string]*string `json:"attributes"`
			}
		}) (*FolderOutput, error) {
			f, err := s.dir.SetFolderAttributes(ctx, in.Path, in.Body.Attributes)
			if err != nil {
				return nil, apiError(err)
			}
			return &FolderOutput{Body: f}, nil
		})
}

// TokenList, SettingList and ProvisionerList are listings.
type (
	TokenList struct {
		Body struct {
			Items []*usersync.Token `json:"items"`
		}
	}
	SettingList struct {
		Body struct {
			Items []SettingView `json:"items"`
		}
	}
	ProvisionerList struct {
		Body struct {
			Items []*usersync.Provisioner `json:"items"`
		}
	}
)

// NewToken is what a created token answers: the clear token, shown once.
type NewToken struct {
	Body struct {
		Token string          `json:"token" doc:"the clear token: shown once, stored only as a hash"`
		Info  *usersync.Token `json:"info"`
	}
}

func (s *server) tokens() {
	huma.Register(s.api, huma.Operation{OperationID: "list-tokens", Method: http.MethodGet, Path: "/tokens", Summary: "List API tokens (never their values)", Tags: []string{"tokens"}},
		func(ctx context.Context, in *struct {
			User string `query:"user" doc:"only this user's tokens"`
		}) (*TokenList, error) {
			var id int64
			if in.User != "" {
				u, err := s.dir.FindUserByUsername(ctx, in.User)
				if err != nil {
					return nil, apiError(err)
				}
				id = u.ID
			}
			ts, err := s.dir.FindTokens(ctx, id)
			if err != nil {
				return nil, apiError(err)
			}
			out := &TokenList{}
			out.Body.Items = nonNil(ts)
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-token", Method: http.MethodPost, Path: "/tokens", Summary: "Create an API token for a user", Tags: []string{"tokens"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct {
			Body struct {
				User string `json:"user" minLength:"1" doc:"the username the token signs in as"`
				Name string `json:"name,omitempty" doc:"what the token is for"`
			}
		}) (*NewToken, error) {
			u, err := s.dir.FindUserByUsername(ctx, in.Body.User)
			if err != nil {
				return nil, apiError(err)
			}
			clear, t, err := s.dir.CreateToken(ctx, u.ID, in.Body.Name)
			if err != nil {
				return nil, apiError(err)
			}
			out := &NewToken{}
			out.Body.Token, out.Body.Info = clear, t
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "revoke-token", Method: http.MethodDelete, Path: "/tokens/{id}", Summary: "Revoke an API token", Tags: []string{"tokens"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *struct {
			ID int64 `path:"id"`
		}) (*struct{}, error) {
			return nil, apiError0(s.dir.RevokeToken(ctx, in.ID))
		})
}

// SettingView is a setting as the API shows it: secret values masked.
type SettingView struct {
	Key         string     `json:"key"`
	Type        string     `json:"type"`
	Value       string     `json:"value" doc:"******** for a secret that is set"`
	Default     string     `json:"default,omitempty"`
	IsSet       bool       `json:"isSet"`
	Secret      bool       `json:"secret"`
	Description string     `json:"description"`
	UpdatedAt   *time.Time `json:"updatedAt,omitempty"`
}

func settingView(st usersync.Setting) SettingView {
	return SettingView{Key: st.Key, Type: string(st.Type), Value: st.Shown(), Default: st.Default, IsSet: st.IsSet, Secret: st.Secret, Description: st.Description, UpdatedAt: st.UpdatedAt}
}

func (s *server) settings() {
	huma.Register(s.api, huma.Operation{OperationID: "list-settings", Method: http.MethodGet, Path: "/settings", Summary: "List every setting with its type and description", Tags: []string{"settings"}},
		func(ctx context.Context, in *struct{}) (*SettingList, error) {
			sts, err := s.dir.Settings(ctx)
			if err != nil {
				return nil, apiError(err)
			}
			out := &SettingList{}
			out.Body.Items = []SettingView{}
			for _, st := range sts {
				out.Body.Items = append(out.Body.Items, settingView(st))
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "set-setting", Method: http.MethodPut, Path: "/settings/{key}", Summary: "Set a setting (checked against its type)", Tags: []string{"settings"}},
		func(ctx context.Context, in *struct {
			Key  string `path:"key"`
			Body struct {
				Value string `json:"value"`
			}
		}) (*struct{ Body SettingView }, error) {
			st, err := s.dir.SetSetting(ctx, in.Key, in.Body.Value)
			if err != nil {
				return nil, apiError(err)
			}
			return &struct{ Body SettingView }{settingView(st)}, nil
		})
}

// ChangeList is a run of the change log.
type ChangeList struct {
	Body struct {
		Items []*usersync.Change `json:"items"`
		Last  int64              `json:"last" doc:"the sequence number to pass as after next time"`
	}
}

func (s *server) changes() {
	huma.Register(s.api, huma.Operation{OperationID: "list-changes", Method: http.MethodGet, Path: "/changes", Summary: "Read the change log after a sequence number, waiting for new changes if asked", Tags: []string{"changes"}},
		func(ctx context.Context, in *struct {
			After int64 `query:"after" minimum:"0" doc:"changes after this sequence number"`
			Limit int   `query:"limit" minimum:"1" maximum:"1000" default:"100"`
			Wait  int   `query:"wait" minimum:"0" maximum:"60" doc:"seconds to wait for a change when there is none yet (long polling)"`
		}) (*ChangeList, error) {
			cs, err := longPoll(ctx, time.Duration(in.Wait)*time.Second, func() ([]*usersync.Change, error) {
				return s.dir.ChangesAfter(ctx, in.After, in.Limit)
			})
			if err != nil {
				return nil, apiError(err)
			}
			out := &ChangeList{}
			out.Body.Items, out.Body.Last = nonNil(cs), in.After
			if len(cs) > 0 {
				out.Body.Last = cs[len(cs)-1].Seq
			}
			return out, nil
		})
}

func (s *server) schedules() {
	type list struct {
		Body struct {
			Items []*usersync.Schedule `json:"items"`
		}
	}
	huma.Register(s.api, huma.Operation{OperationID: "list-schedules", Method: http.MethodGet, Path: "/schedules", Summary: "List the schedules (made with `usersync schedules create`)", Tags: []string{"schedules"}},
		func(ctx context.Context, in *struct{}) (*list, error) {
			sc, err := s.dir.ListSchedules(ctx)
			if err != nil {
				return nil, apiError(err)
			}
			out := &list{}
			out.Body.Items = nonNil(sc)
			return out, nil
		})
	type one struct {
		ETag string `header:"ETag"`
		Body *usersync.Schedule
	}
	type byName struct {
		Name string `path:"name"`
	}
	huma.Register(s.api, huma.Operation{OperationID: "get-schedule", Method: http.MethodGet, Path: "/schedules/{name}", Summary: "Read a schedule", Tags: []string{"schedules"}},
		func(ctx context.Context, in *byName) (*one, error) {
			sc, err := s.dir.FindSchedule(ctx, in.Name)
			if err != nil {
				return nil, apiError(err)
			}
			return &one{ETag: etag(sc.Version), Body: sc}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "pause-schedule", Method: http.MethodPatch, Path: "/schedules/{name}", Summary: "Pause or resume a schedule", Tags: []string{"schedules"}},
		func(ctx context.Context, in *struct {
			Name string `path:"name"`
			IfMatch
			Body struct {
				Paused bool `json:"paused"`
			}
		}) (*one, error) {
			sc, err := s.dir.FindSchedule(ctx, in.Name)
			if err != nil {
				return nil, apiError(err)
			}
			expect, err := ifMatch(in.IfMatch.IfMatch, sc.Version)
			if err != nil {
				return nil, err
			}
			next, err := s.dir.UpdateSchedule(ctx, in.Name, usersync.ScheduleUpdate{Paused: &in.Body.Paused}, expect)
			if err != nil {
				return nil, apiError(err)
			}
			return &one{ETag: etag(next.Version), Body: next}, nil
		})
	type runs struct {
		Body struct {
			Items []*usersync.Run `json:"items"`
		}
	}
	huma.Register(s.api, huma.Operation{OperationID: "list-runs", Method: http.MethodGet, Path: "/runs", Summary: "List schedule runs, latest first", Tags: []string{"schedules"}},
		func(ctx context.Context, in *struct {
			Schedule string `query:"schedule" doc:"only this schedule's runs"`
			Limit    int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
		}) (*runs, error) {
			rs, err := s.dir.ListRuns(ctx, in.Schedule, in.Limit)
			if err != nil {
				return nil, apiError(err)
			}
			out := &runs{}
			out.Body.Items = nonNil(rs)
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-run", Method: http.MethodGet, Path: "/runs/{id}", Summary: "Read a run, with its output", Tags: []string{"schedules"}},
		func(ctx context.Context, in *struct {
			ID int64 `path:"id"`
		}) (*struct{ Body *usersync.Run }, error) {
			r, err := s.dir.FindRun(ctx, in.ID)
			if err != nil {
				return nil, apiError(err)
			}
			return &struct{ Body *usersync.Run }{r}, nil
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
	Body struct {
		Queued    bool `json:"queued"`
		Duplicate bool `json:"duplicate" doc:"a run was already waiting or running: no second one was queued"`
	}
}

func (s *server) scheduleWrites() {
	huma.Register(s.api, huma.Operation{OperationID: "create-schedule", Method: http.MethodPost, Path: "/schedules", Summary: "Create a schedule (checked as usersync schedules create checks it)", Tags: []string{"schedules"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body NewSchedule }) (*struct {
			ETag string `header:"ETag"`
			Body *usersync.Schedule
		}, error) {
			if s.o.CheckCommand == nil {
				return nil, huma.Error501NotImplemented("this server cannot check command lines: create schedules with `usersync schedules create`")
			}
			b := in.Body
			if _, err := schedule.Parse(b.Cron, b.TimeZone); err != nil {
				return nil, huma.Error422UnprocessableEntity(err.Error(), &huma.ErrorDetail{Location: "body.cron", Value: b.Cron})
			}
			if err := s.o.CheckCommand(ctx, b.Command); err != nil {
				return nil, apiError(err)
			}
			sc := &usersync.Schedule{Name: b.Name, Cron: b.Cron, TimeZone: b.TimeZone, Command: b.Command, Paused: b.Paused}
			if err := s.dir.CreateSchedule(ctx, sc); err != nil {
				return nil, apiError(err)
			}
			return &struct {
				ETag string `header:"ETag"`
				Body *usersync.Schedule
			}{etag(sc.Version), sc}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "delete-schedule", Method: http.MethodDelete, Path: "/schedules/{name}", Summary: "Delete a schedule (its runs stay on record)", Tags: []string{"schedules"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *struct {
			Name string `path:"name"`
		}) (*struct{}, error) {
			return nil, apiError0(s.dir.DeleteSchedule(ctx, in.Name))
		})
	huma.Register(s.api, huma.Operation{OperationID: "run-schedule", Method: http.MethodPost, Path: "/schedules/{name}/runs", Summary: "Queue a run of a schedule now", Tags: []string{"schedules"}, DefaultStatus: http.StatusAccepted},
		func(ctx context.Context, in *struct {
			Name string `path:"name"`
		}) (*RunQueued, error) {
			if s.o.RunNow == nil {
				return nil, huma.Error503ServiceUnavailable("this server runs no schedules (usersync serve --no-schedules): run it with `usersync schedules run`")
			}
			dup, err := s.o.RunNow(ctx, in.Name, usersync.ActorFrom(ctx))
			if err != nil {
				return nil, apiError(err)
			}
			out := &RunQueued{}
			out.Body.Queued, out.Body.Duplicate = !dup, dup
			return out, nil
		})
}

// ProvisionerStatus is a provisioner with how far it is and what fails.
type ProvisionerStatus struct {
	Provisioner *usersync.Provisioner      `json:"provisioner"`
	Cursor      int64                      `json:"cursor" doc:"the last change-log event it processed"`
	LastChange  int64                      `json:"lastChange"`
	Backlog     int64                      `json:"backlog" doc:"change-log events it has not processed yet"`
	Items       []usersync.ProvisionerItem `json:"items" doc:"its failing and quarantined groups"`
}

func (s *server) provisioners() {
	huma.Register(s.api, huma.Operation{OperationID: "list-provisioners", Method: http.MethodGet, Path: "/provisioners", Summary: "List the provisioners (never their secrets)", Tags: []string{"provisioners"}},
		func(ctx context.Context, in *struct{}) (*ProvisionerList, error) {
			ps, err := s.dir.FindProvisioners(ctx)
			if err != nil {
				return nil, apiError(err)
			}
			out := &ProvisionerList{}
			out.Body.Items = nonNil(ps)
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-provisioner", Method: http.MethodGet, Path: "/provisioners/{name}", Summary: "A provisioner's settings, backlog, and failing and quarantined groups", Tags: []string{"provisioners"}},
		func(ctx context.Context, in *struct {
			Name string `path:"name"`
		}) (*struct{ Body ProvisionerStatus }, error) {
			p, err := s.dir.FindProvisioner(ctx, in.Name)
			if err != nil {
				return nil, apiError(err)
			}
			cursor, err := s.dir.Cursor(ctx, usersync.ProvisionerCursor(p.Name))
			if err != nil {
				return nil, apiError(err)
			}
			last, err := s.dir.LastChangeSeq(ctx)
			if err != nil {
				return nil, apiError(err)
			}
			items, err := s.dir.ProvisionerItems(ctx, p.Name)
			if err != nil {
				return nil, apiError(err)
			}
			return &struct{ Body ProvisionerStatus }{ProvisionerStatus{p, cursor, last, max(last-cursor, 0), nonNil(items)}}, nil
		})
}
