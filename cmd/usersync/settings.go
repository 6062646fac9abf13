package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync"
	"github.com/usersync/usersync/sqlstore"
)

func (a *app) settingsCommand() *cobra.Command {
	c := &cobra.Command{Use: "settings", Short: "Read and change system settings"}
	list := &cobra.Command{Use: "list", Short: "List every setting with its value (secrets masked)", Args: cobra.NoArgs,
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			all, err := d.Settings(ctx)
			if err != nil {
				return err
			}
			shown := make([]usersync.Setting, len(all))
			for i, s := range all {
				s.Value = s.Shown()
				shown[i] = s
			}
			return a.emit(shown, func(w io.Writer) {
				row(w, "KEY", "VALUE", "TYPE", "SET", "DESCRIPTION")
				for _, s := range shown {
					row(w, s.Key, orDash(s.Value), s.Type, map[bool]string{true: "yes", false: "default"}[s.IsSet], s.Description)
				}
			})
		})}
	var reveal bool
	get := &cobra.Command{Use: "get KEY", Short: "Print a setting's value", Args: cobra.ExactArgs(1),
		RunE: a.readDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			s, err := d.Setting(ctx, args[0])
			if err != nil {
				return err
			}
			if !reveal {
				s.Value = s.Shown()
			}
			return a.emit(s, func(w io.Writer) { fmt.Fprintln(w, s.Value) })
		})}
	get.Flags().BoolVar(&reveal, "reveal", false, "print a secret setting's value instead of a mask")
	set := &cobra.Command{Use: "set KEY VALUE", Short: "Change a setting (VALUE - reads it from standard input, for secrets)", Args: cobra.ExactArgs(2),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			value := args[1]
			if value == "-" {
				b, err := io.ReadAll(io.LimitReader(a.stdin, 1<<16))
				if err != nil {
					return err
				}
				value = strings.TrimRight(string(b), "\r\n")
			}
			s, err := d.SetSetting(ctx, args[0], value)
			if err != nil {
				return err
			}
			s.Value = s.Shown()
			return a.emit(s, func(w io.Writer) { row(w, s.Key, "=", s.Value) })
		})}
	reset := &cobra.Command{Use: "reset KEY", Short: "Return a setting to its default", Args: cobra.ExactArgs(1),
		RunE: a.withDB(func(ctx context.Context, d *sqlstore.DB, args []string) error {
			if err := d.ResetSetting(ctx, args[0]); err != nil {
				return err
			}
			s, err := d.Setting(ctx, args[0])
			if err != nil {
				return err
			}
			s.Value = s.Shown()
			return a.emit(s, func(w io.Writer) { row(w, s.Key, "=", orDash(s.Value), "(default)") })
		})}
	c.AddCommand(list, get, set, reset)
	return c
}
