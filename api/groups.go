package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/usersync/usersync"
)

// GroupList is a page of groups.
type GroupList struct {
	Body struct {
		Items      []*usersync.Group `json:"items"`
		Total      int               `json:"total"`
		NextCursor string            `json:"next_cursor,omitempty"`
	}
}

// GroupOutput is one group, with its version as ETag.
type GroupOutput struct {
	ETag string `header:"ETag"`
	Body *usersync.Group
}

// NewGroup is a group to create, with its first members.
type NewGroup struct {
	Name        string            `json:"name" minLength:"1" maxLength:"512" doc:"unique ignoring case; ':' separates folders (app:test:group5)"`
	Description string            `json:"description,omitempty"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	Members     []string          `json:"members,omitempty" doc:"usernames"`
	Groups      []string          `json:"groups,omitempty" doc:"names of groups to nest in it"`
}

// GroupChange names the fields to change; an attribute set to null is removed.
type GroupChange struct {
	Name        *string            `json:"name,omitempty" minLength:"1"`
	Description *string            `json:"description,omitempty"`
	Attributes  map[string]*string `json:"attributes,omitempty"`
}

// MembersChange adds and removes members in one transaction.
type MembersChange struct {
	Add          []string `json:"add,omitempty" doc:"usernames to add"`
	Remove       []string `json:"remove,omitempty" doc:"usernames to remove"`
	AddGroups    []string `json:"addGroups,omitempty" doc:"groups to nest in this one (a cycle is refused)"`
	RemoveGroups []string `json:"removeGroups,omitempty" doc:"nested groups to take out"`
}

// MemberList is a page of a group's members.
type MemberList struct {
	Body struct {
		Users      []*usersync.User `json:"users"`
		Groups     []string         `json:"groups" doc:"the groups nested directly in it (empty with transitive)"`
		Total      int              `json:"total" doc:"user members (effective ones with transitive)"`
		NextCursor string           `json:"next_cursor,omitempty"`
	}
}

// ByName names a group in the path.
type ByName struct {
	Name string `path:"name" doc:"the group's full name (compared ignoring case), URL-encoded"`
}

func (s *server) groups() {
	huma.Register(s.api, huma.Operation{OperationID: "list-groups", Method: http.MethodGet, Path: "/groups", Summary: "List groups by name", Tags: []string{"groups"}},
		func(ctx context.Context, in *struct {
			Paging
			Search string `query:"search" doc:"a case-insensitive part of the name"`
			Folder string `query:"folder" doc:"only groups directly in this folder"`
		}) (*GroupList, error) {
			after, err := decodeCursor(in.Cursor)
			if err != nil {
				return nil, err
			}
			f := usersync.GroupFilter{Search: in.Search, Limit: in.Limit, After: after}
			if in.Folder != "" {
				f.Folder = &in.Folder
			}
			groups, total, err := s.dir.FindGroups(ctx, f)
			if err != nil {
				return nil, apiError(err)
			}
			out := &GroupList{}
			out.Body.Items, out.Body.Total = nonNil(groups), total
			if len(groups) == in.Limit {
				last := groups[len(groups)-1]
				out.Body.NextCursor = encodeCursor(last.SortValue("name"), last.ID)
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "create-group", Method: http.MethodPost, Path: "/groups", Summary: "Create a group with its members", Tags: []string{"groups"}, DefaultStatus: http.StatusCreated},
		func(ctx context.Context, in *struct{ Body NewGroup }) (*GroupOutput, error) {
			users, groups, err := s.resolve(ctx, in.Body.Members, in.Body.Groups)
			if err != nil {
				return nil, err
			}
			g := &usersync.Group{Name: in.Body.Name, Description: in.Body.Description, Attributes: in.Body.Attributes}
			if err := s.dir.CreateGroupWith(ctx, g, usersync.GroupChange{Add: users, AddGroups: groups}); err != nil {
				return nil, apiError(err)
			}
			return &GroupOutput{ETag: etag(g.Version), Body: g}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "get-group", Method: http.MethodGet, Path: "/groups/{name}", Summary: "Read a group", Tags: []string{"groups"}},
		func(ctx context.Context, in *ByName) (*GroupOutput, error) {
			g, err := s.dir.FindGroupByName(ctx, in.Name)
			if err != nil {
				return nil, apiError(err)
			}
			return &GroupOutput{ETag: etag(g.Version), Body: g}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "update-group", Method: http.MethodPatch, Path: "/groups/{name}", Summary: "Rename a group or change its description and attributes", Tags: []string{"groups"}},
		func(ctx context.Context, in *struct {
			ByName
			IfMatch
			Body GroupChange
		}) (*GroupOutput, error) {
			g, expect, err := s.groupIfMatch(ctx, in.Name, in.IfMatch.IfMatch)
			if err != nil {
				return nil, err
			}
			next, err := s.dir.UpdateGroup(ctx, g.ID, usersync.GroupUpdate{Name: in.Body.Name, Description: in.Body.Description, Attributes: in.Body.Attributes}, expect)
			if err != nil {
				return nil, apiError(err)
			}
			return &GroupOutput{ETag: etag(next.Version), Body: next}, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "delete-group", Method: http.MethodDelete, Path: "/groups/{name}", Summary: "Delete a group and its memberships (its users stay)", Tags: []string{"groups"}, DefaultStatus: http.StatusNoContent},
		func(ctx context.Context, in *struct {
			ByName
			IfMatch
		}) (*struct{}, error) {
			g, _, err := s.groupIfMatch(ctx, in.Name, in.IfMatch.IfMatch)
			if err != nil {
				return nil, err
			}
			return nil, apiError0(s.dir.DeleteGroup(ctx, g.ID))
		})
	huma.Register(s.api, huma.Operation{OperationID: "list-members", Method: http.MethodGet, Path: "/groups/{name}/members", Summary: "List a group's members", Tags: []string{"groups"}},
		func(ctx context.Context, in *struct {
			ByName
			Limit      int    `query:"limit" minimum:"1" maximum:"1000" default:"100"`
			Cursor     string `query:"cursor" doc:"next_cursor of the previous page"`
			Transitive bool   `query:"transitive" doc:"the effective members: users in the group and in every group nested in it, each once"`
		}) (*MemberList, error) {
			g, err := s.dir.FindGroupByName(ctx, in.Name)
			if err != nil {
				return nil, apiError(err)
			}
			offset := 0
			if in.Cursor != "" {
				pos, err := decodeCursor(in.Cursor)
				if err != nil {
					return nil, err
				}
				offset = int(pos.ID)
			}
			list := s.dir.Members
			if in.Transitive {
				list = s.dir.EffectiveMembers
			}
			users, total, err := list(ctx, g.ID, offset, in.Limit)
			if err != nil {
				return nil, apiError(err)
			}
			out := &MemberList{}
			out.Body.Users, out.Body.Total, out.Body.Groups = nonNil(users), total, []string{}
			if !in.Transitive {
				nested, err := s.dir.MemberGroups(ctx, g.ID)
				if err != nil {
					return nil, apiError(err)
				}
				for _, n := range nested {
					out.Body.Groups = append(out.Body.Groups, n.Name)
				}
			}
			if offset+len(users) < total {
				out.Body.NextCursor = encodeCursor(nil, int64(offset+len(users)))
			}
			return out, nil
		})
	huma.Register(s.api, huma.Operation{OperationID: "change-members", Method: http.MethodPatch, Path: "/groups/{name}/members", Summary: "Add and remove members in one transaction", Tags: []string{"groups"}},
		func(ctx context.Context, in *struct {
			ByName
			IfMatch
			Body MembersChange
		}) (*GroupOutput, error) {
			g, expect, err := s.groupIfMatch(ctx, in.Name, in.IfMatch.IfMatch)
			if err != nil {
				return nil, err
			}
			add, addGroups, err := s.resolve(ctx, in.Body.Add, in.Body.AddGroups)
			if err != nil {
				return nil, err
			}
			remove, removeGroups, err := s.resolve(ctx, in.Body.Remove, in.Body.RemoveGroups)
			if err != nil {
				return nil, err
			}
			next, err := s.dir.ChangeGroup(ctx, g.ID, usersync.GroupChange{Add: add, Remove: remove, AddGroups: addGroups, RemoveGroups: removeGroups}, expect)
			if err != nil {
				return nil, apiError(err)
			}
			return &GroupOutput{ETag: etag(next.Version), Body: next}, nil
		})
}

// groupIfMatch reads a group and the version an If-Match header allows a
// write to (0: any), or the error to answer.
func (s *server) groupIfMatch(ctx context.Context, name, header string) (*usersync.Group, int64, error) {
	g, err := s.dir.FindGroupByName(ctx, name)
	if err != nil {
		return nil, 0, apiError(err)
	}
	expect, err := ifMatch(header, g.Version)
	return g, expect, err
}

// resolve finds users by username and groups by name; one that does not
// exist fails the request before anything is written.
func (s *server) resolve(ctx context.Context, usernames, groupNames []string) ([]int64, []int64, error) {
	var users, groups []int64
	if len(usernames) > 0 {
		found, err := s.dir.UsersByUsername(ctx, usernames)
		if err != nil {
			return nil, nil, apiError(err)
		}
		for _, n := range usernames {
			u := found[usersync.UsernameKey(n)]
			if u == nil {
				return nil, nil, huma.Error422UnprocessableEntity("user " + n + " not found; nothing was changed")
			}
			users = append(users, u.ID)
		}
	}
	for _, n := range groupNames {
		g, err := s.dir.FindGroupByName(ctx, n)
		if err != nil {
			if usersync.ErrorCode(err) == usersync.ENOTFOUND {
				return nil, nil, huma.Error422UnprocessableEntity("group " + n + " not found; nothing was changed")
			}
			return nil, nil, apiError(err)
		}
		groups = append(groups, g.ID)
	}
	return users, groups, nil
}
