package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/usersync/usersync"
)

// UserList is a page of users.
type UserList struct {
	Body struct {
		Items      []*usersync.User `json:"items"`
		Total      int              `json:"total" doc:"users the query selects, on every page"`
		NextCursor string           `json:"next_cursor,omitempty" doc:"pass as cursor for the next page; absent on the last"`
	}
}

// UserOutput is one user, with its version as ETag.
type UserOutput struct {
	ETag string `header:"ETag"`
	Body *usersync.User
}

// NewUser is a user to create.
type NewUser struct {
	Username   string            `json:"username" minLength:"1" maxLength:"320" doc:"unique, compared ignoring case"`
	Email      string            `json:"email,omitempty" format:"email"`
	FirstName  string            `json:"firstName,omitempty"`
	LastName   string            `json:"lastName,omitempty"`
	Type       string            `json:"type,omitempty" enum:"regular,power_user,administrator" default:"regular"`
	Enabled    *bool             `json:"enabled,omitempty" doc:"default true"`
	AuthMethod string            `json:"authMethod,omitempty" enum:"password,sso" default:"password"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// UserChange names the fields to change; absent fields stay. An attribute
// set to null is removed.
type UserChange struct {
	Username   *string            `json:"username,omitempty" minLength:"1"`
	Email      *string            `json:"email,omitempty"`
	FirstName  *string            `json:"firstName,omitempty"`
	LastName   *string            `json:"lastName,omitempty"`
	Type       *string            `json:"type,omitempty" enum:"regular,power_user,administrator"`
	Enabled    *bool              `json:"enabled,omitempty"`
	Attributes map[string]*string `json:"attributes,omitempty"`
}

// ByUsername names a user in the path.
type ByUsername struct {
	Username string `path:"username" doc:"the username (compared ignoring case)"`
}

func (s *server) users() {
	huma.Register(s.api, huma.Operation{OperationID: "list-users", Method: http.MethodGet, Path: "/users", Summary: "List users by username", Tags: []string{"users"}},
		func(ctx context.Context, in *struct {
			Paging
			Search string `query:"search" doc:"a case-insensitive part of the username, email or name"`
			Source string `query:"source" doc:"only users this source owns (local, scim, o365:<tenant>, okta:<host>)"`
		}) (*UserList, error) {
			after, err := decodeCursor(in.Cursor)
			if err != nil {
				return nil, err
			}
			users, total, err := s.dir.FindUsers(ctx, usersync.UserFilter{Search: in.Search, Source: in.Source, Limit: in.Limit, After: after})
			if err != nil {
				return nil, apiError(err)
			}
			out := &UserList{}
			out.Body.Items, out.Body.Total = nonNil(users), total
			if len(users) == in.Limit {
				last := users[len(users)-1]
				out.Body.NextCursor = encodeCursor(last.SortValue("username"), last.ID)
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-user", Method: http.MethodPost, Path: "/users", Summary: "Create a user", Tags: []string{"users"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body NewUser }) (*UserOutput, error) {
			b := in.Body
			u := &usersync.User{Username: b.Username, Email: b.Email, FirstName: b.FirstName, LastName: b.LastName, Type: usersync.UserType(b.Type),
				Enabled: b.Enabled == nil || *b.Enabled, AuthMethod: usersync.AuthMethod(b.AuthMethod), Attributes: b.Attributes}
			if err := s.dir.CreateUser(ctx, u); err != nil {
				return nil, apiError(err)
			}
			return &UserOutput{ETag: etag(u.Version), Body: u}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-user", Method: http.MethodGet, Path: "/users/{username}", Summary: "Read a user", Tags: []string{"users"}},
		func(ctx context.Context, in *ByUsername) (*UserOutput, error) {
			u, err := s.dir.FindUserByUsername(ctx, in.Username)
			if err != nil {
				return nil, apiError(err)
			}
			return &UserOutput{ETag: etag(u.Version), Body: u}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-user", Method: http.MethodPatch, Path: "/users/{username}", Summary: "Change a user's fields", Tags: []string{"users"}},
		func(ctx context.Context, in *struct {
			ByUsername
			IfMatch
			Body UserChange
		}) (*UserOutput, error) {
			u, expect, err := s.userIfMatch(ctx, in.Username, in.IfMatch.IfMatch)
			if err != nil {
				return nil, err
			}
			b := in.Body
			upd := usersync.UserUpdate{Username: b.Username, Email: b.Email, FirstName: b.FirstName, LastName: b.LastName, Enabled: b.Enabled, Attributes: b.Attributes}
			if b.Type != nil {
				t := usersync.UserType(*b.Type)
				upd.Type = &t
			}
			next, err := s.dir.UpdateUser(ctx, u.ID, upd, expect)
			if err != nil {
				return nil, apiError(err)
			}
			return &UserOutput{ETag: etag(next.Version), Body: next}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "delete-user", Method: http.MethodDelete, Path: "/users/{username}", Summary: "Delete a user, its memberships and tokens", Tags: []string{"users"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *struct {
			ByUsername
			IfMatch
		}) (*struct{}, error) {
			u, _, err := s.userIfMatch(ctx, in.Username, in.IfMatch.IfMatch)
			if err != nil {
				return nil, err
			}
			return nil, apiError0(s.dir.DeleteUser(ctx, u.ID))
		})
}

// userIfMatch reads a user and the version an If-Match header allows a
// write to (0: any), or the error to answer.
func (s *server) userIfMatch(ctx context.Context, username, header string) (*usersync.User, int64, error) {
	u, err := s.dir.FindUserByUsername(ctx, username)
	if err != nil {
		return nil, 0, apiError(err)
	}
	expect, err := ifMatch(header, u.Version)
	return u, expect, err
}

// apiError0 is apiError for calls that may succeed.
func apiError0(err error) error {
	if err == nil {
		return nil
	}
	return apiError(err)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
