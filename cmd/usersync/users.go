package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"golang.org/x/term"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/adminui"
	"github.com/usersync/usersync/api"
	"github.com/usersync/usersync/sqlstore"
)

func (a *app) usersCommand() *cobra.Command {
	c := &cobra.Command{Use: "users", Short: "List and manage users"}
	for _, sub := range []*cobra.Command{a.usersList(), a.usersShow(), a.usersCreate(), a.usersUpdate(), a.usersDelete()} {
		c.AddCommand(remote(sub))
	}
	c.AddCommand(a.usersSetPassword(), a.usersRoles())
	return c
}

func (a *app) usersList() *cobra.Command {
	var q api.UserQuery
	var limit, offset int
	c := &cobra.Command{
		Use:   "list",
		Short: "List users ordered by username",
		Args:  cobra.NoArgs,
	}
	c.Flags().StringVar(&q.Source, "source", "", "only users owned by this source (local, scim, o365:<tenant>, okta:<host>)")
	c.Flags().StringVar(&q.Search, "search", "", "only users whose username, email or name contains this text")
	c.Flags().IntVar(&limit, "limit", 0, "show at most this many users (0: all)")
	c.Flags().IntVar(&offset, "offset", 0, "skip this many users")
	c.RunE = a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
		users, total, err := pages(offset, limit, func(p api.Paging) ([]*usersync.User, int, string, error) {
			q.Paging = p
			page, err := o.ListUsers(ctx, q)
			if err != nil {
				return nil, 0, "", err
			}
			return page.Items, page.Total, page.NextCursor, nil
		})
		if err != nil {
			return err
		}
		return a.emit(map[string]any{"total": total, "users": nonNil(users)}, func(w io.Writer) {
			row(w, "USERNAME", "EMAIL", "NAME", "TYPE", "ENABLED", "AUTH", "SOURCE")
			for _, u := range users {
				row(w, u.Username, orDash(u.Email), orDash(u.FirstName+" "+u.LastName), u.Type, u.Enabled, u.AuthMethod, u.Source)
			}
			if len(users) < total {
				row(w, fmt.Sprintf("(%d of %d users)", len(users), total))
			}
		})
	})
	return c
}

// pages reads a listing page by page from offset on, limit items in all
// (0: every one), and returns them with the total the listing counts.
func pages[T any](offset, limit int, page func(api.Paging) ([]T, int, string, error)) ([]T, int, error) {
	var out []T
	p := api.Paging{Limit: 1000}
	for {
		items, total, next, err := page(p)
		if err != nil {
			return nil, 0, err
		}
		skip := min(offset, len(items))
		offset -= skip
		out = append(out, items[skip:]...)
		if limit > 0 && len(out) >= limit {
			return out[:limit], total, nil
		}
		if next == "" {
			return out, total, nil
		}
		p.Cursor = next
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *app) usersShow() *cobra.Command {
	return &cobra.Command{
		Use:   "show USERNAME",
		Short: "Show one user and the groups it belongs to",
		Args:  cobra.ExactArgs(1),
		RunE: a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
			u, err := o.GetUser(ctx, args[0])
			if err != nil {
				return err
			}
			names, err := o.UserGroups(ctx, u.Username)
			if err != nil {
				return err
			}
			return a.emit(struct {
				*usersync.User
				Groups []string `json:"groups"`
			}{u, names}, func(w io.Writer) {
				row(w, "Username:", u.Username)
				row(w, "ID:", u.ID)
				row(w, "Email:", orDash(u.Email))
				row(w, "First name:", orDash(u.FirstName))
				row(w, "Last name:", orDash(u.LastName))
				row(w, "Type:", u.Type)
				row(w, "Enabled:", u.Enabled)
				row(w, "Authentication:", u.AuthMethod)
				row(w, "Source:", u.Source)
				row(w, "Source ID:", orDash(u.SourceID))
				row(w, "Attributes:", fmtAttrs(u.Attributes))
				row(w, "Groups:", orDash(strings.Join(names, ", ")))
				row(w, "Created:", fmtTime(u.CreatedAt))
				row(w, "Updated:", fmtTime(u.UpdatedAt))
				row(w, "Version:", u.Version)
			})
		}),
	}
}

func (a *app) usersCreate() *cobra.Command {
	var u api.NewUser
	var disabled bool
	var attrs []string
	c := &cobra.Command{
		Use:   "create --username U --email E [--first-name F] [--last-name L] [--type regular|power_user|administrator]",
		Short: "Create a user",
		Args:  cobra.NoArgs,
	}
	c.Flags().StringVar(&u.Username, "username", "", "username (unique, compared case-insensitively)")
	c.Flags().StringVar(&u.Email, "email", "", "email address")
	c.Flags().StringVar(&u.FirstName, "first-name", "", "first name")
	c.Flags().StringVar(&u.LastName, "last-name", "", "last name")
	c.Flags().StringVarP(&u.Type, "type", "t", "regular", "user type: regular, power_user or administrator")
	c.Flags().StringVar(&u.AuthMethod, "auth-method", "password", "authentication method: password or sso")
	c.Flags().BoolVar(&disabled, "disabled", false, "create the user disabled")
	c.Flags().StringArrayVar(&attrs, "attr", nil, "custom attribute name=value (repeatable)")
	c.RunE = a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
		if u.Username == "" {
			return usageError{fmt.Errorf("users create needs --username")}
		}
		enabled := !disabled
		u.Enabled = &enabled
		set, err := parseAttrs(attrs, nil)
		if err != nil {
			return err
		}
		u.Attributes = map[string]string{}
		for k, v := range set {
			u.Attributes[k] = *v
		}
		made, err := o.CreateUser(ctx, u)
		if err != nil {
			return err
		}
		return a.emit(made, func(w io.Writer) { row(w, "created user", made.Username, "(id", fmt.Sprint(made.ID)+")") })
	})
	return c
}

