package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/usersync/usersync"
)

// GroupOutput is one group, with its version as ETag.
type GroupOutput struct {
	ETag string `header:"ETag"`
	Body *usersync.Group
}

// NewGroup is a group to create, with its first members.
type NewGroup struct {
	Name        string            `json:"name" minLength:"1" maxLength:"512" doc:"unique ignoring case; ':' separates folders (app:test:group5)"`
	Description string            `json:"description,omitempty"`
	Alias       string            `json:"alias,omitempty" doc:"for synced groups: the source's object id"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Members     []string          `json:"members,omitempty" doc:"usernames"`
	Groups      []string          `json:"groups,omitempty" doc:"names of groups to nest in it"`
}

// GroupChange names the fields to change; an attribute set to null is removed.
type GroupChange struct {
	Name        *string            `json:"name,omitempty" minLength:"1"`
	Description *string            `json:"description,omitempty"`
	Alias       *string            `json:"alias,omitempty"`
	Attributes  map[string]*string `json:"attributes,omitempty"`
}

// MembersChange adds and removes members in one transaction.
type MembersChange struct {
	Add          []string `json:"add,omitempty" doc:"usernames to add"`
	Remove       []string `json:"remove,omitempty" doc:"usernames to remove"`
	AddGroups    []string `json:"addGroups,omitempty" doc:"groups to nest in this one (a cycle is refused)"`
	RemoveGroups []string `json:"removeGroups,omitempty" doc:"nested groups to take out"`
}

// ByName names a group in the path.
type ByName struct {
	Name string `path:"name" doc:"the group's full name (compared ignoring case), URL-encoded"`
}

func (s *server) groups() {
	huma.Register(s.api, huma.Operation{OperationID: "list-groups", Method: http.MethodGet, Path: "/groups", Summary: "List groups by name", Tags: []string{"groups"}},
		func(ctx context.Context, in *GroupQuery) (*struct{ Body *GroupPage }, error) {
			return body(s.ops.ListGroups(ctx, *in))
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-group", Method: http.MethodPost, Path: "/groups", Summary: "Create a group with its members", Tags: []string{"groups"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body NewGroup }) (*GroupOutput, error) {
			return groupOutput(s.ops.CreateGroup(ctx, in.Body))
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-group", Method: http.MethodGet, Path: "/groups/{name}", Summary: "Read a group", Tags: []string{"groups"}},
		func(ctx context.Context, in *ByName) (*GroupOutput, error) {
			return groupOutput(s.ops.GetGroup(ctx, in.Name))
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-group", Method: http.MethodPatch, Path: "/groups/{name}", Summary: "Rename a group or change its description, alias and attributes", Tags: []string{"groups"}},
		func(ctx context.Context, in *struct {
			ByName
			IfMatch
			Body GroupChange
		}) (*GroupOutput, error) {
			v, err := in.version()
			if err != nil {
				return nil, err
			}
			return groupOutput(s.ops.UpdateGroup(ctx, in.Name, in.Body, v))
		})
	huma.Register(s.api, huma.Operation{OperationID: "delete-group", Method: http.MethodDelete, Path: "/groups/{name}", Summary: "Delete a group and its memberships (its users stay)", Tags: []string{"groups"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *struct {
			ByName
			IfMatch
		}) (*struct{}, error) {
			v, err := in.version()
			if err != nil {
				return nil, err
			}
			return nil, apiError0(s.ops.DeleteGroup(ctx, in.Name, v))
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-members", Method: http.MethodGet, Path: "/groups/{name}/members", Summary: "List a group's members", Tags: []string{"groups"}},
		func(ctx context.Context, in *struct {
			ByName
			MemberQuery
		}) (*struct{ Body *MemberPage }, error) {
			return body(s.ops.ListMembers(ctx, in.Name, in.MemberQuery))
		})
	huma.Register(s.api, huma.Operation{OperationID: "change-members", Method: http.MethodPatch, Path: "/groups/{name}/members", Summary: "Add and remove members in one transaction", Tags: []string{"groups"}},
		func(ctx context.Context, in *struct {
			ByName
			IfMatch
			Body MembersChange
		}) (*struct {
			ETag string `header:"ETag"`
			Body *MembersChanged
		}, error) {
			v, err := in.version()
			if err != nil {
				return nil, err
			}
			ch, err := s.ops.ChangeMembers(ctx, in.Name, in.Body, v)
			if err != nil {
				return nil, apiError(err)
			}
			return &struct {
				ETag string `header:"ETag"`
				Body *MembersChanged
			}{etag(ch.Group.Version), ch}, nil
		})
}

func groupOutput(g *usersync.Group, err error) (*GroupOutput, error) {
	if err != nil {
		return nil, apiError(err)
	}
	return &GroupOutput{ETag: etag(g.Version), Body: g}, nil
}
