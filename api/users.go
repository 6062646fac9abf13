package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/usersync/usersync"
)

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
	AuthMethod *string            `json:"authMethod,omitempty" enum:"password,sso"`
	Enabled    *bool              `json:"enabled,omitempty"`
	Attributes map[string]*string `json:"attributes,omitempty"`
}

// ByUsername names a user in the path.
type ByUsername struct {
	Username string `path:"username" doc:"the username (compared ignoring case)"`
}

func (s *server) users() {
	huma.Register(s.api, huma.Operation{OperationID: "list-users", Method: http.MethodGet, Path: "/users", Summary: "List users by username", Tags: []string{"users"}},
		func(ctx context.Context, in *UserQuery) (*struct{ Body *UserPage }, error) {
			p, err := s.ops.ListUsers(ctx, *in)
			return body(p, err)
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-user", Method: http.MethodPost, Path: "/users", Summary: "Create a user", Tags: []string{"users"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body NewUser }) (*UserOutput, error) {
			return userOutput(s.ops.CreateUser(ctx, in.Body))
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-user", Method: http.MethodGet, Path: "/users/{username}", Summary: "Read a user", Tags: []string{"users"}},
		func(ctx context.Context, in *ByUsername) (*UserOutput, error) {
			return userOutput(s.ops.GetUser(ctx, in.Username))
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-user-groups", Method: http.MethodGet, Path: "/users/{username}/groups", Summary: "Name the groups a user is a direct member of", Tags: []string{"users"}},
		func(ctx context.Context, in *ByUsername) (*struct{ Body NameList }, error) {
			names, err := s.ops.UserGroups(ctx, in.Username)
			return body(NameList{Items: nonNil(names)}, err)
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-user", Method: http.MethodPatch, Path: "/users/{username}", Summary: "Change a user's fields", Tags: []string{"users"}},
		func(ctx context.Context, in *struct {
			ByUsername
			IfMatch
			Body UserChange
		}) (*UserOutput, error) {
			v, err := in.version()
			if err != nil {
				return nil, err
			}
			return userOutput(s.ops.UpdateUser(ctx, in.Username, in.Body, v))
		})
	huma.Register(s.api, huma.Operation{OperationID: "delete-user", Method: http.MethodDelete, Path: "/users/{username}", Summary: "Delete a user, its memberships and tokens", Tags: []string{"users"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *struct {
			ByUsername
			IfMatch
		}) (*struct{}, error) {
			v, err := in.version()
			if err != nil {
				return nil, err
			}
			return nil, apiError0(s.ops.DeleteUser(ctx, in.Username, v))
		})
}

// NameList is a list of names.
type NameList struct {
	Items []string `json:"items"`
}

func userOutput(u *usersync.User, err error) (*UserOutput, error) {
	if err != nil {
		return nil, apiError(err)
	}
	return &UserOutput{ETag: etag(u.Version), Body: u}, nil
}

// body answers v, or the error mapped once onto its status.
func body[T any](v T, err error) (*struct{ Body T }, error) {
	if err != nil {
		return nil, apiError(err)
	}
	return &struct{ Body T }{v}, nil
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