func (a *app) usersUpdate() *cobra.Command {
	var rename, email, first, last, typ, auth string
	var enable, disable bool
	var attrs, unset []string
	c := &cobra.Command{
		Use:   "update USERNAME [flags]",
		Short: "Change fields of a user; fields not named stay as they are",
		Args:  cobra.ExactArgs(1),
	}
	c.Flags().StringVar(&rename, "rename", "", "new username")
	c.Flags().StringVar(&email, "email", "", "email address")
	c.Flags().StringVar(&first, "first-name", "", "first name")
	c.Flags().StringVar(&last, "last-name", "", "last name")
	c.Flags().StringVarP(&typ, "type", "t", "", "user type: regular, power_user or administrator")
	c.Flags().StringVar(&auth, "auth-method", "", "authentication method: password or sso")
	c.Flags().BoolVar(&enable, "enable", false, "enable the user")
	c.Flags().BoolVar(&disable, "disable", false, "disable the user")
	c.Flags().StringArrayVar(&attrs, "attr", nil, "set custom attribute name=value (repeatable)")
	c.Flags().StringArrayVar(&unset, "unset-attr", nil, "remove custom attribute (repeatable)")
	c.RunE = a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
		if enable && disable {
			return usageError{fmt.Errorf("--enable and --disable exclude each other")}
		}
		var upd api.UserChange
		fl := c.Flags()
		if fl.Changed("rename") {
			upd.Username = &rename
		}
		if fl.Changed("email") {
			upd.Email = &email
		}
		if fl.Changed("first-name") {
			upd.FirstName = &first
		}
		if fl.Changed("last-name") {
			upd.LastName = &last
		}
		if fl.Changed("type") {
			upd.Type = &typ
		}
		if fl.Changed("auth-method") {
			upd.AuthMethod = &auth
		}
		if enable || disable {
			upd.Enabled = &enable
		}
		var err error
		if upd.Attributes, err = parseAttrs(attrs, unset); err != nil {
			return err
		}
		u, err := o.UpdateUser(ctx, args[0], upd, 0)
		if err != nil {
			return err
		}
		return a.emit(u, func(w io.Writer) { row(w, "updated user", u.Username, "(version", fmt.Sprint(u.Version)+")") })
	})
	return c
}

func (a *app) usersDelete() *cobra.Command {
	return &cobra.Command{
		Use:   "delete USERNAME",
		Short: "Delete a user with its memberships and API tokens",
		Args:  cobra.ExactArgs(1),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			u, err := o.GetUser(ctx, args[0])
			if err != nil {
				return err
			}
			if err := o.DeleteUser(ctx, u.Username, u.Version); err != nil {
				return err
			}
			return a.emit(map[string]any{"deleted": u.Username}, func(w io.Writer) { row(w, "deleted user", u.Username) })
		}),
	}
}

// usersSetPassword sets the password an administrator signs in to the admin
// console with: typed twice without echo on a terminal, else the first
// line of standard input. It is stored as a slow hash (bcrypt).
func (a *app) usersSetPassword() *cobra.Command {
	var clear bool
	c := &cobra.Command{Use: "set-password USERNAME", Short: "Set the password a user signs in to the admin console (/admin) with", Args: cobra.ExactArgs(1),
		Long: `Set the password a user signs in to the admin console (/admin) with. On a
terminal it is asked twice and not echoed; otherwise the first line of
standard input is read. It is stored as a bcrypt hash, never in clear, and
needs at least ` + strconv.Itoa(adminui.MinPassword) + ` characters. Only enabled administrators can sign in.
Setting or clearing a password ends every console session of the user.`,
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			u, err := d.FindUserByUsername(ctx, args[0])
			if err != nil {
				return err
			}
			hash := ""
			if !clear {
				password, err := a.readPassword()
				if err != nil {
					return err
				}
				if hash, err = adminui.HashPassword(password); err != nil {
					return err
				}
			}
			ended, err := d.SetPasswordHash(ctx, u.ID, hash)
			if err != nil {
				return err
			}
			what := "set"
			if clear {
				what = "removed"
			}
			return a.emit(map[string]any{"username": u.Username, "password": what, "sessionsEnded": ended}, func(w io.Writer) {
				fmt.Fprintf(w, "password %s for %s\n", what, u.Username)
				if ended > 0 {
					fmt.Fprintf(w, "ended %d console session(s) of %s: signing in again needs the new password\n", ended, u.Username)
				}
				if what == "set" && u.Type != usersync.UserAdministrator {
					fmt.Fprintf(w, "note: only administrators sign in to the console; %s is %s\n", u.Username, u.Type)
				}
			})
		})}
	c.Flags().BoolVar(&clear, "clear", false, "remove the password (the user can no longer sign in to the console)")
	return c
}

// readPassword reads a new password: twice without echo from a terminal,
// or one line of standard input.
func (a *app) readPassword() (string, error) {
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(a.stderr, "New password: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(a.stderr, "Again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return "", err
		}
		if string(first) != string(again) {
			return "", usersync.Errorf(usersync.EINVALID, "the two passwords differ; nothing was changed")
		}
		return string(first), nil
	}
	line, err := bufio.NewReader(io.LimitReader(a.stdin, 1024)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usersync.Errorf(usersync.EINVALID, "no password on standard input: pipe it in, or run this on a terminal")
	}
	return line, nil
}
