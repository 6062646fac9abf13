package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/api"
)

func (a *app) tokensCommand() *cobra.Command {
	c := &cobra.Command{Use: "tokens", Short: "Create, list and revoke API tokens"}
	var user, name string
	create := &cobra.Command{
		Use:   "create --user USERNAME [--name NAME]",
		Short: "Create an API token; the clear token is printed once, alone on standard output",
		Args:  cobra.NoArgs,
	}
	create.Flags().StringVar(&user, "user", "", "the user the token acts as")
	create.Flags().StringVar(&name, "name", "", "a label to tell tokens apart")
	create.RunE = a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
		if user == "" {
			return usageError{fmt.Errorf("tokens create needs --user")}
		}
		made, err := o.CreateToken(ctx, user, name)
		if err != nil {
			return err
		}
		clear, tok := made.Token, made.Info
		if a.output == "json" {
			return a.emit(map[string]any{"id": tok.ID, "username": tok.Username, "name": tok.Name, "token": clear}, nil)
		}
		fmt.Fprintln(a.stdout, clear)
		fmt.Fprintf(a.stderr, "Token %d for %s created. It is shown only now; store it safely.\n", tok.ID, tok.Username)
		return nil
	})
	var listUser string
	list := &cobra.Command{Use: "list [--user USERNAME]", Short: "List API tokens (never their values)", Args: cobra.NoArgs}
	list.Flags().StringVar(&listUser, "user", "", "only this user's tokens")
	list.RunE = a.withOps(true, func(ctx context.Context, o api.Operations, args []string) error {
		toks, err := o.ListTokens(ctx, listUser)
		if err != nil {
			return err
		}
		return a.emit(nonNil(toks), func(w io.Writer) {
			row(w, "ID", "USER", "NAME", "ENDS WITH", "CREATED", "LAST USED")
			for _, t := range toks {
				used := "never"
				if t.LastUsedAt != nil {
					used = fmtTime(*t.LastUsedAt)
				}
				row(w, t.ID, t.Username, orDash(t.Name), "…"+t.Hint, fmtTime(t.CreatedAt), used)
			}
		})
	})
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token",
		Args:  cobra.ExactArgs(1),
		RunE: a.withOps(false, func(ctx context.Context, o api.Operations, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("token ID %q is not a number (see 'usersync tokens list')", args[0])}
			}
			if err := o.RevokeToken(ctx, id); err != nil {
				return err
			}
			return a.emit(map[string]any{"revoked": id}, func(w io.Writer) { row(w, "revoked token", id) })
		}),
	}
	c.AddCommand(remote(create), remote(list), remote(revoke))
	return c
}
